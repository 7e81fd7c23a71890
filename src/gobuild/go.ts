import { isAbsolute, relative, resolve, sep } from 'node:path';
import type { Annotation } from '../log.js';

/** A command line as data, and what running it gave (docs/architecture.md#dependencies). */
export interface Command {
  cmd: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
}
export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}
export type Run = (c: Command) => Promise<CommandResult>;

/** What `go list` says about a package we are asked to build. */
export interface GoPackage {
  /** The package as the user wrote it (`./cmd/app`). */
  spec: string;
  importPath: string;
  name: string;
  dir: string;
  modulePath: string;
  moduleDir: string;
}

/** A binary's embedded build information (`go version -m`). */
export interface BuildInfo {
  goVersion: string;
  path: string;
  main: Module;
  deps: Module[];
  settings: Record<string, string>;
}
export interface Module {
  path: string;
  version: string;
  sum?: string;
  replace?: Module;
}

export class GoNotFoundError extends Error {}

/**
 * What every `go build` runs with unless the user's env (the input, .ko.yaml) says otherwise,
 * over the runner's environment: cgo off (docs/image.md#layout, docs/cgo.md), whatever the runner has.
 */
export const BUILD_ENV = { CGO_ENABLED: '0' };

/** What `go list` runs with under the caller's env: images are linux only. */
const LIST_ENV = { GOOS: 'linux' };

/**
 * The Go toolchain, run through an injected `Run`. The build environment is the caller's,
 * minus anything secret (docs/publishing.md#credentials: the token never reaches a child process).
 */
export class GoToolchain {
  constructor(
    private readonly run: Run,
    private readonly baseEnv: Record<string, string>,
    private readonly goBinary = 'go',
  ) {}


  /** Resolve packages with `go list`; each must be a `main` package inside a module. */
  async list(specs: readonly string[], cwd: string, env: Record<string, string> = {}, flags: readonly string[] = []): Promise<GoPackage[]> {
    // The files go build will see (buildCommand): a package that needs cgo fails here, before
    // any build, and one for linux only lists on a macOS or Windows runner too. So do the
    // build's -tags: a main package whose files all need `-tags=prod` is one with them.
    const tags = flags.flatMap((f, i) => (/^--?tags=/.test(f) ? [f] : /^--?tags$/.test(f) && flags[i + 1] !== undefined ? [f, flags[i + 1]] : []));
    const listEnv = { ...BUILD_ENV, ...env, ...LIST_ENV };
    const r = await this.exec(['list', '-e', '-json=ImportPath,Name,Dir,Module,Error', ...tags, ...specs], cwd, listEnv);
    if (r.code !== 0 && !r.stdout.trim()) throw new Error(`go list ${specs.join(' ')} failed:\n${r.stderr.trim()}`);
    const listed = parseJsonStream(r.stdout) as GoListEntry[];
    if (listed.length !== specs.length) {
      throw new Error(`input "packages": go list resolved ${listed.length} packages for ${specs.length} (${specs.join(', ')}); patterns such as ./... are not supported`);
    }
    return listed.map((p, i) => {
      const spec = specs[i];
      if (p.Error) {
        const why = /build constraints exclude all Go files/.test(p.Error.Err)
          ? listEnv.CGO_ENABLED === '1'
            ? ` (images are built with GOOS=linux: files for other systems are left out)`
            : ` (images are built with CGO_ENABLED=${listEnv.CGO_ENABLED} GOOS=linux: files that import "C" and files for other systems are left out; CGO_ENABLED=1 in input "env" turns cgo on, docs/cgo.md)`
          : '';
        // A source error (a broken import block) says where only in Pos.
        const err = p.Error.Err.trim();
        const at = p.Error.Pos && !err.startsWith(p.Error.Pos) ? `${p.Error.Pos}: ` : '';
        throw new Error(`input "packages": ${JSON.stringify(spec)}: ${at}${err}${why}`);
      }
      if (p.Name !== 'main') throw new Error(`input "packages": ${JSON.stringify(spec)} is package ${p.Name}, not a main package`);
      if (!p.Module) throw new Error(`input "packages": ${JSON.stringify(spec)} is not inside a Go module (no go.mod)`);
      return { spec, importPath: p.ImportPath, name: p.Name, dir: p.Dir, modulePath: p.Module.Path, moduleDir: p.Module.Dir };
    });
  }

  /** The `go build` command line for one platform, as data. */
  buildCommand(opts: BuildOptions): Command {
    const args = ['build', '-trimpath', '-o', opts.output];
    // docs/image.md#layout: always -trimpath. A later `-trimpath=false` in the flags would turn it off again
    // (Go's flag package takes the last value), and with it the build's reproducibility.
    const flags = opts.flags.filter((f) => !/^--?trimpath(=|$)/.test(f));
    args.push(...flags);
    if (opts.ldflags.length) args.push(`-ldflags=${opts.ldflags.join(' ')}`);
    args.push(opts.target);
    return {
      cmd: this.goBinary,
      args,
      cwd: opts.cwd,
      // cgo is off unless the user's env turns it on (docs/cgo.md); the platform comes last, so
      // that the user's env cannot override it by accident.
      env: { ...this.baseEnv, ...BUILD_ENV, ...opts.env, ...opts.platformEnv },
    };
  }

  async build(opts: BuildOptions): Promise<void> {
    const c = this.buildCommand(opts);
    const r = await this.runChecked(c);
    if (r.code !== 0) throw new GoBuildError(opts.target, r.stderr, c.cwd, opts.workspace);
  }

  /** `go version -m` on a built binary. */
  async buildInfo(binary: string, cwd: string): Promise<BuildInfo> {
    const r = await this.exec(['version', '-m', binary], cwd, {});
    if (r.code !== 0) throw new Error(`go version -m ${binary} failed: ${r.stderr.trim()}`);
    return parseBuildInfo(r.stdout);
  }

  /** PATH as the go command (and the C compiler it runs for cgo) sees it. */
  get searchPath(): string {
    return this.baseEnv.PATH ?? this.baseEnv.Path ?? '';
  }

  private exec(args: string[], cwd: string, env: Record<string, string>) {
    return this.runChecked({ cmd: this.goBinary, args, cwd, env: { ...this.baseEnv, ...env } });
  }

  private async runChecked(c: Command): Promise<CommandResult> {
    try {
      return await this.run(c);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || /Unable to locate executable file/.test(String(err))) {
        throw new GoNotFoundError(
          `Go was not found on PATH (looked for ${JSON.stringify(this.goBinary)}). Add actions/setup-go before this step, or install Go.`,
          { cause: err },
        );
      }
      throw err;
    }
  }
}

export interface BuildOptions {
  /** What to pass to `go build`: an import path or `./dir`. */
  target: string;
  output: string;
  cwd: string;
  flags: string[];
  ldflags: string[];
  env: Record<string, string>;
  /** GOOS/GOARCH/GOARM/GOAMD64 for the platform. */
  platformEnv: Record<string, string>;
  /** The checkout root: compile errors are annotated on paths relative to it. */
  workspace?: string;
}

/** A compile failure: the compiler output, and each `file:line:col: message` as an annotation. */
export class GoBuildError extends Error {
  readonly diagnostics: { message: string; where: Annotation }[];
  constructor(target: string, readonly output: string, cwd: string, workspace?: string) {
    super(`go build ${target} failed:\n${output.trim()}`);
    this.diagnostics = parseDiagnostics(output, cwd, workspace ?? cwd);
  }
}

const DIAGNOSTIC = /^(.+?\.go):(\d+):(?:(\d+):)? (.+)$/;

/** Compiler lines as annotations, with paths made relative to the workspace (what GitHub shows). */
export function parseDiagnostics(output: string, cwd: string, workspace: string): { message: string; where: Annotation }[] {
  type Diagnostic = { message: string; where: Annotation };
  const out: Diagnostic[] = [];
  let current: Diagnostic | undefined;
  for (const line of output.split(/\r?\n/)) {
    const m = DIAGNOSTIC.exec(line.trim());
    // Go indents the further lines of one diagnostic with a tab (a type error's have/want):
    // they are part of its message.
    if (!m && current && /^\s+\S/.test(line)) {
      current.message += `\n${line}`;
      continue;
    }
    current = undefined;
    if (!m) continue;
    const abs = isAbsolute(m[1]) ? m[1] : resolve(cwd, m[1]);
    const file = relative(workspace, abs);
    if (file === '..' || file.startsWith(`..${sep}`) || isAbsolute(file)) {
      // A dependency's file (the module cache, a replacement beside the checkout): GitHub
      // annotates only paths in the repository, so this one names the file in its message.
      out.push((current = { message: `${abs}:${m[2]}${m[3] ? `:${m[3]}` : ''}: ${m[4]}`, where: { title: 'go build' } }));
      continue;
    }
    out.push((current = {
      message: m[4],
      where: {
        file: file.split('\\').join('/'),
        startLine: Number(m[2]),
        startColumn: m[3] ? Number(m[3]) : undefined,
        title: 'go build',
      },
    }));
  }
  return out;
}

/**
 * Parse `go version -m` text: a header line, then tab-separated `path`, `mod`, `dep`, `=>`, `build` rows.
 * With a GOEXPERIMENT the header's version is followed by the experiments (`go1.23.5 X:aliastypeparams`);
 * the toolchain is the first word.
 */
export function parseBuildInfo(text: string): BuildInfo {
  const lines = text.split(/\r?\n/);
  const header = /:\s+(go\S+)(?:\s+X:\S+)?\s*$/.exec(lines[0] ?? '');
  if (!header) throw new Error(`unexpected go version -m output: ${JSON.stringify(lines[0])}`);
  const info: BuildInfo = { goVersion: header[1], path: '', main: { path: '', version: '' }, deps: [], settings: {} };
  for (const line of lines.slice(1)) {
    const f = line.replace(/^\t/, '').split('\t');
    const mod = (): Module => ({ path: f[1], version: f[2] ?? '', ...(f[3] ? { sum: f[3] } : {}) });
    switch (f[0]) {
      case 'path': info.path = f[1]; break;
      case 'mod': info.main = mod(); break;
      case 'dep': info.deps.push(mod()); break;
      case '=>': {
        const last = info.deps.at(-1);
        if (last) last.replace = mod();
        break;
      }
      case 'build': {
        const eq = f[1].indexOf('=');
        if (eq > 0) info.settings[f[1].slice(0, eq)] = f[1].slice(eq + 1);
        break;
      }
    }
  }
  return info;
}

interface GoListEntry {
  ImportPath: string;
  Name: string;
  Dir: string;
  Module?: { Path: string; Dir: string };
  Error?: { Err: string; Pos?: string };
}

/** `go list -json` prints a stream of JSON objects, not an array. */
function parseJsonStream(text: string): unknown[] {
  const out: unknown[] = [];
  let depth = 0, start = -1, inString = false, escaped = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (escaped) escaped = false;
      else if (c === '\\') escaped = true;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if (c === '{') { if (depth++ === 0) start = i; }
    else if (c === '}' && --depth === 0) out.push(JSON.parse(text.slice(start, i + 1)));
  }
  return out;
}

/**
 * The environment a child process gets: ours, minus the action's inputs (the runner passes
 * `token` as INPUT_TOKEN) and the runner's own credentials, minus any variable holding a
 * secret value we were given, and minus Go's microarchitecture variables (below).
 */
export function childEnv(env: Record<string, string | undefined>, secrets: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) continue;
    if (k.startsWith('INPUT_') || SECRET_VARS.has(k) || MICROARCH_VARS.has(k)) continue;
    if (secrets.some((s) => s && v.includes(s))) continue;
    out[k] = v;
  }
  return out;
}

/**
 * Go's architecture-specific variables (`go help environment`). The platform's variant sets
 * them (docs/image.md#layout); without one, Go's default for the architecture applies, which is what the
 * platform descriptor claims (`linux/amd64` runs on any amd64). A runner's own GOAMD64=v3 would
 * otherwise build a v3 binary into a `linux/amd64` image, with another digest than on any other
 * machine (docs/image.md#determinism). The `env` input and a `.ko.yaml` build's `env` are inputs: they still may.
 */
const MICROARCH_VARS = new Set(['GO386', 'GOAMD64', 'GOARM', 'GOARM64', 'GOMIPS', 'GOMIPS64', 'GOPPC64', 'GORISCV64', 'GOWASM']);

const SECRET_VARS = new Set([
  'GITHUB_TOKEN',
  'GH_TOKEN',
  'ACTIONS_RUNTIME_TOKEN',
  'ACTIONS_ID_TOKEN_REQUEST_TOKEN',
  'ACTIONS_ID_TOKEN_REQUEST_URL',
  'ACTIONS_RESULTS_URL',
  'ACTIONS_CACHE_URL',
]);
