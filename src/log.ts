/** The logger every module is given (docs/architecture.md#dependencies): @actions/core in the action (github/runner.ts), stderr in the CLI. */
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
    this.lines.push(`group: ${name}`);
    try { return await fn(); } finally { this.lines.push('endgroup'); }
  }
  section(name: string, lines: readonly string[]) {
    this.lines.push(`group: ${name}`, ...lines, 'endgroup');
  }
}

/**
 * A logger that holds what it is told until `replay`, then writes it to another logger as one
 * group, and passes later calls straight on. Work that runs alongside other work logs into one,
 * so that each one's lines land together (Actions groups do not nest or interleave).
 */
export class DeferredLogger implements Logger {
  private held: ((into: Logger) => void)[] | undefined = [];
  private target?: Logger;

  info(m: string) { this.call((l) => l.info(m)); }
  warning(m: string, where?: Annotation) { this.call((l) => l.warning(m, where)); }
  error(m: string, where?: Annotation) { this.call((l) => l.error(m, where)); }
  debug(m: string) { this.call((l) => l.debug(m)); }
  /** Held work has no group of its own: its lines go into the replayed one. */
  group<T>(name: string, fn: () => Promise<T>): Promise<T> {
    return this.target ? this.target.group(name, fn) : fn();
  }
  section(name: string, lines: readonly string[]) { this.call((l) => l.section(name, lines)); }

  /** Write what was held to `into` in a group named `name`; later calls go to `into` as they come. */
  replay(into: Logger, name: string): Promise<void> {
    const held = this.held ?? [];
    this.held = undefined;
    this.target = into;
    return into.group(name, async () => held.forEach((call) => call(into)));
  }

  private call(f: (into: Logger) => void) {
    if (this.held) this.held.push(f);
    else f(this.target!);
  }
}
