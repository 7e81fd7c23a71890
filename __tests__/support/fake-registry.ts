// An in-process registry speaking enough of the OCI distribution API for protocol tests:
// blobs (HEAD/GET, upload sessions with streamed or ranged PATCH + PUT, cross-repository
// mount), manifests, tags/list with Link pagination, and a token realm. Every request is
// recorded with its headers so that tests can assert on what was sent where. Listens on
// 127.0.0.1 only.
import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Recorded {
  method: string;
  /** Path and query as sent. */
  path: string;
  headers: IncomingHttpHeaders;
  bodyLength: number;
}

/**
 * A response, or `reset` (the connection is cut), `hang` (no answer until the fake closes) or
 * `pass` (the fake's own answer: with a function that resolves later, a delayed request).
 */
export type Canned = { status: number; headers?: Record<string, string>; body?: string } | 'reset' | 'hang' | 'pass';

/** A response to give instead of the real one, to the next `times` matching requests. */
export interface Injection {
  method?: string;
  path?: RegExp;
  times?: number;
  /** A promised answer is sent when it settles: a test can hold one request while others go on. */
  respond: Canned | ((r: Recorded) => Canned | Promise<Canned>);
  /**
   * Answer as soon as the request's headers are in, without reading its body, and close the
   * connection: what a proxy with a body size limit does (nginx's client_max_body_size → 413).
   * Recorded with bodyLength -1.
   */
  early?: boolean;
}

export interface TokenRequestRecord {
  method: string;
  service?: string;
  scopes: string[];
  username?: string;
  grantType?: string;
  status: number;
}

export interface FakeRegistryOptions {
  auth?: 'none' | 'bearer' | 'basic';
  /** username → password accepted by the token realm (bearer) or the registry (basic). */
  users?: Record<string, string>;
  /** Refresh tokens accepted by the realm's OAuth2 POST. */
  refreshTokens?: string[];
  /** Anonymous token requests are granted pull on every repository. */
  anonymousPull?: boolean;
  tokenExpiresIn?: number;
  /** Send absolute upload Locations (distribution does) instead of relative ones (GHCR does). */
  absoluteLocations?: boolean;
  /** Leave Docker-Content-Digest off PUT responses, as some registries do. */
  omitDigestHeader?: boolean;
  /** Refuse PATCH bodies with Content-Range above this, as GHCR does above 4 MiB (with a 416). */
  maxRangedPatchBytes?: number;
  /** The bearer realm the challenge names, when the token endpoint is reached another way (e.g. a TLS proxy to `${url}/token`). */
  realm?: string;
  /** Refuse any PATCH body above this, with `tooLargeStatus`: a registry with a per-request cap. */
  maxPatchBytes?: number;
  /** The status of a refusal for size; 416 by default, as GHCR answers. */
  tooLargeStatus?: number;
  /** Refuse chunked uploads: every PATCH is a 405, as some registry proxies answer. */
  noChunkedUploads?: boolean;
  /** `always-202`: answer every mount by starting an upload. */
  mount?: 'normal' | 'always-202';
  /** Where blob GETs are redirected (absolute URL or a path on this server); undefined serves directly. */
  blobRedirect?: (digest: string) => string | undefined;
  /** The minimum chunk size a POST's answer announces (`OCI-Chunk-Min-Length`, distribution spec). */
  chunkMinLength?: number;
  /** Page size for tags/list when the client sends no `n`. */
  tagPageSize?: number;
}

interface Session {
  repo: string;
  parts: Buffer[];
  size: number;
}

type Access = Map<string, Set<string>>;

export class FakeRegistry {
  readonly requests: Recorded[] = [];
  readonly tokenRequests: TokenRequestRecord[] = [];
  /** Content by digest, and which repositories link to it. */
  readonly blobs = new Map<string, Buffer>();
  readonly repoBlobs = new Map<string, Set<string>>();
  readonly manifests = new Map<string, Map<string, { bytes: Buffer; mediaType: string }>>();
  readonly tags = new Map<string, Map<string, string>>();
  readonly sessions = new Map<string, Session>();
  /** The most upload sessions open at once, to check a client's concurrency bound. */
  maxOpenSessions = 0;
  private readonly injections: Injection[] = [];
  private readonly issued = new Map<string, Access>();
  private state = 0;

  private constructor(
    private readonly server: Server,
    readonly host: string,
    readonly opts: FakeRegistryOptions,
  ) {}

  static async start(opts: FakeRegistryOptions = {}): Promise<FakeRegistry> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const fake = new FakeRegistry(server, `127.0.0.1:${port}`, opts);
    server.on('request', (req, res) => {
      fake.handle(req, res).catch((err) => {
        if (!res.headersSent) send(res, 500, {}, String(err));
      });
    });
    return fake;
  }

  get url(): string {
    return `http://${this.host}`;
  }

  inject(i: Injection): void {
    this.injections.push({ times: 1, ...i });
  }

  /** Store a blob in a repository, as if pushed earlier. */
  addBlob(repo: string, bytes: Buffer): string {
    const digest = sha256(bytes);
    this.blobs.set(digest, bytes);
    this.link(repo, digest);
    return digest;
  }

  addManifest(repo: string, bytes: Buffer, mediaType: string, tag?: string): string {
    const digest = sha256(bytes);
    this.repoManifests(repo).set(digest, { bytes, mediaType });
    if (tag) this.repoTags(repo).set(tag, digest);
    return digest;
  }

  /** Requests other than token requests, optionally filtered. */
  seen(method?: string, path?: RegExp): Recorded[] {
    return this.requests.filter((r) => (!method || r.method === method) && (!path || path.test(r.path)));
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse) {
    const early = this.injections.find((i) => i.early && (i.times ?? 1) > 0 && (!i.method || i.method === req.method) && (!i.path || i.path.test(req.url ?? '')));
    if (early) {
      early.times = (early.times ?? 1) - 1;
      const rec: Recorded = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, bodyLength: -1 };
      this.requests.push(rec);
      const canned = typeof early.respond === 'function' ? await early.respond(rec) : early.respond;
      if (typeof canned === 'string') throw new Error('an early answer is a response');
      return send(res, canned.status, { ...canned.headers, Connection: 'close' }, canned.body ?? '');
    }
    const body = await readBody(req);
    const url = new URL(req.url ?? '/', this.url);
    const rec: Recorded = { method: req.method ?? '', path: url.pathname + url.search, headers: req.headers, bodyLength: body.length };
    if (url.pathname === '/token') return this.token(req, res, url, body);
    this.requests.push(rec);

    const inj = this.injections.find((i) => (i.times ?? 1) > 0 && (!i.method || i.method === rec.method) && (!i.path || i.path.test(rec.path)));
    if (inj) {
      inj.times = (inj.times ?? 1) - 1;
      const canned = typeof inj.respond === 'function' ? await inj.respond(rec) : inj.respond;
      if (canned === 'reset') {
        req.socket.destroy();
        return;
      }
      if (canned === 'hang') return;
      if (canned !== 'pass') return send(res, canned.status, canned.headers ?? {}, canned.body ?? '');
    }

    if (url.pathname.startsWith('/_storage/')) {
      const blob = this.blobs.get(url.pathname.slice('/_storage/'.length));
      return blob ? send(res, 200, { 'Content-Type': 'application/octet-stream' }, blob) : send(res, 404, {}, '');
    }
    if (url.pathname === '/v2/' || url.pathname === '/v2') {
      if (!this.authorized(req, undefined, 'pull')) return this.challenge(res, undefined, 'pull');
      return send(res, 200, {}, '{}');
    }

    let m: RegExpExecArray | null;
    if ((m = /^\/v2\/(.+)\/blobs\/uploads\/([^/]*)$/.exec(url.pathname))) return this.uploads(req, res, url, m[1], m[2], body);
    if ((m = /^\/v2\/(.+)\/blobs\/(sha256:[a-f0-9]{64})$/.exec(url.pathname))) return this.blob(req, res, m[1], m[2]);
    if ((m = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(url.pathname))) return this.manifest(req, res, m[1], decodeURIComponent(m[2]), body);
    if ((m = /^\/v2\/(.+)\/tags\/list$/.exec(url.pathname))) return this.tagList(req, res, url, m[1]);
    return errorReply(res, 404, 'NOT_FOUND', 'no such route');
  }

  // --- auth ---

  private authorized(req: IncomingMessage, repo: string | undefined, action: 'pull' | 'push'): boolean {
    const mode = this.opts.auth ?? 'none';
    if (mode === 'none') return true;
    const header = req.headers.authorization ?? '';
    if (mode === 'basic') {
      const user = basicUser(header, this.opts.users ?? {});
      return user !== undefined;
    }
    const m = /^Bearer (.+)$/.exec(header);
    const access = m ? this.issued.get(m[1]) : undefined;
    if (!access) return false;
    if (!repo) return true;
    return access.get(`repository:${repo}`)?.has(action) ?? false;
  }

  private challenge(res: ServerResponse, repo: string | undefined, action: string) {
    const mode = this.opts.auth;
    const header =
      mode === 'basic'
        ? 'Basic realm="fake-registry"'
        : `Bearer realm="${this.opts.realm ?? `${this.url}/token`}",service="fake-registry"${repo ? `,scope="repository:${repo}:${action}"` : ''}`;
    return errorReply(res, 401, 'UNAUTHORIZED', 'authentication required', { 'WWW-Authenticate': header });
  }

  private token(req: IncomingMessage, res: ServerResponse, url: URL, body: Buffer) {
    let scopes: string[];
    let service: string | undefined;
    let username: string | undefined;
    let grantType: string | undefined;
    let ok: boolean;
    if (req.method === 'POST') {
      const form = new URLSearchParams(body.toString('utf8'));
      grantType = form.get('grant_type') ?? undefined;
      scopes = (form.get('scope') ?? '').split(' ').filter(Boolean);
      service = form.get('service') ?? undefined;
      ok = grantType === 'refresh_token' && (this.opts.refreshTokens ?? []).includes(form.get('refresh_token') ?? '');
      username = ok ? 'refresh' : undefined;
    } else {
      scopes = url.searchParams.getAll('scope');
      service = url.searchParams.get('service') ?? undefined;
      const header = req.headers.authorization;
      if (header) {
        username = basicUser(header, this.opts.users ?? {});
        ok = username !== undefined;
      } else {
        ok = true;
      }
    }
    const record: TokenRequestRecord = { method: req.method ?? '', service, scopes, username, grantType, status: ok ? 200 : 401 };
    this.tokenRequests.push(record);
    if (!ok) return send(res, 401, { 'Content-Type': 'application/json' }, JSON.stringify({ details: 'incorrect username or password' }));
    const access: Access = new Map();
    for (const s of scopes) {
      const i = s.lastIndexOf(':');
      const actions = s.slice(i + 1).split(',');
      const granted = username ? actions : this.opts.anonymousPull ? actions.filter((a) => a === 'pull') : [];
      const set = access.get(s.slice(0, i)) ?? new Set<string>();
      for (const a of granted) set.add(a);
      access.set(s.slice(0, i), set);
    }
    const token = `tok-${randomUUID()}`;
    this.issued.set(token, access);
    const doc: Record<string, unknown> = { token, access_token: token, issued_at: new Date(0).toISOString() };
    if (this.opts.tokenExpiresIn !== undefined) doc.expires_in = this.opts.tokenExpiresIn;
    return send(res, 200, { 'Content-Type': 'application/json' }, JSON.stringify(doc));
  }

  // --- blobs ---

  private blob(req: IncomingMessage, res: ServerResponse, repo: string, digest: string) {
    if (!this.authorized(req, repo, 'pull')) return this.challenge(res, repo, 'pull');
    const bytes = this.repoBlobs.get(repo)?.has(digest) ? this.blobs.get(digest) : undefined;
    if (!bytes) return errorReply(res, 404, 'BLOB_UNKNOWN', 'blob unknown to registry', {}, req.method === 'HEAD');
    const redirect = req.method === 'GET' ? this.opts.blobRedirect?.(digest) : undefined;
    if (redirect) return send(res, 307, { Location: redirect }, '');
    const headers = { 'Content-Type': 'application/octet-stream', 'Docker-Content-Digest': digest, 'Content-Length': String(bytes.length) };
    return send(res, 200, headers, req.method === 'HEAD' ? '' : bytes);
  }

  private uploads(req: IncomingMessage, res: ServerResponse, url: URL, repo: string, id: string, body: Buffer) {
    if (!this.authorized(req, repo, 'push')) return this.challenge(res, repo, 'pull,push');
    const method = req.method;
    if (method === 'POST' && id === '') {
      const mount = url.searchParams.get('mount');
      const from = url.searchParams.get('from');
      if (mount && from && this.opts.mount !== 'always-202' && this.repoBlobs.get(from)?.has(mount) && this.canPull(req, from)) {
        this.link(repo, mount);
        return send(res, 201, { Location: this.loc(`/v2/${repo}/blobs/${mount}`), 'Docker-Content-Digest': mount }, '');
      }
      const uuid = randomUUID();
      this.sessions.set(uuid, { repo, parts: [], size: 0 });
      this.maxOpenSessions = Math.max(this.maxOpenSessions, this.sessions.size);
      const started: Record<string, string> = { Location: this.sessionLocation(repo, uuid), Range: '0-0', 'Docker-Upload-UUID': uuid };
      if (this.opts.chunkMinLength !== undefined) started['OCI-Chunk-Min-Length'] = String(this.opts.chunkMinLength);
      return send(res, 202, started, '');
    }
    const session = this.sessions.get(id);
    if (!session || session.repo !== repo) return errorReply(res, 404, 'BLOB_UPLOAD_UNKNOWN', 'blob upload unknown to registry');
    if (method === 'PATCH') {
      if (this.opts.noChunkedUploads) return errorReply(res, 405, 'UNSUPPORTED', 'chunked uploads are not supported');
      // Without Content-Range, a streamed PATCH: the body is appended (distribution's "stream upload").
      const ranged = req.headers['content-range'] !== undefined;
      const range = /^(\d+)-(\d+)$/.exec(String(req.headers['content-range'] ?? ''));
      if (ranged && (!range || Number(range[1]) !== session.size || Number(range[2]) - Number(range[1]) + 1 !== body.length)) {
        return errorReply(res, 416, 'BLOB_UPLOAD_INVALID', `bad Content-Range ${req.headers['content-range']} at ${session.size}`);
      }
      const cap = ranged ? Math.min(this.opts.maxRangedPatchBytes ?? Infinity, this.opts.maxPatchBytes ?? Infinity) : (this.opts.maxPatchBytes ?? Infinity);
      if (body.length > cap) {
        // GHCR's words for a PATCH over its cap.
        return errorReply(res, this.opts.tooLargeStatus ?? 416, 'SIZE_INVALID', 'the request body is too large and exceeds the maximum permissible limit of 4.00MiB');
      }
      session.parts.push(body);
      session.size += body.length;
      return send(res, 202, { Location: this.sessionLocation(repo, id), Range: `0-${session.size - 1}`, 'Docker-Upload-UUID': id }, '');
    }
    if (method === 'PUT') {
      const digest = url.searchParams.get('digest') ?? '';
      const data = Buffer.concat([...session.parts, body]);
      if (sha256(data) !== digest) return errorReply(res, 400, 'DIGEST_INVALID', 'provided digest did not match uploaded content');
      this.sessions.delete(id);
      this.blobs.set(digest, data);
      this.link(repo, digest);
      const headers: Record<string, string> = { Location: this.loc(`/v2/${repo}/blobs/${digest}`) };
      if (!this.opts.omitDigestHeader) headers['Docker-Content-Digest'] = digest;
      return send(res, 201, headers, '');
    }
    if (method === 'DELETE') {
      this.sessions.delete(id);
      return send(res, 204, {}, '');
    }
    return errorReply(res, 405, 'UNSUPPORTED', 'method not allowed');
  }

  private canPull(req: IncomingMessage, repo: string): boolean {
    return (this.opts.auth ?? 'none') !== 'bearer' || this.authorized(req, repo, 'pull');
  }

  private sessionLocation(repo: string, id: string): string {
    // A `_state` query, as distribution sends, checks that `digest=` is appended with `&`.
    return this.loc(`/v2/${repo}/blobs/uploads/${id}?_state=s${++this.state}`);
  }

  private loc(path: string): string {
    return this.opts.absoluteLocations ? `${this.url}${path}` : path;
  }

  // --- manifests and tags ---

  private manifest(req: IncomingMessage, res: ServerResponse, repo: string, ref: string, body: Buffer) {
    const push = req.method === 'PUT' || req.method === 'DELETE';
    if (!this.authorized(req, repo, push ? 'push' : 'pull')) return this.challenge(res, repo, push ? 'pull,push' : 'pull');
    if (req.method === 'PUT') {
      const mediaType = String(req.headers['content-type'] ?? '');
      const doc = JSON.parse(body.toString('utf8')) as { config?: { digest: string }; layers?: { digest: string; urls?: string[] }[]; manifests?: { digest: string }[] };
      const digest = sha256(body);
      if (ref.startsWith('sha256:') && ref !== digest) return errorReply(res, 400, 'DIGEST_INVALID', 'manifest digest mismatch');
      const blobs = [doc.config?.digest, ...(doc.layers ?? []).filter((l) => !l.urls?.length).map((l) => l.digest)].filter((d): d is string => !!d);
      for (const d of blobs) if (!this.repoBlobs.get(repo)?.has(d)) return errorReply(res, 400, 'MANIFEST_BLOB_UNKNOWN', `blob unknown: ${d}`);
      for (const d of doc.manifests ?? []) if (!this.manifests.get(repo)?.has(d.digest)) return errorReply(res, 400, 'MANIFEST_UNKNOWN', `manifest unknown: ${d.digest}`);
      this.addManifest(repo, body, mediaType, ref.startsWith('sha256:') ? undefined : ref);
      const headers: Record<string, string> = { Location: this.loc(`/v2/${repo}/manifests/${digest}`) };
      if (!this.opts.omitDigestHeader) headers['Docker-Content-Digest'] = digest;
      return send(res, 201, headers, '');
    }
    const digest = ref.startsWith('sha256:') ? ref : this.tags.get(repo)?.get(ref);
    const m = digest ? this.manifests.get(repo)?.get(digest) : undefined;
    if (!m || !digest) return errorReply(res, 404, 'MANIFEST_UNKNOWN', 'manifest unknown', {}, req.method === 'HEAD');
    const headers: Record<string, string> = { 'Content-Type': m.mediaType, 'Content-Length': String(m.bytes.length) };
    if (!this.opts.omitDigestHeader) headers['Docker-Content-Digest'] = digest;
    return send(res, 200, headers, req.method === 'HEAD' ? '' : m.bytes);
  }

  private tagList(req: IncomingMessage, res: ServerResponse, url: URL, repo: string) {
    if (!this.authorized(req, repo, 'pull')) return this.challenge(res, repo, 'pull');
    const all = [...(this.tags.get(repo)?.keys() ?? [])].sort();
    if (!this.manifests.has(repo)) return errorReply(res, 404, 'NAME_UNKNOWN', 'repository name not known to registry');
    const n = Number(url.searchParams.get('n') ?? this.opts.tagPageSize ?? 0) || all.length;
    const last = url.searchParams.get('last');
    const start = last ? all.findIndex((t) => t > last) : 0;
    const page = start < 0 ? [] : all.slice(start, start + n);
    const headers: Record<string, string> = { 'Content-Type': 'application/json' };
    if (start >= 0 && start + n < all.length) headers.Link = `</v2/${repo}/tags/list?n=${n}&last=${encodeURIComponent(page[page.length - 1])}>; rel="next"`;
    return send(res, 200, headers, JSON.stringify({ name: repo, tags: page }));
  }

  private link(repo: string, digest: string) {
    const set = this.repoBlobs.get(repo) ?? new Set<string>();
    set.add(digest);
    this.repoBlobs.set(repo, set);
  }

  private repoManifests(repo: string) {
    const m = this.manifests.get(repo) ?? new Map<string, { bytes: Buffer; mediaType: string }>();
    this.manifests.set(repo, m);
    return m;
  }

  private repoTags(repo: string) {
    const m = this.tags.get(repo) ?? new Map<string, string>();
    this.tags.set(repo, m);
    return m;
  }
}

/** A second server standing in for blob storage (an S3 bucket behind a redirect): serves `/blobs/<digest>`. */
export class FakeStorage {
  readonly requests: Recorded[] = [];
  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(blobs: Map<string, Buffer>): Promise<FakeStorage> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const storage = new FakeStorage(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    server.on('request', (req, res) => {
      const url = new URL(req.url ?? '/', storage.url);
      storage.requests.push({ method: req.method ?? '', path: url.pathname + url.search, headers: req.headers, bodyLength: 0 });
      const blob = blobs.get(url.pathname.replace(/^\/blobs\//, ''));
      if (!blob) return send(res, 404, {}, '');
      send(res, 200, { 'Content-Type': 'application/octet-stream' }, blob);
    });
    return storage;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function send(res: ServerResponse, status: number, headers: Record<string, string>, body: string | Buffer) {
  res.writeHead(status, headers);
  res.end(body);
}

function errorReply(res: ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}, head = false) {
  send(res, status, { 'Content-Type': 'application/json', ...headers }, head ? '' : JSON.stringify({ errors: [{ code, message, detail: null }] }));
}

function basicUser(header: string, users: Record<string, string>): string | undefined {
  const m = /^Basic (.+)$/.exec(header);
  if (!m) return undefined;
  const decoded = Buffer.from(m[1], 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  const [user, pass] = [decoded.slice(0, i), decoded.slice(i + 1)];
  return i >= 0 && users[user] !== undefined && users[user] === pass ? user : undefined;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

export const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
