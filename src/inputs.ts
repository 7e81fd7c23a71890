import { formatPlatform, parsePlatform, platformMatches } from './oci/platform.js';
import type { Platform } from './oci/spec.js';
import type { UserAnnotations } from './gobuild/assemble.js';
import { parseReference } from './registry/reference.js';
import { isTagRules, parseTagRules, type TagRules } from './github/tag-rules.js';
import type { SigstoreChoice } from './provenance/sigstore.js';

/** Every input of action.yml, by name. The CLI builds the same record from its flags. */
export const INPUT_NAMES = [
  'packages',
  'working-directory',
  'repository',
  'naming',
  'base-image',
  'platforms',
  'tags',
  'flavor',
  'latest',
  'labels',
  'annotations',
  'push',
  'sbom',
  'oci-layout-path',
  'username',
  'token',
  'github-token',
  'ldflags',
  'flags',
  'env',
  'user',
  'timeout',
  'fan-out',
  'provenance',
  'sigstore',
] as const;
export type InputName = (typeof INPUT_NAMES)[number];
export type RawInputs = Partial<Record<InputName, string>>;

export type Naming = 'auto' | 'bare' | 'base' | 'preserve';
export type Tristate = 'auto' | 'true' | 'false';
/** docs/fan-out.md: one job, a matrix leg, or the job that merges the legs. */
export type FanOut = 'off' | 'build' | 'merge';

/** Defaults that README.md#inputs gives but action.yml leaves empty, so that .ko.yaml and KO_* can apply. */
export const Defaults = {
  baseImage: 'cgr.dev/chainguard/static:latest',
  platforms: 'linux/amd64,linux/arm64',
  timeout: '10m',
} as const;

export interface Inputs {
  packages: string[];
  workingDirectory: string;
  /** As given; undefined means "derive it" (KO_DOCKER_REPO, else ghcr.io/<owner>/<repo>). */
  repository?: string;
  naming: Naming;
  /** Undefined when not set, so that .ko.yaml may choose. */
  baseImage?: string;
  platforms?: Platform[] | 'all';
  tags?: string[];
  /** The `tags` input as docker/metadata-action's rules, when any line is `type=…` (docs/tag-rules.md); then `tags` is unset. */
  tagRules?: TagRules;
  latest: Tristate;
  labels: Record<string, string>;
  annotations: UserAnnotations;
  push: Tristate;
  sbom: 'spdx' | 'none';
  ociLayoutPath?: string;
  username?: string;
  token?: string;
  /** For GitHub's REST API only; never sent to a registry (docs/publishing.md#credentials). */
  githubToken?: string;
  ldflags: string[];
  flags: string[];
  /** `env` lines for every platform. */
  env: Record<string, string>;
  /** `env` lines limited to one platform by a prefix (`linux/arm64:CC=…`, docs/cgo.md#env-lines-for-one-platform), in order. */
  platformEnv: PlatformEnvLine[];
  user?: string;
  timeoutMs: number;
  fanOut: FanOut;
  /** docs/provenance.md: sign and attach SLSA provenance (and SBOM attestations). */
  provenance: Tristate;
  sigstore: SigstoreChoice;
}

/** An `env` line for one platform: `linux/arm64:CC=aarch64-linux-gnu-gcc`. */
export interface PlatformEnvLine {
  platform: Platform;
  key: string;
  value: string;
}

/** The most any one input may hold; larger is a mistake, not a configuration. */
const MAX_INPUT = 64 * 1024;
const MAX_ITEMS = 256;

const fail = (name: InputName, value: string, why: string): never => {
  // The token is a secret: its value is never quoted, not even in part (docs/publishing.md#credentials).
  if (name === 'token' || name === 'github-token') throw new Error(`input "${name}": the value ${why}`);
  return failAt(`input "${name}"`, value, why);
};
/** `where` names the setting: `input "platforms"`, `KO_DEFAULTPLATFORMS`, `.ko.yaml defaultBaseImage`. */
const failAt = (where: string, value: string, why: string): never => {
  throw new Error(`${where}: ${JSON.stringify(clip(value))} ${why}`);
};
const clip = (s: string) => (s.length > 120 ? `${s.slice(0, 117)}...` : s);

/** Parse and validate raw inputs. Pure: throws naming the input and the bad value. */
export function parseInputs(raw: RawInputs): Inputs {
  for (const name of INPUT_NAMES) {
    const v = raw[name] ?? '';
    if (v.length > MAX_INPUT) fail(name, v, `is ${v.length} characters long; the limit is ${MAX_INPUT}`);
    if (v.includes('\0')) fail(name, v, 'contains a NUL character');
  }
  const get = (name: InputName) => (raw[name] ?? '').trim();

  const packages = list(get('packages') || '.', 'packages');
  for (const [i, p] of packages.entries()) {
    // One image per package (README.md#inputs): a second image of it would take the first one's tags.
    if (packages.indexOf(p) < i) fail('packages', p, 'is listed twice');
    if (/\s/.test(p)) fail('packages', p, 'contains white space');
    if (hasDotDot(p)) fail('packages', p, 'leaves the working directory (".." is not allowed)');
    if (p.includes('...')) fail('packages', p, 'is a pattern; name each main package');
  }
  const workingDirectory = get('working-directory') || '.';
  if (hasDotDot(workingDirectory)) fail('working-directory', workingDirectory, 'must not contain ".."');

  const repository = get('repository') || undefined;
  if (repository !== undefined) validateRepository(repository, 'input "repository"');

  const platformsRaw = get('platforms');
  const platforms = platformsRaw ? parsePlatformList(platformsRaw, 'input "platforms"') : undefined;

  const tagsRaw = get('tags');
  const flavorRaw = get('flavor');
  // docs/tag-rules.md: one `type=…` line makes the whole input metadata-action's rules.
  const tagRules = isTagRules(tagsRaw) ? parseTagRules(tagsRaw, flavorRaw) : undefined;
  if (tagRules === undefined && flavorRaw) {
    fail('flavor', flavorRaw, 'applies to tag rules only: give "tags" as type=… rules (metadata-action\'s default is type=schedule, type=ref,event=branch, type=ref,event=tag, type=ref,event=pr)');
  }
  if (tagRules && tagRules.rules.length > MAX_ITEMS) fail('tags', tagsRaw, `lists ${tagRules.rules.length} rules; at most ${MAX_ITEMS}`);
  const tags = tagsRaw && !tagRules ? list(tagsRaw, 'tags') : undefined;
  for (const t of tags ?? []) if (!TAG.test(t)) fail('tags', t, 'is not a valid tag ([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})');

  const baseImage = get('base-image') || undefined;
  if (baseImage !== undefined) validateBaseImage(baseImage, 'input "base-image"');

  const user = get('user') || undefined;
  if (user !== undefined && !USER.test(user)) fail('user', user, 'is not a user (65532, nonroot, uid:gid)');

  const username = get('username') || undefined;
  // Basic authentication joins user and password with ':'; a user name cannot hold one.
  if (username !== undefined && !/^[^\s:\p{Cc}]+$/u.test(username)) fail('username', username, 'must not contain ":", white space or control characters');
  const token = (raw.token ?? '').trim() || undefined;
  if (token !== undefined && /[\s\p{Cc}]/u.test(token)) fail('token', token, 'contains white space or a control character (a line break?); paste the token alone');
  const githubToken = (raw['github-token'] ?? '').trim() || undefined;
  if (githubToken !== undefined && /[\s\p{Cc}]/u.test(githubToken)) fail('github-token', githubToken, 'contains white space or a control character (a line break?); paste the token alone');

  const latest = oneOf('latest', get('latest') || 'auto', ['auto', 'true', 'false'] as const);
  // With tag rules, latest is the rules' and the flavor's (docs/tag-rules.md#flavor).
  if (tagRules && latest !== 'auto') fail('latest', latest, `does not apply to tag rules (type=…); write flavor: latest=${latest}`);
  // docs/tags.md: `false` never sets latest; explicit tags that name it say the opposite.
  if (latest === 'false' && tags?.includes('latest')) fail('latest', 'false', 'contradicts input "tags", which lists latest; drop one of them');

  const ociLayoutPath = get('oci-layout-path') || undefined;
  if (ociLayoutPath !== undefined && hasDotDot(ociLayoutPath)) fail('oci-layout-path', ociLayoutPath, 'must not contain ".."');

  const fanOut = oneOf('fan-out', get('fan-out') || 'off', ['off', 'build', 'merge'] as const);
  checkFanOut(fanOut, platformsRaw, platforms, ociLayoutPath);

  return {
    packages,
    workingDirectory,
    repository,
    naming: oneOf('naming', get('naming') || 'auto', ['auto', 'bare', 'base', 'preserve'] as const),
    baseImage,
    platforms,
    tags,
    tagRules,
    latest,
    labels: keyValues('labels', raw.labels ?? ''),
    annotations: userAnnotations(raw.annotations ?? ''),
    push: oneOf('push', get('push') || 'auto', ['auto', 'true', 'false'] as const),
    sbom: oneOf('sbom', get('sbom') || 'spdx', ['spdx', 'none'] as const),
    ociLayoutPath,
    username,
    token,
    githubToken,
    ldflags: lines(raw.ldflags ?? ''),
    // Split at white space, but not inside a template's braces: `-tags={{ .Env.TAGS }}` is one flag.
    flags: lines(raw.flags ?? '').flatMap((l) => l.match(/(?:\{\{.*?\}\}|\S)+/g) ?? []),
    ...envLines(raw.env ?? ''),
    user,
    timeoutMs: parseDuration(get('timeout') || Defaults.timeout),
    fanOut,
    provenance: oneOf('provenance', get('provenance') || 'auto', ['auto', 'true', 'false'] as const),
    sigstore: parseSigstore(get('sigstore') || 'auto'),
  };
}

/**
 * docs/fan-out.md: the merge job's `platforms` is the set it expects the legs to have built, so
 * it must be a list (two or more: one platform makes no index to merge); the legs and the merge
 * publish to a registry only.
 */
function checkFanOut(fanOut: FanOut, raw: string, platforms: Platform[] | 'all' | undefined, ociLayoutPath: string | undefined): void {
  if (fanOut === 'off') return;
  if (ociLayoutPath !== undefined) fail('oci-layout-path', ociLayoutPath, `cannot be used with fan-out: ${fanOut}; the legs and the merge publish to a registry only`);
  if (fanOut !== 'merge') return;
  if (platforms === undefined) return fail('platforms', raw, 'is required with fan-out: merge: list the platforms the build legs build (linux/amd64,linux/arm64)');
  if (platforms === 'all') return fail('platforms', raw, 'must list the platforms with fan-out: merge, the set the build legs build; "all" names none');
  if (platforms.length < 2) fail('platforms', raw, 'must list two or more platforms with fan-out: merge; one platform makes no index: build it with fan-out: off');
}

/**
 * The `sigstore` input (docs/provenance.md#instances): `auto`, `public-good`, `github`, or
 * `fulcio=<url>,rekor=<url>,tsa=<url>` with rekor and tsa each optional but not both missing.
 */
export function parseSigstore(v: string): SigstoreChoice {
  if (v === 'auto' || v === 'public-good' || v === 'github') return v;
  const why = 'is not auto, public-good, github or fulcio=<url>,rekor=<url>,tsa=<url>';
  if (!v.includes('=')) fail('sigstore', v, why);
  const urls: Record<string, string> = {};
  for (const part of v.split(',').map((p) => p.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (eq < 0 || !['fulcio', 'rekor', 'tsa'].includes(key)) fail('sigstore', v, `${why} (${JSON.stringify(part)} is none of fulcio=, rekor=, tsa=)`);
    if (urls[key] !== undefined) fail('sigstore', v, `names ${key} twice`);
    let url: URL | undefined;
    try {
      url = new URL(value);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:')) fail('sigstore', v, `${why} (${key}: ${JSON.stringify(value)} is not an http(s) URL)`);
    urls[key] = value.replace(/\/+$/, '');
  }
  if (!urls.fulcio) fail('sigstore', v, `${why} (fulcio= is missing)`);
  if (!urls.rekor && !urls.tsa) fail('sigstore', v, `${why} (give rekor=, tsa= or both)`);
  return { custom: { fulcio: urls.fulcio, rekor: urls.rekor, tsa: urls.tsa } };
}

/** A repository name (255) with a registry host, a tag (128) and a digest (71), with room to spare. */
const MAX_REFERENCE = 512;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const USER = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,63})?$/;
const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;
const REPO_PATH = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:]+\])(?::\d{1,5})?$/;
const REFERENCE = /^(?:[^/\s]+\/)?[a-z0-9][a-z0-9._\/-]*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$/;

/** `host[:port]/path`, lower-case (the distribution grammar), no tag or digest. */
export function validateRepository(repo: string, where: string): void {
  const bad = (why: string) => failAt(where, repo, why);
  const slash = repo.indexOf('/');
  if (slash < 0) bad('must be host[:port]/path (e.g. ghcr.io/owner/repo)');
  const host = repo.slice(0, slash);
  const path = repo.slice(slash + 1);
  if (!HOST.test(host) || !(host.includes('.') || host.includes(':') || host === 'localhost')) {
    bad(`must start with a registry host (got ${JSON.stringify(host)})`);
  }
  if (/[A-Z]/.test(path)) bad('must be lower-case');
  if (path.includes('@') || /:/.test(path)) bad('must not carry a tag or digest; use the "tags" input');
  if (!REPO_PATH.test(path)) bad('is not a valid repository path ([a-z0-9] components separated by /, ., _, -)');
  if (repo.length > 255) bad('is longer than 255 characters');
}

/** A base image: a registry reference, `oci:<dir>[:<name>]`, or `scratch`. */
export function validateBaseImage(ref: string, where: string): void {
  if (ref.startsWith('oci:')) {
    if (ref.length === 'oci:'.length) failAt(where, ref, 'names no OCI layout directory (oci:<dir>[:<name>])');
    return;
  }
  if (ref === 'scratch') return;
  if (ref.length > MAX_REFERENCE) failAt(where, ref, `is ${ref.length} characters long; an image reference has at most ${MAX_REFERENCE}`);
  if (!REFERENCE.test(ref)) failAt(where, ref, 'is not an image reference (host/repo[:tag][@sha256:…] or scratch)');
  try {
    parseReference(ref);
  } catch (err) {
    failAt(where, ref, `is not an image reference: ${clip((err as Error).message)}`);
  }
}

/** `os/arch[/variant]` items, comma- or line-separated, Linux only, no duplicates; or `all`. */
export function parsePlatformList(s: string, where: string): Platform[] | 'all' {
  if (s.trim() === 'all') return 'all';
  const seen = new Set<string>();
  const items = s.split(/[\n,]/).map((x) => x.trim()).filter(Boolean);
  if (items.length > MAX_ITEMS) failAt(where, s, `lists ${items.length} items; at most ${MAX_ITEMS}`);
  return items.map((item) => {
    let p: Platform;
    try {
      p = parsePlatform(item);
    } catch {
      return failAt(where, item, 'is not os/arch[/variant] (e.g. linux/amd64, linux/arm/v7)');
    }
    if (p.os !== 'linux') failAt(where, item, 'is not a Linux platform; images are built for linux only');
    const key = formatPlatform(p);
    if (seen.has(key)) failAt(where, item, 'is listed twice');
    seen.add(key);
    return p;
  });
}

/** ko's environment variables, validated up front so that a bad one is named (docs/reliability.md). */
export interface KoEnvironment {
  repository?: string;
  platforms?: Platform[] | 'all';
  baseImage?: string;
}

export function parseKoEnvironment(env: Record<string, string | undefined>): KoEnvironment {
  const out: KoEnvironment = {};
  const repo = env.KO_DOCKER_REPO?.trim();
  if (repo) {
    validateRepository(repo, 'KO_DOCKER_REPO');
    out.repository = repo;
  }
  const platforms = env.KO_DEFAULTPLATFORMS?.trim();
  if (platforms) out.platforms = parsePlatformList(platforms, 'KO_DEFAULTPLATFORMS');
  const base = env.KO_DEFAULTBASEIMAGE?.trim();
  if (base) {
    validateBaseImage(base, 'KO_DEFAULTBASEIMAGE');
    out.baseImage = base;
  }
  return out;
}

/** `90s`, `10m`, `1h`, `1m30s` → milliseconds. */
export function parseDuration(s: string): number {
  const m = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(s);
  if (!m || s === '') return fail('timeout', s, 'is not a duration (90s, 10m, 1h30m)');
  const ms = (Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0)) * 1000;
  if (ms <= 0) fail('timeout', s, 'must be more than zero');
  if (ms > 6 * 3600 * 1000) fail('timeout', s, 'is more than 6h, the longest a GitHub job may run');
  return ms;
}

/** One item per line or comma-separated, trimmed, empty ones dropped. */
function list(s: string, name: InputName): string[] {
  const items = s.split(/[\n,]/).map((x) => x.trim()).filter(Boolean);
  if (items.length > MAX_ITEMS) fail(name, s, `lists ${items.length} items; at most ${MAX_ITEMS}`);
  return items;
}

const lines = (s: string) => s.split(/\r?\n/).map((x) => x.trim()).filter(Boolean);

/** `key=value` per line; values may hold `=` and commas (README.md#inputs). */
function keyValues(name: InputName, s: string, keyPattern = /^[^\s=]+$/): Record<string, string> {
  const out: Record<string, string> = {};
  const all = lines(s);
  if (all.length > MAX_ITEMS) fail(name, s, `has ${all.length} lines; at most ${MAX_ITEMS}`);
  for (const line of all) {
    const eq = line.indexOf('=');
    if (eq <= 0) fail(name, line, 'is not key=value');
    const key = line.slice(0, eq).trim();
    if (!keyPattern.test(key)) fail(name, line, `has an invalid key ${JSON.stringify(key)}`);
    out[key] = line.slice(eq + 1);
  }
  return out;
}

/**
 * The `env` input: `KEY=VALUE` lines, each optionally limited to one platform with an
 * `os/arch[/variant]:` prefix, as `annotations` lines are to a level (docs/cgo.md#env-lines-for-one-platform).
 */
function envLines(s: string): Pick<Inputs, 'env' | 'platformEnv'> {
  const env: Record<string, string> = {};
  const platformEnv: PlatformEnvLine[] = [];
  const all = lines(s);
  if (all.length > MAX_ITEMS) fail('env', s, `has ${all.length} lines; at most ${MAX_ITEMS}`);
  for (const line of all) {
    const eq = line.indexOf('=');
    if (eq <= 0) fail('env', line, 'is not KEY=VALUE (or os/arch:KEY=VALUE)');
    const left = line.slice(0, eq).trim();
    const colon = left.lastIndexOf(':');
    const key = left.slice(colon + 1);
    if (!ENV_KEY.test(key)) fail('env', line, `has an invalid key ${JSON.stringify(key)}`);
    const value = line.slice(eq + 1);
    if (colon < 0) {
      env[key] = value;
      continue;
    }
    const prefix = left.slice(0, colon);
    let platform: Platform;
    try {
      platform = parsePlatform(prefix);
    } catch {
      return fail('env', line, `has a platform prefix ${JSON.stringify(prefix)} that is not os/arch[/variant] (e.g. linux/arm64:CC=aarch64-linux-gnu-gcc)`);
    }
    if (platform.os !== 'linux') fail('env', line, `is limited to ${prefix}, not a Linux platform; images are built for linux only`);
    platformEnv.push({ platform, key, value });
  }
  return { env, platformEnv };
}

/**
 * The `env` lines limited to `p`, later ones winning: a prefix with a variant (`linux/arm/v7:`)
 * names that variant; one without (`linux/arm:`) every variant of its architecture.
 */
export function platformEnvFor(lines: readonly PlatformEnvLine[], p: Platform): Record<string, string> {
  const applies = (l: PlatformEnvLine) =>
    l.platform.variant === undefined ? l.platform.os === p.os && l.platform.architecture === p.architecture : platformMatches(l.platform, p);
  return Object.fromEntries(lines.filter(applies).map((l) => [l.key, l.value]));
}

function userAnnotations(s: string): UserAnnotations {
  const out: UserAnnotations = { index: {}, manifest: {} };
  for (const [k, v] of Object.entries(keyValues('annotations', s, /^(?:(?:index|manifest):)?[^\s=:][^\s=]*$/))) {
    if (/^(?:index|manifest):$/.test(k)) fail('annotations', `${k}=${v}`, 'has no key after its level prefix (index:key=value)');
    const m = /^(index|manifest):(.+)$/.exec(k);
    if (m) out[m[1] as 'index' | 'manifest'][m[2]] = v;
    else {
      out.index[k] = v;
      out.manifest[k] = v;
    }
  }
  return out;
}

function oneOf<T extends string>(name: InputName, v: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(v)) fail(name, v, `must be one of ${allowed.join(', ')}`);
  return v as T;
}

const hasDotDot = (p: string) => p.split(/[\\/]/).includes('..');
