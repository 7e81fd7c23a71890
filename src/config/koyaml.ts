import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';

/** One `builds[]` entry of `.ko.yaml` (ko's GoReleaser-like build section). */
export interface KoBuildConfig {
  /** Position in `builds`, for messages (`builds[1]`). */
  index: number;
  id?: string;
  /** Where `go build` runs, relative to the working directory, as written (default `.`). */
  dir: string;
  /** The main package (or a `.go` file in it) relative to `dir`, as written (default `.`). */
  main: string;
  /** `dir` joined with `main`'s package directory: `/`-separated, normalized, relative to the working directory. */
  packageDir: string;
  env?: string[];
  flags?: string[];
  ldflags?: string[];
}

export interface KoConfig {
  /** The file it was read from, as named in messages; absent when only `KO_*` variables set it. */
  file?: string;
  defaultBaseImage?: string;
  /** Lower-cased import path → base image reference; look entries up with baseImageOverride. */
  baseImageOverrides: Record<string, string>;
  defaultPlatforms?: string[];
  defaultEnv?: string[];
  defaultFlags?: string[];
  defaultLdflags?: string[];
  builds: KoBuildConfig[];
}

/** The settings for one package: its `builds[]` entry, with the defaults filling what it leaves out. */
export interface ResolvedBuild {
  /** The entry's `id` (or `builds[i]`), undefined when no entry matched. */
  id?: string;
  /** Where to run `go build`, `/`-separated and relative to the working directory. */
  dir: string;
  baseImage?: string;
  platforms?: string[];
  env: string[];
  flags: string[];
  ldflags: string[];
  /** Where each list came from, for template error messages (`.ko.yaml builds[1].ldflags`). */
  where: { env: string; flags: string; ldflags: string };
}

const CONFIG_NAMES = ['.ko.yaml', '.ko.yml'];

/**
 * Find and read the ko configuration the way ko does: `KO_CONFIG_PATH` (a file, or a directory
 * holding `.ko.yaml`) wins; otherwise `.ko.yaml` (then `.ko.yml`) in the working directory.
 * ko's documented `KO_DEFAULTBASEIMAGE` and `KO_DEFAULTPLATFORMS` variables override the file.
 * Returns undefined when there is neither a file nor one of those variables.
 */
export async function loadKoConfig(opts: {
  workingDirectory: string;
  env: Readonly<Record<string, string | undefined>>;
}): Promise<KoConfig | undefined> {
  const { workingDirectory, env } = opts;
  const file = await findConfigFile(workingDirectory, env.KO_CONFIG_PATH);
  let config: KoConfig | undefined;
  if (file) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw new Error(`cannot read ko configuration ${JSON.stringify(file)}: ${(err as Error).message}`, { cause: err });
    }
    config = parseKoConfig(text, file);
    config = { ...config, builds: await locateMains(config.builds, workingDirectory, file) };
  }
  // ko reads its settings through viper with the KO_ prefix, so these two variables (the two
  // ko documents) replace what the file says.
  const envBase = env.KO_DEFAULTBASEIMAGE?.trim();
  const envPlatforms = env.KO_DEFAULTPLATFORMS?.trim();
  if (!config && !envBase && !envPlatforms) return undefined;
  config ??= { baseImageOverrides: {}, builds: [] };
  if (envBase) config = { ...config, defaultBaseImage: envBase };
  if (envPlatforms) config = { ...config, defaultPlatforms: splitList(envPlatforms) };
  return config;
}

async function findConfigFile(workingDirectory: string, override: string | undefined): Promise<string | undefined> {
  if (override) {
    const what = `KO_CONFIG_PATH ${JSON.stringify(override)}`;
    const s = await stat(override).catch((err: Error) => {
      throw new Error(`${what}: ${err.message}`, { cause: err });
    });
    if (s.isFile()) return override;
    if (!s.isDirectory()) throw new Error(`${what} is neither a file nor a directory`);
    const inside = path.join(override, '.ko.yaml');
    const f = await stat(inside).catch((err: Error) => {
      throw new Error(`${what} is a directory without a .ko.yaml file: ${err.message}`, { cause: err });
    });
    if (!f.isFile()) throw new Error(`${what}: ${JSON.stringify(inside)} is not a regular file`);
    return inside;
  }
  // ko (through viper) takes .ko.yaml before .ko.yml when both exist.
  for (const name of CONFIG_NAMES) {
    const candidate = path.join(workingDirectory, name);
    const s = await stat(candidate).catch(() => undefined);
    if (!s) continue;
    if (!s.isFile()) throw new Error(`ko configuration ${JSON.stringify(candidate)} is not a regular file`);
    return candidate;
  }
  return undefined;
}

/**
 * ko checks each entry's `dir`/`main` against the disk: `main` may name a `.go` file, in which
 * case its directory is the package, and a path that does not exist is an error up front
 * (ko issue #483) rather than a confusing `go build` failure later.
 */
async function locateMains(builds: KoBuildConfig[], workingDirectory: string, file: string): Promise<KoBuildConfig[]> {
  return Promise.all(
    builds.map(async (b) => {
      const target = path.join(workingDirectory, b.dir, b.main);
      const s = await stat(target).catch(() => undefined);
      if (!s) {
        throw new Error(
          `${file} builds[${b.index}]: main ${JSON.stringify(b.main)} in dir ${JSON.stringify(b.dir)} does not exist (looked for ${JSON.stringify(target)})`,
        );
      }
      const mainDir = s.isFile() ? path.posix.dirname(toSlash(b.main)) : toSlash(b.main);
      return { ...b, packageDir: joinRel(b.dir, mainDir) };
    }),
  );
}

/** Top-level keys, by their lower-case spelling (viper matches keys case-insensitively). */
const TOP_KEYS = canon(['defaultBaseImage', 'baseImageOverrides', 'defaultPlatforms', 'defaultEnv', 'defaultFlags', 'defaultLdflags', 'builds']);
/** Build keys; mapstructure, which ko decodes them with, also ignores case. */
const BUILD_KEYS = canon(['id', 'dir', 'main', 'env', 'flags', 'ldflags']);
/** Keys ko understands that we do not implement: better refused than silently ignored. */
const UNSUPPORTED_BUILD_KEYS: Record<string, string> = {
  linux_capabilities: 'file capabilities on the binary are not supported by ko-annotate',
};

/**
 * Parse `.ko.yaml` text. Unlike ko, which ignores keys it does not know, an unknown key or a
 * value of the wrong type is an error naming the file, line and key, so a typo such as
 * `defaultBaseImg` cannot silently fall back to a default.
 */
export function parseKoConfig(text: string, fileName: string): KoConfig {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const pos = lines.linePos(e.pos[0]);
    const at = `:${pos.line}:${pos.col}`;
    throw new Error(`${fileName}${at}: invalid YAML: ${e.message.split('\n')[0]}`);
  }
  const r = new Reader(fileName, lines, doc);
  const config: KoConfig = { file: fileName, baseImageOverrides: {}, builds: [] };
  const root = r.deref(doc.contents);
  if (root === null) return config;

  for (const [key, { value }] of r.mapping(root, '', TOP_KEYS)) {
    if (r.isNull(value)) continue;
    switch (key) {
      case 'defaultBaseImage':
        config.defaultBaseImage = r.imageRef(value, key);
        break;
      case 'baseImageOverrides':
        for (const [importPath, { value: ref }] of r.mapping(value, key)) {
          // viper lower-cases the keys of a map, and ko looks an override up by the lower-cased
          // import path (pkg/commands/config.go): a key matches whatever the case of either.
          // (mapping already refuses two keys that differ only in case.)
          config.baseImageOverrides[importPath.toLowerCase()] = r.imageRef(ref, `${key}.${importPath}`);
        }
        break;
      case 'defaultPlatforms':
        config.defaultPlatforms = r.list(value, key, splitList);
        break;
      case 'defaultEnv':
        config.defaultEnv = r.envList(value, key, fields);
        break;
      case 'defaultFlags':
        config.defaultFlags = r.flagList(value, key, fields);
        break;
      case 'defaultLdflags':
        // viper's GetStringSlice splits a plain string on spaces; ko joins ldflags with spaces
        // again, so the flags passed to go are the same either way.
        config.defaultLdflags = r.list(value, key, fields);
        break;
      case 'builds':
        config.builds = r.sequence(value, key).map((node, i) => r.build(node, i));
        break;
    }
  }
  return config;
}

/**
 * The `builds[]` entry for a package, merged with the defaults as ko merges them: an entry's
 * `env`, `flags` and `ldflags` each replace the default list when non-empty; otherwise the
 * default applies. `baseImageOverrides[importPath]` wins over `defaultBaseImage`.
 *
 * `packageDir` is the package's directory relative to the working directory (`./cmd/app`),
 * as in the `packages` input. ko matches entries by the import path that `go list` gives for
 * `dir`/`main`; comparing the normalized directories selects the same entry without running go.
 */
export function resolveBuild(config: KoConfig | undefined, importPath: string, packageDir: string): ResolvedBuild {
  const file = config?.file ?? '.ko.yaml';
  const want = joinRel('.', toSlash(packageDir));
  const matches = config?.builds.filter((b) => b.packageDir === want) ?? [];
  if (matches.length > 1) {
    // ko keeps whichever entry it read last; two entries for one package is a mistake to point out.
    const names = matches.map((b) => `builds[${b.index}]${b.id ? ` (id ${JSON.stringify(b.id)})` : ''}`).join(' and ');
    throw new Error(`${file}: ${names} both select package ${JSON.stringify(packageDir)}; keep one`);
  }
  const build = matches[0];
  const own = (k: 'env' | 'flags' | 'ldflags', d: 'defaultEnv' | 'defaultFlags' | 'defaultLdflags') =>
    build?.[k]?.length
      ? { list: build[k], where: `${file} builds[${build.index}].${k}` }
      : { list: config?.[d] ?? [], where: `${file} ${d}` };
  const env = own('env', 'defaultEnv');
  const flags = own('flags', 'defaultFlags');
  const ldflags = own('ldflags', 'defaultLdflags');
  const resolved: ResolvedBuild = {
    dir: build ? joinRel('.', toSlash(build.dir)) : '.',
    env: [...env.list],
    flags: [...flags.list],
    ldflags: [...ldflags.list],
    where: { env: env.where, flags: flags.where, ldflags: ldflags.where },
  };
  if (build) resolved.id = build.id ?? `builds[${build.index}]`;
  const baseImage = baseImageOverride(config?.baseImageOverrides, importPath) ?? config?.defaultBaseImage;
  if (baseImage !== undefined) resolved.baseImage = baseImage;
  if (config?.defaultPlatforms?.length) resolved.platforms = [...config.defaultPlatforms];
  return resolved;
}

/** The `baseImageOverrides` entry for `importPath`, matched without regard to case as ko does. */
export function baseImageOverride(overrides: Readonly<Record<string, string>> | undefined, importPath: string): string | undefined {
  const key = importPath.toLowerCase();
  return overrides && Object.hasOwn(overrides, key) ? overrides[key] : undefined;
}

/**
 * ko refuses `-toolexec` in flags (and in GOFLAGS), because it makes `go build` run an arbitrary
 * program for every compile and link step: a configuration file or input could then execute
 * anything on the runner. Callers check again after rendering templates, as ko does, since a
 * template can produce the flag. Throws naming `where` and the flag.
 */
export function refuseToolexec(flags: readonly string[], where: string): void {
  for (const f of flags) {
    if (/^--?toolexec(=|$)/.test(f)) {
      throw new Error(
        `${where}: ${JSON.stringify(f)} is not allowed: -toolexec makes go build run an arbitrary program for every compile and link step (ko refuses it too)`,
      );
    }
  }
}

/** The same refusal for `GOFLAGS=…` lines of a build environment. */
export function refuseToolexecInEnv(env: readonly string[], where: string): void {
  for (const line of env) {
    const eq = line.indexOf('=');
    if (eq > 0 && line.slice(0, eq) === 'GOFLAGS') refuseToolexec(fields(line.slice(eq + 1)), `${where} (GOFLAGS)`);
  }
}

/** Reads typed values out of the YAML tree, failing with `file:line:col: key: reason`. */
class Reader {
  constructor(
    private readonly file: string,
    private readonly lines: LineCounter,
    private readonly doc: Document,
  ) {}

  fail(node: unknown, key: string, why: string): never {
    const start = (node as Node | null)?.range?.[0];
    const pos = start !== undefined ? this.lines.linePos(start) : undefined;
    const at = pos ? `:${pos.line}:${pos.col}` : '';
    throw new Error(`${this.file}${at}: ${key ? `${key}: ` : ''}${why}`);
  }

  deref(node: unknown): unknown {
    return isAlias(node) ? node.resolve(this.doc) ?? null : node ?? null;
  }

  isNull(node: unknown): boolean {
    const n = this.deref(node);
    return n === null || (isScalar(n) && n.value === null);
  }

  /**
   * A mapping's entries by key. With `known`, keys are matched case-insensitively to their
   * canonical spelling, and anything else is refused; without it, keys are data (import paths).
   */
  mapping(node: unknown, key: string, known?: Map<string, string>): Map<string, { keyNode: unknown; value: unknown }> {
    const n = this.deref(node);
    if (!isMap(n)) this.fail(n, key, `expected a mapping, found ${describe(n)}`);
    const out = new Map<string, { keyNode: unknown; value: unknown }>();
    const seen = new Map<string, string>();
    for (const pair of n.items) {
      const k = this.deref(pair.key);
      if (!isScalar(k) || typeof k.value !== 'string') this.fail(k ?? n, key, `keys must be strings, found ${describe(k)}`);
      const raw = k.value;
      const here = key ? `${key}.${raw}` : raw;
      let name = raw;
      if (known) {
        const canonical = known.get(raw.toLowerCase());
        if (!canonical) {
          const hint = UNSUPPORTED_BUILD_KEYS[raw.toLowerCase()];
          const near = suggest(raw, [...known.values()]);
          this.fail(k, '', `${hint ? `key ${JSON.stringify(here)} is not supported: ${hint}` : `unknown key ${JSON.stringify(here)}`}${near ? ` (did you mean ${JSON.stringify(near)}?)` : ''}`);
        }
        name = canonical;
      }
      const dup = seen.get(name.toLowerCase());
      if (dup !== undefined) this.fail(k, '', `key ${JSON.stringify(here)} repeats ${JSON.stringify(dup)}`);
      seen.set(name.toLowerCase(), raw);
      out.set(name, { keyNode: k, value: pair.value });
    }
    return out;
  }

  sequence(node: unknown, key: string): unknown[] {
    const n = this.deref(node);
    if (!isSeq(n)) this.fail(n, key, `expected a list, found ${describe(n)}`);
    return n.items;
  }

  string(node: unknown, key: string): string {
    const n = this.deref(node);
    if (!isScalar(n) || typeof n.value !== 'string') {
      this.fail(n, key, `expected a string, found ${describe(n)}${isScalar(n) && n.value !== null ? ' (quote it)' : ''}`);
    }
    return n.value;
  }

  imageRef(node: unknown, key: string): string {
    const s = this.string(node, key).trim();
    if (s === '' || /\s/.test(s)) this.fail(node, key, `${JSON.stringify(s)} is not an image reference`);
    return s;
  }

  /** A list of strings, or one string turned into a list by `split` (ko's types differ per key). */
  list(node: unknown, key: string, split: (s: string) => string[]): string[] {
    const n = this.deref(node);
    if (isSeq(n)) return n.items.map((item, i) => this.string(item, `${key}[${i}]`));
    return split(this.string(n, key));
  }

  envList(node: unknown, key: string, split: (s: string) => string[]): string[] {
    const env = this.list(node, key, split);
    env.forEach((line, i) => {
      if (!/^[^=]+=/.test(line)) this.fail(node, `${key}[${i}]`, `${JSON.stringify(line)} is not KEY=VALUE`);
    });
    refuseToolexecInEnv(env, `${this.file} ${key}`);
    return env;
  }

  flagList(node: unknown, key: string, split: (s: string) => string[]): string[] {
    const flags = this.list(node, key, split);
    refuseToolexec(flags, `${this.file} ${key}`);
    return flags;
  }

  build(node: unknown, index: number): KoBuildConfig {
    const at = `builds[${index}]`;
    const b: KoBuildConfig = { index, dir: '.', main: '.', packageDir: '.' };
    for (const [key, { value }] of this.mapping(node, at, BUILD_KEYS)) {
      if (this.isNull(value)) continue;
      const here = `${at}.${key}`;
      switch (key) {
        case 'id':
          b.id = this.string(value, here);
          break;
        case 'dir':
          b.dir = this.string(value, here) || '.';
          break;
        case 'main':
          b.main = this.string(value, here) || '.';
          break;
        case 'env':
          // mapstructure lifts a single string into a one-element list.
          b.env = this.envList(value, here, (s) => [s]);
          break;
        case 'flags':
          // ko's FlagArray splits a string on spaces: `flags: -v -v` is two flags.
          b.flags = this.flagList(value, here, fields);
          break;
        case 'ldflags':
          // ko's StringArray keeps a string whole; ldflags are joined with spaces anyway.
          b.ldflags = this.list(value, here, (s) => [s]);
          break;
      }
    }
    // Without the disk (see loadKoConfig), a main ending in .go is taken to be a file.
    const mainDir = /\.go$/.test(b.main) ? path.posix.dirname(toSlash(b.main)) : toSlash(b.main);
    b.packageDir = joinRel(b.dir, mainDir);
    return b;
  }
}

function canon(keys: string[]): Map<string, string> {
  return new Map(keys.map((k) => [k.toLowerCase(), k]));
}

function describe(n: unknown): string {
  if (n === null || n === undefined) return 'nothing';
  if (isMap(n)) return 'a mapping';
  if (isSeq(n)) return 'a list';
  if (isScalar(n)) return n.value === null ? 'null' : `${typeof n.value} ${JSON.stringify(n.value)}`;
  return 'an unexpected value';
}

/** Go's strings.Fields. */
const fields = (s: string): string[] => s.split(/\s+/).filter(Boolean);
/** Platforms may be written `linux/amd64,linux/arm64` as well as space-separated. */
const splitList = (s: string): string[] => s.split(/[\s,]+/).filter(Boolean);

const toSlash = (p: string): string => p.replace(/\\/g, '/');

/** `dir` + `main` as a normalized relative path without `./` (`cmd/app`, or `.`). */
function joinRel(dir: string, sub: string): string {
  const joined = path.posix.normalize(path.posix.join(toSlash(dir) || '.', sub || '.'));
  const trimmed = joined.replace(/\/+$/, '');
  return trimmed === '' ? '.' : trimmed;
}

/** The closest known key, for a typo; nothing when no key is close. */
function suggest(key: string, known: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of known) {
    const d = editDistance(key.toLowerCase(), k.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  return bestDistance <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}
