/** The logger every module is given (STYLE §7): the runner's workflow commands in the action (github/commands.ts), stderr in the CLI. */
export interface Logger {
  info(message: string): void;
  warning(message: string, where?: Annotation): void;
  error(message: string, where?: Annotation): void;
  debug(message: string): void;
  /** Run `fn` inside a collapsible log group. */
  group<T>(name: string, fn: () => Promise<T>): Promise<T>;
  /**
   * Write a finished group at once. Work that runs in parallel logs this way: Actions groups
   * do not nest, so lines written while two groups were open would land in the wrong one.
   */
  section(name: string, lines: readonly string[]): void;
}

/** A file position for an error or warning annotation. */
export interface Annotation {
  file?: string;
  startLine?: number;
  startColumn?: number;
  title?: string;
}

/** A logger that records lines, for tests and for quiet runs. */
export class MemoryLogger implements Logger {
  readonly lines: string[] = [];
  info(m: string) { this.lines.push(m); }
  warning(m: string) { this.lines.push(`warning: ${m}`); }
  error(m: string) { this.lines.push(`error: ${m}`); }
  debug(m: string) { this.lines.push(`debug: ${m}`); }
  async group<T>(name: string, fn: () => Promise<T>): Promise<T> {
    this.lines.push(`::group::${name}`);
    try { return await fn(); } finally { this.lines.push('::endgroup::'); }
  }
  section(name: string, lines: readonly string[]) {
    this.lines.push(`::group::${name}`, ...lines, '::endgroup::');
  }
}
