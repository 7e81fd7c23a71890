// Real registries for tests: Debian's `docker-registry` (distribution 2.8), one process per
// registry, each with its own config and storage in a fresh temp dir, on 127.0.0.1 only.
//
// `auth: 'token'` behaves like ghcr.io: the registry answers 401 with a Bearer challenge that
// points at a small token service in this process, which issues JWTs per the distribution
// token spec (docs/spec/auth/token.md, jwt.md, oauth.md), signed with a throw-away key whose
// self-signed certificate the registry trusts through `auth.token.rootcertbundle`.
import { spawn, execFile } from 'node:child_process';
import { createSign, randomBytes, randomUUID, X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export type RegistryAuth = 'token' | 'basic' | 'none';

/** One access entry of a token (`access` claim), as the token spec defines it. */
export interface TokenAccess {
  type: string;
  name: string;
  actions: string[];
}

/** One request seen by the token service, for tests to assert on. */
export interface TokenRequest {
  method: 'GET' | 'POST';
  /** `password` / `refresh_token` for the OAuth2 POST form; undefined for GET. */
  grantType?: string;
  service: string;
  /** The scopes exactly as asked (`repository:name:pull,push`). */
  scopes: string[];
  /** True when the request carried valid credentials (Basic, password grant or refresh token). */
  authenticated: boolean;
  /** What the token grants; empty when the request was refused. */
  granted: TokenAccess[];
  status: number;
}

export interface TestRegistry {
  /** `127.0.0.1:PORT`, spoken to over plain HTTP. */
  host: string;
  auth: RegistryAuth;
  /** Credentials that the registry (or its token service) accepts; '' for `none`. */
  username: string;
  password: string;
  /** Token service requests in order (always empty unless `auth: 'token'`). */
  tokenRequests: TokenRequest[];
  /** The docker-registry process, for tests that check it is gone after stop(). */
  pid: number;
  /** Kill the registry and the token service, and remove the temp dir. Idempotent. */
  stop(): Promise<void>;
}

/** The repository prefix anonymous clients may pull from, like public packages on ghcr.io. */
export const PUBLIC_PREFIX = 'public/';
const ISSUER = 'ko-annotate-test-token-issuer';
const TOKEN_TTL_SECONDS = 300;
const READY_TIMEOUT_MS = 20_000;

export async function startRegistry(opts: { auth: RegistryAuth }): Promise<TestRegistry> {
  const dir = await mkdtemp(join(tmpdir(), 'ko-annotate-registry-'));
  const username = opts.auth === 'none' ? '' : 'ko-test';
  const password = opts.auth === 'none' ? '' : randomBytes(12).toString('hex');
  const tokenRequests: TokenRequest[] = [];
  let tokenServer: TokenServer | undefined;
  let proc: RegistryProcess | undefined;
  const stop = async () => {
    await proc?.stop();
    await tokenServer?.close();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    let auth: Record<string, unknown> | undefined;
    if (opts.auth === 'basic') {
      const path = join(dir, 'htpasswd');
      await writeFile(path, await bcryptHtpasswdLine(username, password));
      auth = { htpasswd: { realm: 'ko-annotate-test', path } };
    }
    // A port taken between our probe and the registry's bind (another jest worker) is
    // retried with a fresh one; the registry exits at once in that case.
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const host = `127.0.0.1:${port}`;
      if (opts.auth === 'token') {
        tokenServer ??= await startTokenServer(dir, { username, password, tokenRequests });
        auth = {
          token: {
            realm: `http://${tokenServer.host}/token`,
            // ghcr.io names itself as the service; so do we.
            service: host,
            issuer: ISSUER,
            rootcertbundle: tokenServer.certPath,
          },
        };
      }
      const config = join(dir, `config-${attempt}.yml`);
      await writeFile(config, registryConfig({ addr: host, storage: join(dir, 'storage'), auth }));
      try {
        proc = await startRegistryProcess(config, join(dir, `registry-${attempt}.log`), host);
        const registry: TestRegistry = { host, auth: opts.auth, username, password, tokenRequests, pid: proc.pid, stop };
        return registry;
      } catch (err) {
        if (attempt >= 3 || !/address already in use/.test(String(err))) throw err;
      }
    }
  } catch (err) {
    await stop();
    throw err;
  }
}

// ---------------------------------------------------------------------------------------
// The registry process

function registryConfig(o: { addr: string; storage: string; auth?: Record<string, unknown> }): string {
  // JSON is YAML, so the config needs no YAML writer.
  const config = {
    version: 0.1,
    log: { level: 'warn', accesslog: { disabled: true }, formatter: 'text' },
    storage: {
      filesystem: { rootdirectory: o.storage },
      delete: { enabled: true },
      // Upload purging would run a background walk; tests are short-lived.
      maintenance: { uploadpurging: { enabled: false } },
    },
    http: { addr: o.addr, secret: randomBytes(16).toString('hex'), headers: { 'X-Content-Type-Options': ['nosniff'] } },
    ...(o.auth ? { auth: o.auth } : {}),
  };
  return JSON.stringify(config, null, 2) + '\n';
}

export const registryBinary = (): string =>
  process.env.KO_ANNOTATE_TEST_REGISTRY_BIN ?? (existsSync('/usr/bin/docker-registry') ? '/usr/bin/docker-registry' : 'docker-registry');

interface RegistryProcess {
  pid: number;
  stop(): Promise<void>;
}

/**
 * Start `docker-registry serve <config>` under a small shell watchdog that holds our stdin
 * pipe: when this process ends by any means (even SIGKILL, when no exit hook could run) the
 * pipe closes, `read` returns and the watchdog kills the registry. stop() closes the pipe.
 * The watchdog also exits as soon as the registry dies by itself (e.g. port in use).
 */
async function startRegistryProcess(config: string, logFile: string, host: string): Promise<RegistryProcess> {
  const script = [
    '"$0" serve "$1" >"$2" 2>&1 </dev/null &',
    'pid=$!',
    'echo "$pid"',
    '( while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done; kill -TERM $$ 2>/dev/null ) &',
    'read -r _ || true',
    'kill "$pid" 2>/dev/null',
    'wait "$pid"',
  ].join('\n');
  const child = spawn('bash', ['-c', script, registryBinary(), config, logFile], { stdio: ['pipe', 'pipe', 'ignore'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.stdin!.on('error', () => {}); // EPIPE once the watchdog is gone
  const pid = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      if (out.includes('\n')) resolve(Number(out.trim()));
    });
    child.once('error', reject);
    child.once('exit', () => reject(new Error('registry watchdog exited at once')));
  });
  child.stdout!.resume();
  const running = () => child.exitCode === null && child.signalCode === null;
  const stop = async () => {
    if (running()) {
      child.stdin!.end();
      const timer = setTimeout(() => {
        killQuietly(pid);
        child.kill('SIGKILL');
      }, 5_000);
      await exited;
      clearTimeout(timer);
    }
  };
  const log = async () => (await readFile(logFile, 'utf8').catch(() => '')).trim();
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (!running()) {
      throw new Error(`docker-registry exited before serving ${host}:\n${await log()}`);
    }
    try {
      const res = await fetch(`http://${host}/v2/`, { signal: AbortSignal.timeout(2_000) });
      await res.arrayBuffer();
      if (res.status === 200 || res.status === 401) return { pid, stop };
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`docker-registry did not answer on http://${host}/v2/ within ${READY_TIMEOUT_MS} ms:\n${await log()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

function killQuietly(pid: number) {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** A port that was free a moment ago on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** One htpasswd line with a bcrypt hash (the only hash distribution's htpasswd accepts). */
async function bcryptHtpasswdLine(username: string, password: string): Promise<string> {
  // -i reads the password from stdin, so it never appears on a command line.
  const child = execFile('htpasswd', ['-n', '-i', '-B', username]);
  child.stdin!.end(password);
  const out = await new Promise<string>((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`htpasswd failed (${code}): ${stderr}`))));
  });
  const line = out.split('\n').find((l) => l.startsWith(`${username}:`));
  if (!line) throw new Error(`htpasswd printed no line for ${username}`);
  return line + '\n';
}

// ---------------------------------------------------------------------------------------
// The token service

interface TokenServer {
  host: string;
  certPath: string;
  close(): Promise<void>;
}

async function startTokenServer(
  dir: string,
  o: { username: string; password: string; tokenRequests: TokenRequest[] },
): Promise<TokenServer> {
  const keyPath = join(dir, 'token.key');
  const certPath = join(dir, 'token.crt');
  await run('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '2',
    '-subj', '/CN=ko-annotate test token issuer', '-keyout', keyPath, '-out', certPath,
  ]);
  const key = await readFile(keyPath, 'utf8');
  // The registry checks the x5c chain against its rootcertbundle, then the signature with
  // the leaf's key; our self-signed certificate is both the chain and the root.
  const x5c = [new X509Certificate(await readFile(certPath)).raw.toString('base64')];
  const refreshTokens = new Map<string, string>();

  const issue = (service: string, subject: string, access: TokenAccess[]) => {
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'RS256', x5c };
    const claims = {
      iss: ISSUER,
      sub: subject,
      aud: service,
      exp: now + TOKEN_TTL_SECONDS,
      nbf: now - 10,
      iat: now,
      jti: randomUUID(),
      access,
    };
    const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const signature = createSign('RSA-SHA256').update(signingInput).sign(key);
    return `${signingInput}.${b64url(signature)}`;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://token.invalid');
    if (url.pathname !== '/token' || (req.method !== 'GET' && req.method !== 'POST')) {
      return send(res, 404, { errors: [{ code: 'NOT_FOUND', message: 'not found' }] });
    }
    const record: TokenRequest = { method: req.method, service: '', scopes: [], authenticated: false, granted: [], status: 0 };
    o.tokenRequests.push(record);
    let params = url.searchParams;
    let user: string | undefined; // undefined: anonymous
    let badCredentials = false;
    let offline = false;
    if (req.method === 'POST') {
      // OAuth2 form (docs/spec/auth/oauth.md): scopes are space-separated in one `scope`.
      params = new URLSearchParams(await readBody(req));
      record.grantType = params.get('grant_type') ?? '';
      if (record.grantType === 'password') {
        if (params.get('username') === o.username && params.get('password') === o.password) user = o.username;
        else badCredentials = true;
        offline = params.get('access_type') === 'offline';
      } else if (record.grantType === 'refresh_token') {
        user = refreshTokens.get(params.get('refresh_token') ?? '');
        if (!user) badCredentials = true;
      } else {
        return reply(400, { error: 'unsupported_grant_type' });
      }
    } else {
      const basic = parseBasic(req.headers.authorization);
      if (basic) {
        if (basic.username === o.username && basic.password === o.password) user = o.username;
        else badCredentials = true;
      }
      offline = params.get('offline_token') === 'true';
    }
    record.service = params.get('service') ?? '';
    record.scopes = params.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean);
    record.authenticated = user !== undefined;
    function reply(status: number, body: unknown) {
      record.status = status;
      return send(res, status, body);
    }
    if (badCredentials) {
      return reply(401, { errors: [{ code: 'UNAUTHORIZED', message: 'invalid credentials' }] });
    }
    record.granted = record.scopes.map(parseScope).flatMap((s) => (s ? grant(s, user !== undefined) : []));
    const token = issue(record.service, user ?? '', record.granted);
    const body: Record<string, unknown> = {
      token,
      access_token: token,
      expires_in: TOKEN_TTL_SECONDS,
      issued_at: new Date().toISOString(),
    };
    if (offline && user !== undefined) {
      const refresh = randomBytes(16).toString('hex');
      refreshTokens.set(refresh, user);
      body.refresh_token = refresh;
    }
    return reply(200, body);
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err) => send(res, 500, { errors: [{ code: 'UNKNOWN', message: String(err) }] }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    host: `127.0.0.1:${port}`,
    certPath,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * ghcr.io's policy, reduced: a valid user gets what was asked; anonymous clients get `pull`
 * on public repositories and nothing else (the token is still issued, per the spec, and the
 * registry then answers 401 insufficient_scope).
 */
function grant(scope: TokenAccess, authenticated: boolean): TokenAccess[] {
  if (authenticated) return [scope];
  if (scope.type !== 'repository' || !scope.name.startsWith(PUBLIC_PREFIX)) return [];
  const actions = scope.actions.filter((a) => a === 'pull');
  return actions.length ? [{ ...scope, actions }] : [];
}

/** `type[(class)]:name:actions` (docs/spec/auth/scope.md): type up to the first ':', actions after the last. */
export function parseScope(s: string): TokenAccess | undefined {
  const first = s.indexOf(':');
  const last = s.lastIndexOf(':');
  if (first < 0 || last === first) return undefined;
  const type = s.slice(0, first).replace(/\(.*\)$/, '');
  const actions = s.slice(last + 1).split(',').filter(Boolean);
  return { type, name: s.slice(first + 1, last), actions };
}

function parseBasic(header: string | undefined): { username: string; password: string } | undefined {
  const m = /^Basic\s+(\S+)$/i.exec(header ?? '');
  if (!m) return undefined;
  const decoded = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function send(res: ServerResponse, status: number, body: unknown) {
  const bytes = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': bytes.length });
  res.end(bytes);
}

const b64url = (v: string | Buffer): string => Buffer.from(v).toString('base64url');
