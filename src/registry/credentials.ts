import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { once } from '../oci/digest.js';
import { canonicalRegistry, DOCKER_HUB } from './reference.js';

/**
 * What a registry login yields. `identityToken` is an OAuth2 refresh token for the token
 * endpoint (Docker config `identitytoken`); `registryToken` is a bearer token sent to the
 * registry as is (Docker config `registrytoken`).
 */
export interface Credentials {
  username?: string;
  password?: string;
  identityToken?: string;
  registryToken?: string;
}

/** Credentials for a registry, by the name references use (`docker.io`, `ghcr.io`, `localhost:5000`). */
export type CredentialProvider = (host: string) => Promise<Credentials | undefined>;

/** Runs a credential helper with `input` on stdin. Command lines are data (docs/architecture.md#dependencies). */
export type HelperRunner = (program: string, args: readonly string[], input: string) => Promise<HelperResult>;
export interface HelperResult {
  code: number;
  stdout: string;
  stderr: string;
}

export const anonymous: CredentialProvider = async () => undefined;

/** The action's `username`/`token` inputs: for the target repository's host and no other (docs/publishing.md#credentials). */
export function targetCredentials(host: string, username: string | undefined, token: string | undefined): CredentialProvider {
  const target = canonicalRegistry(host);
  return async (h) => (token && canonicalRegistry(h) === target ? { username: username || undefined, password: token } : undefined);
}

/**
 * Credentials for the target repository's host and the others (docs/publishing.md#credentials): the inputs, else the
 * Docker config. In Actions the `token` input defaults to `github.token`, an installation token
 * (`ghs_…`) that only GitHub's registry takes: for another registry it is not a token the user
 * chose, so what docker/login-action wrote for that host comes first, and the inputs only after.
 */
export function repositoryCredentials(
  target: string,
  username: string | undefined,
  token: string | undefined,
  dockerConfig: CredentialProvider,
): CredentialProvider {
  const inputs = targetCredentials(target, username, token);
  const githubDefault = token?.startsWith('ghs_') === true && canonicalRegistry(target) !== 'ghcr.io';
  return githubDefault ? chainCredentials(dockerConfig, inputs) : chainCredentials(inputs, dockerConfig);
}

/** The first provider that has credentials for a host wins. */
export function chainCredentials(...providers: readonly CredentialProvider[]): CredentialProvider {
  return async (host) => {
    for (const p of providers) {
      const c = await p(host);
      if (c) return c;
    }
    return undefined;
  };
}

interface DockerConfig {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string; registrytoken?: string }>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
}

/**
 * Credentials from the Docker CLI config, as docker/login-action writes it:
 * `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. Read once, never written.
 * Lookup order follows the Docker CLI: a `credHelpers` entry for the host, else `credsStore`,
 * else `auths` (also consulted when the store has nothing for the host).
 */
export function dockerConfigCredentials(opts: {
  configDir?: string;
  env: Readonly<Record<string, string | undefined>>;
  runHelper: HelperRunner;
  homeDir?: string;
}): CredentialProvider {
  const dir = opts.configDir ?? (opts.env.DOCKER_CONFIG || join(opts.homeDir ?? (opts.env.HOME || homedir()), '.docker'));
  const file = join(dir, 'config.json');
  const load = once(async (): Promise<DockerConfig> => {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw new Error(`cannot read Docker config ${file}`, { cause: err });
    }
    try {
      return JSON.parse(text) as DockerConfig;
    } catch (err) {
      throw new Error(`Docker config ${file} is not valid JSON${jsonPosition(err)}`);
    }
  });

  return async (host) => {
    const config = await load();
    const registry = canonicalRegistry(host);
    const helper = findByHost(config.credHelpers ?? {}, registry) ?? config.credsStore;
    if (helper) {
      const fromHelper = await fromCredentialHelper(opts.runHelper, helper, registry);
      if (fromHelper) return fromHelper;
    }
    const entry = findByHost(config.auths ?? {}, registry);
    return entry ? fromAuthEntry(entry, registry, file) : undefined;
  };
}

/**
 * Config keys name a registry in several ways: `ghcr.io`, `https://ghcr.io`,
 * `https://ghcr.io/v1/`, and for Docker Hub `https://index.docker.io/v1/` (what `docker login`
 * writes) or `docker.io`. Compare by the host part, canonicalised.
 */
function findByHost<T>(entries: Record<string, T>, registry: string): T | undefined {
  for (const [key, value] of Object.entries(entries)) {
    if (canonicalRegistry(keyHost(key)) === registry) return value;
  }
  return undefined;
}

function keyHost(key: string): string {
  return key.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '').split('/')[0];
}

function fromAuthEntry(entry: NonNullable<DockerConfig['auths']>[string], registry: string, file: string): Credentials | undefined {
  const c: Credentials = {};
  if (entry.auth) {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    // Never quote the value: it is a password.
    if (colon < 0) throw new Error(`Docker config ${file}: the "auth" of ${registry} is not base64 of user:password`);
    c.username = decoded.slice(0, colon);
    c.password = decoded.slice(colon + 1);
  } else {
    if (entry.username) c.username = entry.username;
    if (entry.password) c.password = entry.password;
  }
  if (entry.identitytoken) c.identityToken = entry.identitytoken;
  if (entry.registrytoken) c.registryToken = entry.registrytoken;
  return c.password || c.identityToken || c.registryToken ? c : undefined;
}

/**
 * Where JSON.parse failed (` at position 61 (line 3 column 5)`), or ''. Its error is not kept as
 * a cause: V8's message quotes the text around the failure (`Unexpected token 'g', "ghp_s3cret"…`),
 * here a password or a helper's secret, and the registry client prints causes (describeFailure,
 * errors.ts).
 */
function jsonPosition(err: unknown): string {
  const m = / at position \d+(?: \(line \d+ column \d+\))?/.exec((err as Error | undefined)?.message ?? '');
  return m ? m[0] : '';
}

// docker-credential-helpers answer this on stdout (with exit code 1) for an unknown server.
const NOT_FOUND = /credentials not found/i;

/**
 * `docker-credential-<name> get`, with the server on stdin (never on the command line).
 * Docker Hub's credentials are stored under `https://index.docker.io/v1/`, as `docker login`
 * stores them.
 */
async function fromCredentialHelper(run: HelperRunner, name: string, registry: string): Promise<Credentials | undefined> {
  const program = `docker-credential-${name}`;
  const server = registry === DOCKER_HUB ? 'https://index.docker.io/v1/' : registry;
  let result: HelperResult;
  try {
    result = await run(program, ['get'], server);
  } catch (err) {
    throw new Error(`credential helper ${program} could not be run for ${registry}`, { cause: err });
  }
  if (result.code !== 0) {
    if (NOT_FOUND.test(result.stdout) || NOT_FOUND.test(result.stderr)) return undefined;
    const said = (result.stderr || result.stdout).trim().split('\n')[0].slice(0, 200);
    throw new Error(`credential helper ${program} failed for ${registry} (exit code ${result.code})${said ? `: ${said}` : ''}`);
  }
  let doc: { Username?: string; Secret?: string };
  try {
    doc = JSON.parse(result.stdout) as typeof doc;
  } catch (err) {
    throw new Error(`credential helper ${program} printed something other than JSON for ${registry}${jsonPosition(err)}`);
  }
  if (!doc.Secret) return undefined;
  // The helper protocol marks an identity token by the user name `<token>`.
  return doc.Username === '<token>' ? { identityToken: doc.Secret } : { username: doc.Username, password: doc.Secret };
}

/**
 * The real runner: spawn without a shell, write `input` to stdin, collect the output. `env` is
 * the helper's whole environment (PATH finds it): the run's less the token (wiring.ts, childEnv),
 * since a helper for another host has no business with it. Without one, it is ours.
 */
export const helperRunner = (env?: Record<string, string>): HelperRunner => (program, args, input) =>
  new Promise((resolve, reject) => {
    const child = spawn(program, [...args], { stdio: ['pipe', 'pipe', 'pipe'], shell: false, env });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code) =>
      resolve({ code: code ?? 1, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }),
    );
    child.stdin.on('error', () => {
      // A helper that exits without reading stdin is judged by its exit code, not by EPIPE.
    });
    child.stdin.end(input);
  });

export const spawnHelper: HelperRunner = helperRunner();
