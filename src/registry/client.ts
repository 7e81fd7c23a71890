import { createHash } from 'node:crypto';
import { pipeline, Readable, Transform } from 'node:stream';
import type { Logger } from '../log.js';
import { isDigest, once, sha256 } from '../oci/digest.js';
import { tee, type BlobOrigin } from '../oci/layer.js';
import { isIndexMediaType, isManifestMediaType, manifestAccept, MediaType, type Descriptor, type Index } from '../oci/spec.js';
import type { ContentSource, RawManifest } from '../oci/store.js';
import type { CredentialProvider, Credentials } from './credentials.js';
import { isRetryableStatus, parseErrorBody, RegistryError, type Operation } from './errors.js';
import { send, type HttpResponse } from './http.js';
import { apiHost, canonicalRegistry, isLoopbackHost, isValidTag } from './reference.js';
import { isTransientNetworkError, parseRetryAfter, RetryPolicy, type RetryEvent } from './retry.js';

export interface RegistryOptions {
  credentials: CredentialProvider;
  logger: Logger;
  retry?: RetryPolicy;
  userAgent?: string;
  /** For token lifetimes; defaults to Date.now. */
  now?: () => number;
  /** Largest PATCH body of the ranged fallback; see CHUNK_SIZE. */
  chunkSize?: number;
  /** Blobs up to this size go up with their commit, in one PUT; see SMALL_BLOB. */
  smallBlob?: number;
  /**
   * How long one request may go without sending body bytes or receiving its response headers
   * before it counts as stalled and is retried (docs/reliability.md: timeouts are retried). Undefined:
   * no limit but the run's deadline.
   */
  requestTimeoutMs?: number;
  /** How long a connection may move no bytes, at any point of a request; see IDLE_TIMEOUT_MS. */
  idleTimeoutMs?: number;
  /**
   * Token refusals (401/403 from the token realm) seen so far, shared by the clients of one run:
   * credentials refused for a scope are not offered again for it, by this client or another
   * sharing the map; the request fails at once with the same reason.
   */
  refusals?: TokenRefusals;
  /** Upload protocols fallen back to (see Repository.uploadBlob), shared like `refusals`. */
  uploadFallbacks?: UploadFallbacks;
}

/** See RegistryOptions.refusals: by host and scope set, what the realm answered. */
export type TokenRefusals = Map<string, RegistryError['init']>;

/** See RegistryOptions.uploadFallbacks: by host, the protocol a refused upload fell back to. */
export type UploadFallbacks = Map<string, UploadProtocol>;

/** Upload progress: bytes of the blob sent so far (read from the source for a streamed body). */
export type ProgressListener = (sentBytes: number) => void;

/**
 * The chunk size of the ranged fallback (see Repository.uploadBlob): GHCR refuses a PATCH with
 * Content-Range whose body is above 4 MiB ("exceeds the maximum permissible limit of
 * 4.00MiB"). Each chunk is held in memory once; a layer is never held whole.
 */
export const CHUNK_SIZE = 4 * 1024 * 1024;
/** The largest `OCI-Chunk-Min-Length` followed: a chunk is held in memory, and must stay small. */
const MAX_MIN_CHUNK = 64 * 1024 * 1024;
/**
 * Blobs up to this size (configs, SBOM documents) are uploaded monolithically: POST, then the
 * PUT `?digest=` that carries the bytes — one round trip less than a PATCH and its commit. The
 * distribution spec's monolithic upload, which every registry implements.
 */
export const SMALL_BLOB = 1024 * 1024;
/**
 * A connection silent for this long, waiting for an answer or in the middle of a body, is cut
 * and the request retried: without it, a registry that stops answering would hold a run until
 * the job's own limit (hours). As long as undici's header and body timeouts, which fetch had.
 */
export const IDLE_TIMEOUT_MS = 300_000;
/** Manifests are small; the OCI spec asks registries to accept at least 4 MiB. */
const MAX_MANIFEST_BYTES = 16 * 1024 * 1024;
const MAX_REDIRECTS = 10;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

interface Request {
  method: 'GET' | 'HEAD' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
  url: URL;
  repository?: string;
  scopes: readonly string[];
  headers?: Record<string, string>;
  /** Bytes, or an opener for a streamed body (opened again if an auth challenge needs a resend). */
  body?: Body;
  /** False inside an upload, which is retried as a whole with a new session. */
  retry?: boolean;
  /** False to get a 3xx back instead of following it. */
  followRedirects?: boolean;
}

type Body = Buffer | (() => Promise<Readable>);

interface Challenge {
  scheme: 'bearer' | 'basic';
  realm?: string;
  service?: string;
  scope?: string;
}

interface CachedToken {
  scopes: ScopeSet;
  token: string;
  expiresAt: number;
}

/**
 * A registry speaking the OCI distribution API. It owns authentication (one challenge per
 * registry, bearer tokens cached per scope set), redirects, and the retry policy; the
 * Repository methods say what to ask. Authorization is only ever sent to the registry's own
 * origin: not to redirect targets (blob storage) nor to upload Locations elsewhere. The one
 * exception is the token realm, which receives the basic credentials because that is what the
 * token protocol asks of it; it must be HTTPS unless it is on loopback.
 */
export class Registry {
  /** The name references use: `docker.io`, `ghcr.io`, `127.0.0.1:5000`. */
  readonly host: string;
  /** `https://ghcr.io`, `http://127.0.0.1:5000` (plain HTTP for loopback only, docs/publishing.md). */
  readonly baseUrl: string;
  readonly logger: Logger;
  readonly retry: RetryPolicy;
  readonly chunkSize: number;
  readonly smallBlob: number;
  private readonly uploadFallbacks: UploadFallbacks;
  private readonly requestTimeoutMs?: number;
  private readonly idleTimeoutMs: number;
  private readonly userAgent: string;
  private readonly now: () => number;
  private readonly credentials: () => Promise<Credentials | undefined>;
  private challenge?: Challenge;
  private readonly tokens = new Map<string, CachedToken>();
  private readonly pendingTokens = new Map<string, Promise<CachedToken>>();
  private readonly refusals: TokenRefusals;

  constructor(host: string, opts: RegistryOptions) {
    this.host = canonicalRegistry(host);
    const api = apiHost(this.host);
    this.baseUrl = new URL(`${isLoopbackHost(api) ? 'http' : 'https'}://${api}`).origin;
    this.logger = opts.logger;
    this.retry = opts.retry ?? new RetryPolicy();
    this.chunkSize = opts.chunkSize ?? CHUNK_SIZE;
    this.smallBlob = opts.smallBlob ?? SMALL_BLOB;
    this.requestTimeoutMs = opts.requestTimeoutMs;
    this.idleTimeoutMs = opts.idleTimeoutMs ?? IDLE_TIMEOUT_MS;
    this.refusals = opts.refusals ?? new Map();
    this.uploadFallbacks = opts.uploadFallbacks ?? new Map();
    this.userAgent = opts.userAgent ?? 'ko-annotate';
    this.now = opts.now ?? Date.now;
    const provider = opts.credentials;
    this.credentials = once(() => provider(this.host));
  }

  /**
   * A repository on this registry. `access: 'push'` asks for push tokens for reads too, as a
   * publisher does: a pull-only token may be refused for a repository that does not exist
   * yet, and one token then serves the whole push.
   */
  repository(name: string, opts: { access?: 'pull' | 'push' } = {}): Repository {
    return new Repository(this, name, opts.access ?? 'pull');
  }

  /** @internal One request through the retry policy, authentication and redirects. */
  async send(op: Operation, req: Request): Promise<HttpResponse> {
    const what = `${op.action} ${op.preposition} ${this.where(req.repository)}`;
    const go = () =>
      this.exchange(op, req).catch((err: unknown) => {
        throw err instanceof RegistryError ? err : new Error(`${what}: ${describeFailure(err)}`, { cause: err });
      });
    if (req.retry === false) return go();
    return this.retry.run(what, go, (e) => this.logRetry(e));
  }

  /** @internal */
  logRetry(e: RetryEvent): void {
    const message = (e.error as { message?: unknown } | undefined)?.message;
    const reason = typeof message === 'string' ? message.split('\n')[0] : String(e.error);
    this.logger.info(`${reason}; retrying in ${(e.delayMs / 1000).toFixed(1)}s (attempt ${e.attempt + 1} of ${e.maxAttempts})`);
  }

  /** @internal A RegistryError from a response, consuming its body. */
  async errorFrom(op: Operation, repository: string | undefined, res: HttpResponse, stage?: string): Promise<RegistryError> {
    const body = await readText(res, 64 * 1024).catch(() => '');
    const { errors, text } = parseErrorBody(body);
    return new RegistryError({
      operation: op,
      host: this.host,
      repository,
      status: res.status,
      statusText: res.statusText,
      errors,
      text,
      stage,
      retryAfterMs: parseRetryAfter(res.headers.get('retry-after'), this.now()),
    });
  }

  /**
   * @internal The upload protocol a refusal made an upload to this registry fall back to (see
   * uploadBlob), by any client of the run: later uploads start with it rather than be refused
   * the same way again.
   */
  get uploadFallback(): UploadProtocol | undefined {
    return this.uploadFallbacks.get(this.host);
  }

  set uploadFallback(protocol: UploadProtocol) {
    this.uploadFallbacks.set(this.host, protocol);
  }

  /** @internal */
  where(repository: string | undefined): string {
    return repository ? `${this.host}/${repository}` : this.host;
  }

  private async exchange(op: Operation, req: Request): Promise<HttpResponse> {
    let { method, url, body } = req;
    for (let hops = 0; ; hops++) {
      const res = await this.authorizedFetch(op, req, method, url, body);
      if (REDIRECTS.has(res.status) && req.followRedirects !== false) {
        const location = res.headers.get('location');
        await discard(res);
        if (!location) throw new RegistryError({ operation: op, host: this.host, repository: req.repository, status: res.status, text: 'redirect without a Location' });
        if (hops >= MAX_REDIRECTS) throw new RegistryError({ operation: op, host: this.host, repository: req.repository, status: res.status, text: `more than ${MAX_REDIRECTS} redirects` });
        const next = new URL(location, url);
        if (url.protocol === 'https:' && next.protocol !== 'https:' && !isLoopbackHost(next.host)) {
          throw new RegistryError({ operation: op, host: this.host, repository: req.repository, status: res.status, text: `refused redirect from HTTPS to ${next.protocol}//${next.host}` });
        }
        if (res.status === 303 && method !== 'HEAD') {
          method = 'GET';
          body = undefined;
        }
        url = next;
        continue;
      }
      if (isRetryableStatus(res.status)) throw await this.errorFrom(op, req.repository, res);
      if (res.status === 403) {
        // Only the body tells GitHub's secondary rate limit (retried) from a refusal (not): read
        // it once, and give the caller an equivalent response to read again.
        const text = await readText(res, 64 * 1024).catch(() => '');
        const err = await this.errorFrom(op, req.repository, withBody(res, text));
        if (err.retryable) throw err;
        return withBody(res, text);
      }
      return res;
    }
  }

  /**
   * Send with whatever authorization we already know the registry wants; on a 401, learn its
   * challenge, get credentials or a token for it, and send once more. A second 401 is final:
   * the same credentials would be refused again, so it is never retried.
   */
  private async authorizedFetch(op: Operation, req: Request, method: string, url: URL, body: Body | undefined): Promise<HttpResponse> {
    const toRegistry = url.origin === this.baseUrl;
    const auth = toRegistry ? await this.authorization(op, req, req.scopes, false) : undefined;
    const res = await this.rawSend(method, url, req.headers, body, auth);
    if (res.status !== 401 || !toRegistry) return res;

    const challenge = pickChallenge(res.headers.get('www-authenticate'));
    if (!challenge) throw await this.errorFrom(op, req.repository, res);
    const { scope, ...learned } = challenge;
    const changed = !this.challenge || this.challenge.scheme !== learned.scheme || this.challenge.realm !== learned.realm;
    this.challenge = learned;
    if (auth && learned.scheme === 'basic' && !changed) throw await this.errorFrom(op, req.repository, res);
    // The registry may name a scope we did not think of (an extra action); ask for both.
    const scopes = scope ? [...req.scopes, ...scope.split(' ').filter((s) => s !== '')] : req.scopes;
    let retryAuth: string | undefined;
    try {
      retryAuth = await this.authorization(op, req, scopes, auth !== undefined);
    } catch (err) {
      await discard(res);
      throw err;
    }
    if (!retryAuth) throw await this.errorFrom(op, req.repository, res);
    await discard(res);
    const again = await this.rawSend(method, url, req.headers, body, retryAuth);
    if (again.status === 401) throw await this.errorFrom(op, req.repository, again);
    return again;
  }

  private async authorization(op: Operation, req: Request, scopes: readonly string[], fresh: boolean): Promise<string | undefined> {
    const challenge = this.challenge;
    if (!challenge) return undefined;
    const creds = await this.credentials();
    if (creds?.registryToken) return `Bearer ${creds.registryToken}`;
    if (challenge.scheme === 'basic') return creds?.password !== undefined ? basicAuth(creds) : undefined;
    const token = await this.token(op, req, challenge, scopes, creds, fresh);
    return `Bearer ${token}`;
  }

  private async token(op: Operation, req: Request, challenge: Challenge, scopes: readonly string[], creds: Credentials | undefined, fresh: boolean): Promise<string> {
    const wanted = parseScopes(scopes);
    const key = scopeKey(wanted);
    if (!fresh) {
      const now = this.now();
      for (const t of this.tokens.values()) if (t.expiresAt > now && covers(t.scopes, wanted)) return t.token;
    } else {
      this.tokens.delete(key);
    }
    const refused = this.refusals.get(`${this.host} ${key}`);
    if (refused) throw new RegistryError({ ...refused, operation: op, repository: req.repository, text: `${refused.text ?? ''} (refused earlier in this run; not asked again)`.trim() });
    let pending = this.pendingTokens.get(key);
    if (!pending) {
      pending = this.fetchToken(op, req, challenge, wanted, creds).finally(() => this.pendingTokens.delete(key));
      this.pendingTokens.set(key, pending);
    }
    const t = await pending;
    this.tokens.set(key, t);
    return t.token;
  }

  /**
   * The token endpoint of the distribution token spec: GET realm?service&scope with basic
   * credentials (or none, for anonymous pulls), or the OAuth2 POST with a refresh token when
   * the login left an identity token.
   */
  private async fetchToken(op: Operation, req: Request, challenge: Challenge, scopes: ScopeSet, creds: Credentials | undefined): Promise<CachedToken> {
    if (!challenge.realm) throw new RegistryError({ operation: op, host: this.host, repository: req.repository, status: 401, text: 'bearer challenge without a realm' });
    let realm: URL;
    try {
      realm = new URL(challenge.realm);
    } catch (err) {
      throw new RegistryError({ operation: op, host: this.host, repository: req.repository, status: 401, text: `bearer realm ${JSON.stringify(challenge.realm)} is not a URL`, cause: err });
    }
    const stage = `token request to ${realm.host}`;
    if (realm.protocol !== 'https:' && !(realm.protocol === 'http:' && isLoopbackHost(realm.host))) {
      throw new RegistryError({ operation: op, host: this.host, repository: req.repository, stage, text: `refusing to send credentials to a non-HTTPS token realm ${realm.origin}` });
    }
    const scopeList = scopeStrings(scopes);
    const headers: Record<string, string> = {};
    let method: 'GET' | 'POST' = 'GET';
    let body: Buffer | undefined;
    if (creds?.identityToken) {
      method = 'POST';
      headers['Content-Type'] = 'application/x-www-form-urlencoded';
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: creds.identityToken, client_id: this.userAgent });
      if (challenge.service) form.set('service', challenge.service);
      if (scopeList.length) form.set('scope', scopeList.join(' '));
      body = Buffer.from(form.toString());
    } else {
      if (challenge.service) realm.searchParams.set('service', challenge.service);
      for (const s of scopeList) realm.searchParams.append('scope', s);
    }
    const auth = !creds?.identityToken && creds?.password !== undefined ? basicAuth(creds) : undefined;
    const requested = this.now();
    const res = await this.rawSend(method, realm, headers, body, auth);
    if (res.status !== 200) {
      const err = await this.errorFrom(op, req.repository, res, stage);
      if (res.status === 401 || (res.status === 403 && !err.retryable)) this.refusals.set(`${this.host} ${scopeKey(scopes)}`, err.init);
      throw err;
    }
    let doc: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      doc = JSON.parse(await readText(res, 1024 * 1024)) as typeof doc;
    } catch (err) {
      throw new RegistryError({ operation: op, host: this.host, repository: req.repository, stage, text: 'the token response is not JSON', cause: err });
    }
    const token = typeof doc.token === 'string' && doc.token ? doc.token : typeof doc.access_token === 'string' ? doc.access_token : '';
    if (!token) throw new RegistryError({ operation: op, host: this.host, repository: req.repository, stage, text: 'the token response has no token' });
    // The token spec: a missing or shorter lifetime than 60 seconds means 60 seconds.
    const lifetime = Math.max(60, typeof doc.expires_in === 'number' ? doc.expires_in : 60) * 1000;
    // Renew a little early so that a token does not expire between sending and arriving.
    return { scopes, token, expiresAt: requested + lifetime - Math.min(30_000, lifetime / 10) };
  }

  private async rawSend(method: string, url: URL, headers: Record<string, string> | undefined, body: Body | undefined, auth: string | undefined): Promise<HttpResponse> {
    const h: Record<string, string> = { 'User-Agent': this.userAgent, ...headers };
    if (auth) h.Authorization = auth;
    const left = this.retry.remainingMs();
    const deadline = left === undefined ? undefined : AbortSignal.timeout(Math.max(1, left));
    // The stall timer is restarted by every piece of a streamed body the request reads: a big
    // blob going up in one request may take longer than the limit, a stalled one may not.
    const limit = this.requestTimeoutMs;
    const stall = limit === undefined ? undefined : new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(timer);
      if (stall) timer = setTimeout(() => stall.abort(), limit);
    };
    arm();
    const signals = [deadline, stall?.signal, this.retry.signal].filter((s): s is AbortSignal => s !== undefined);
    let stream: Readable | undefined;
    try {
      // A streamed body is opened per send.
      if (typeof body === 'function') {
        stream = await body();
        if (stall) stream.on('data', arm);
      }
      return await send(url, {
        method,
        headers: h,
        body: stream ?? (body as Buffer | undefined),
        idleTimeoutMs: this.idleTimeoutMs,
        signal: signals.length === 0 ? undefined : signals.length === 1 ? signals[0] : AbortSignal.any(signals),
      });
    } catch (err) {
      // A stall is a timeout to retry (ETIMEDOUT, see retry.ts); the run's deadline is final.
      if (stall?.signal.aborted && !deadline?.aborted) {
        throw Object.assign(new Error(`${method} ${url.host}${url.pathname}: no response within ${limit} ms`, { cause: err }), { code: 'ETIMEDOUT' });
      }
      throw err;
    } finally {
      stream?.off('data', arm);
      clearTimeout(timer);
    }
  }
}

/**
 * One repository: reads for base images and validation (a ContentSource), and the push
 * protocol's steps for the publisher.
 */
export class Repository implements ContentSource {
  readonly name: string;
  readonly origin: BlobOrigin;
  private readonly readScopes: readonly string[];
  private readonly pushScopes: readonly string[];

  constructor(
    readonly registry: Registry,
    readonly repository: string,
    private readonly access: 'pull' | 'push',
  ) {
    this.name = registry.where(repository);
    this.origin = { registry: registry.host, repository };
    this.pushScopes = [`repository:${repository}:pull,push`];
    this.readScopes = access === 'push' ? this.pushScopes : [`repository:${repository}:pull`];
  }

  /** This repository with push-scoped reads, as the publisher wants it (see Registry.repository). */
  forPush(): Repository {
    return this.access === 'push' ? this : new Repository(this.registry, this.repository, 'push');
  }

  async getManifest(reference: string): Promise<RawManifest> {
    checkReference(reference);
    const op: Operation = { action: `pull manifest ${reference}`, preposition: 'from' };
    const { res, bytes } = await this.readWhole(op, { method: 'GET', url: this.url(`manifests/${reference}`), scopes: this.readScopes, headers: { Accept: manifestAccept } }, async (res) => {
      if (res.status !== 200) throw await this.registry.errorFrom(op, this.repository, res);
      return { res, bytes: await readLimited(res, MAX_MANIFEST_BYTES, `${op.action} from ${this.name}`) };
    });
    const digest = sha256(bytes);
    if (isDigest(reference) && digest !== reference) {
      throw new Error(`${op.action} from ${this.name}: the registry served bytes that hash to ${digest}`);
    }
    const claimed = res.headers.get('docker-content-digest');
    if (claimed?.startsWith('sha256:') && claimed !== digest) {
      throw new Error(`${op.action} from ${this.name}: Docker-Content-Digest says ${claimed} but the bytes hash to ${digest}`);
    }
    return { bytes, digest, mediaType: manifestMediaType(res.headers.get('content-type'), bytes) };
  }

  /** The manifest's descriptor, or undefined if the registry does not have it. */
  async headManifest(reference: string): Promise<Descriptor | undefined> {
    checkReference(reference);
    const op: Operation = { action: `check manifest ${reference}`, preposition: 'in' };
    const res = await this.send(op, { method: 'HEAD', url: this.url(`manifests/${reference}`), scopes: this.readScopes, headers: { Accept: manifestAccept } });
    if (res.status === 404) {
      await discard(res);
      return undefined;
    }
    if (res.status !== 200) throw await this.registry.errorFrom(op, this.repository, res);
    await discard(res);
    const claimed = res.headers.get('docker-content-digest');
    const size = Number(res.headers.get('content-length'));
    const mediaType = mediaTypeOf(res.headers.get('content-type'));
    if (claimed && isDigest(claimed) && Number.isFinite(size) && size > 0 && mediaType && (isManifestMediaType(mediaType) || isIndexMediaType(mediaType))) {
      if (isDigest(reference) && claimed !== reference) {
        throw new Error(`${op.action} in ${this.name}: the registry answered for ${claimed}`);
      }
      return { mediaType, digest: claimed, size };
    }
    // Some registries leave these headers off a HEAD; the manifest itself is the answer.
    const raw = await this.getManifest(reference);
    return { mediaType: raw.mediaType, digest: raw.digest, size: raw.bytes.length };
  }

  /** The blob, streamed; the stream fails at its end if the bytes do not match the digest. */
  async getBlob(digest: string): Promise<Readable> {
    checkDigest(digest);
    const op: Operation = { action: `pull blob ${digest}`, preposition: 'from' };
    const res = await this.send(op, { method: 'GET', url: this.url(`blobs/${digest}`), scopes: this.readScopes });
    if (res.status !== 200) throw await this.registry.errorFrom(op, this.repository, res);
    const hash = createHash('sha256');
    const where = this.name;
    const verify = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        hash.update(chunk);
        cb(null, chunk);
      },
      flush(cb) {
        const got = `sha256:${hash.digest('hex')}`;
        cb(got === digest ? null : new Error(`pull blob ${digest} from ${where}: the bytes received hash to ${got}`));
      },
    });
    // pipeline destroys the download if the reader stops early, and passes its errors on.
    return pipeline(res.body, verify, () => {});
  }

  async hasBlob(digest: string): Promise<boolean> {
    checkDigest(digest);
    const op: Operation = { action: `check blob ${digest}`, preposition: 'in' };
    // A redirect means the registry has the blob and sends readers to its storage; following
    // it would HEAD a presigned GET URL, which S3-style storage answers with 403.
    const res = await this.send(op, { method: 'HEAD', url: this.url(`blobs/${digest}`), scopes: this.readScopes, followRedirects: false });
    await discard(res);
    if (res.status === 200 || REDIRECTS.has(res.status)) return true;
    if (res.status === 404) return false;
    throw await this.registry.errorFrom(op, this.repository, res);
  }

  /**
   * Cross-repository mount (distribution spec). Only 201 means mounted; 202 means the registry
   * started an upload instead (source unknown or not readable with our token), which is
   * cancelled. A mount refused with a 4xx is not an error either: the blob is uploaded.
   */
  async mountBlob(digest: string, fromRepository: string): Promise<boolean> {
    checkDigest(digest);
    const op: Operation = { action: `mount blob ${digest} from ${fromRepository}`, preposition: 'to' };
    const url = this.url(`blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(fromRepository)}`);
    let res: HttpResponse;
    try {
      res = await this.send(op, { method: 'POST', url, scopes: [...this.pushScopes, `repository:${fromRepository}:pull`], headers: { 'Content-Length': '0' } });
    } catch (err) {
      if (err instanceof RegistryError && !err.retryable) {
        this.registry.logger.debug(`${err.message}; uploading instead`);
        return false;
      }
      throw err;
    }
    if (res.status === 201) {
      await discard(res);
      return true;
    }
    if (res.status === 202) {
      await discard(res);
      await this.cancelUpload(res, url);
      return false;
    }
    const err = await this.registry.errorFrom(op, this.repository, res);
    this.registry.logger.debug(`${err.message}; uploading instead`);
    return false;
  }

  /**
   * Upload a blob: POST a session, one PATCH whose body is the whole blob streamed from `open`
   * (Content-Length declared, no Content-Range), then PUT `?digest=`. docker push,
   * go-containerregistry (ko, crane) and containers/image (skopeo) all upload this way, to GHCR
   * too; it costs one round trip per blob, where ranged chunks cost one per chunk, each waiting
   * for the registry to store it before the next is sent. A blob of at most `smallBlob` bytes
   * goes up with the PUT instead (SMALL_BLOB).
   *
   * When a registry refuses, the upload starts over in a new session (the refused one is
   * cancelled), and later attempts of this upload, and this registry's later uploads, keep to
   * the protocol fallen back to:
   * - a streamed PATCH refused as too big for one request (413, or a 416 like GHCR's "exceeds the
   *   maximum permissible limit") → PATCHes of at most `chunkSize` (4 MiB) with Content-Range,
   *   the size GHCR is known to accept;
   * - PATCH refused altogether (405, 501, or a 416 on the first range) → the monolithic PUT.
   *
   * An attempt that fails for a retryable reason starts over with a new session and a fresh
   * stream from `open`: a session that saw an error may hold a partial body, and re-PATCHing
   * its URL is not safe on every registry.
   */
  async uploadBlob(digest: string, size: number, open: () => Promise<Readable>, onProgress?: ProgressListener): Promise<void> {
    checkDigest(digest);
    let protocol: UploadProtocol = size <= this.registry.smallBlob ? 'monolithic' : (this.registry.uploadFallback ?? 'streamed');
    const attempt = async () => {
      let fallback: UploadProtocol | undefined;
      while ((fallback = await this.uploadOnce(protocol, digest, size, open, onProgress))) {
        this.registry.logger.debug(`${this.name} refused a ${protocol} upload of ${digest}; trying ${fallback}`);
        protocol = this.registry.uploadFallback = fallback;
      }
    };
    await this.registry.retry.run(`upload blob ${digest} to ${this.name}`, attempt, (e) => this.registry.logRetry(e));
  }

  /**
   * Upload a blob while it is being made, before its digest and size are known: POST, one PATCH
   * whose body is `source` as it is produced (chunked transfer encoding, as docker push and
   * go-containerregistry's stream.Layer send theirs), then PUT `?digest=` with what `digest`
   * resolves to once the source has ended; the registry checks the bytes against it. A live
   * stream cannot be sent twice, so this is one attempt with no fallbacks: on any failure the
   * session is cancelled and the error thrown, and the blob is left for uploadBlob. A refusal
   * of the streamed PATCH is remembered for the registry (uploadFallback), and once one is
   * known nothing is tried here.
   */
  async uploadWhileWritten(source: Readable, digest: Promise<string>): Promise<void> {
    const op: Operation = { action: 'upload a blob while it is written', preposition: 'to' };
    const known = this.registry.uploadFallback;
    if (known) {
      source.destroy();
      throw new Error(`${this.name} refused a streamed upload earlier in this run; publishing uploads this blob (${known})`);
    }
    let { location } = await this.startUpload(op);
    try {
      let opened = false;
      const body = async () => {
        // An auth challenge or a redirect would send the body again; a live stream has no second copy.
        if (opened) throw new Error('the registry asked for the body again; a blob being written cannot be re-sent');
        opened = true;
        return source;
      };
      const res = await this.uploadStep(op, { method: 'PATCH', url: location, headers: { 'Content-Type': 'application/octet-stream' }, body });
      const fallback = streamedFallback(res.status);
      if (fallback) this.registry.uploadFallback = fallback;
      if (res.status !== 202) throw await this.registry.errorFrom(op, this.repository, res);
      await discard(res);
      location = uploadLocation(res, location, op, this);
      const made = await digest;
      checkDigest(made);
      await this.commit(op, location, made);
    } catch (err) {
      source.destroy();
      await this.cancel(location);
      throw err;
    }
  }

  /** PUT a manifest or index; returns its digest (the sha256 of exactly these bytes). */
  async putManifest(reference: string, bytes: Buffer, mediaType: string): Promise<string> {
    return (await this.pushManifest(reference, bytes, mediaType)).digest;
  }

  /**
   * PUT a manifest and report what the registry said of it: its digest, and the `OCI-Subject`
   * header that a registry which processed the manifest's `subject` answers with (distribution
   * spec, "Pushing Manifests with Subject"); null when it did not.
   */
  async pushManifest(reference: string, bytes: Buffer, mediaType: string): Promise<{ digest: string; subject: string | null }> {
    checkReference(reference);
    const digest = sha256(bytes);
    if (isDigest(reference) && reference !== digest) throw new Error(`push manifest to ${this.name}: bytes hash to ${digest}, not ${reference}`);
    const op: Operation = { action: `push manifest ${reference}`, preposition: 'to' };
    const res = await this.send(op, { method: 'PUT', url: this.url(`manifests/${reference}`), scopes: this.pushScopes, headers: { 'Content-Type': mediaType }, body: bytes });
    if (res.status < 200 || res.status > 299) throw await this.registry.errorFrom(op, this.repository, res);
    await discard(res);
    // Not every registry sends Docker-Content-Digest; when one does, it must agree.
    const claimed = res.headers.get('docker-content-digest');
    if (claimed?.startsWith('sha256:') && claimed !== digest) {
      throw new Error(`${op.action} to ${this.name}: the registry stored ${claimed}, expected ${digest}`);
    }
    return { digest, subject: res.headers.get('oci-subject') };
  }

  /**
   * The referrers API (distribution spec, "Listing Referrers"): the index of manifests whose
   * `subject` is `digest`, or undefined when the registry lacks the API — it answers 404
   * (distribution 2.8 does), or something that is not an index.
   */
  async referrers(digest: string): Promise<Index | undefined> {
    const op: Operation = { action: `list referrers of ${digest}`, preposition: 'in' };
    return this.readWhole(op, { method: 'GET', url: this.url(`referrers/${digest}`), scopes: this.readScopes, headers: { Accept: MediaType.OciIndex } }, async (res) => {
      if (res.status === 404) {
        await discard(res);
        return undefined;
      }
      if (res.status !== 200) throw await this.registry.errorFrom(op, this.repository, res);
      try {
        const doc = JSON.parse((await readLimited(res, MAX_MANIFEST_BYTES, `${op.action} in ${this.name}`)).toString('utf8')) as Index;
        return Array.isArray(doc.manifests) ? doc : undefined;
      } catch {
        return undefined;
      }
    });
  }

  /** Every tag, following `Link` pagination; `[]` when the repository does not exist yet. */
  async listTags(): Promise<string[]> {
    const op: Operation = { action: 'list tags', preposition: 'of' };
    const tags: string[] = [];
    const seen = new Set<string>();
    let url: URL | undefined = this.url('tags/list');
    while (url) {
      if (seen.has(url.href) || seen.size >= 10_000) throw new Error(`list tags of ${this.name}: the registry's pagination does not end`);
      seen.add(url.href);
      const pageUrl: URL = url;
      const page = await this.readWhole(op, { method: 'GET', url: pageUrl, scopes: this.readScopes }, async (res) => {
        // distribution answers NAME_UNKNOWN with 404 for a repository nobody pushed to yet.
        if (res.status === 404 && seen.size === 1) {
          await discard(res);
          return undefined;
        }
        if (res.status !== 200) throw await this.registry.errorFrom(op, this.repository, res);
        const text = (await readLimited(res, MAX_MANIFEST_BYTES, `list tags of ${this.name}`)).toString('utf8');
        let doc: { tags?: string[] | null };
        try {
          doc = JSON.parse(text) as typeof doc;
        } catch {
          throw new Error(`list tags of ${this.name}: the answer is not JSON (${JSON.stringify(text.slice(0, 100))})`);
        }
        return { tags: doc.tags ?? [], next: nextLink(res.headers.get('link'), pageUrl, this.registry.baseUrl, this.name) };
      });
      if (!page) return [];
      tags.push(...page.tags);
      url = page.next;
    }
    return tags;
  }

  /**
   * Send and read the whole body as one retried step: a connection cut mid-body is as
   * transient as one cut before the headers (docs/reliability.md), and only a new request recovers it.
   */
  private readWhole<T>(op: Operation, req: Omit<Request, 'repository' | 'retry'>, read: (res: HttpResponse) => Promise<T>): Promise<T> {
    const what = `${op.action} ${op.preposition} ${this.name}`;
    const once = async () => {
      const res = await this.send(op, { ...req, retry: false });
      try {
        return await read(res);
      } catch (err) {
        throw isTransientNetworkError(err) ? new Error(`${what}: ${describeFailure(err)}`, { cause: err }) : err;
      }
    };
    return this.registry.retry.run(what, once, (e) => this.registry.logRetry(e));
  }

  private send(op: Operation, req: Omit<Request, 'repository'>): Promise<HttpResponse> {
    return this.registry.send(op, { ...req, repository: this.repository });
  }

  private url(path: string): URL {
    return new URL(`${this.registry.baseUrl}/v2/${this.repository}/${path}`);
  }

  /** One upload in one session; returns the protocol to fall back to when this one was refused. */
  private async uploadOnce(protocol: UploadProtocol, digest: string, size: number, open: () => Promise<Readable>, onProgress?: ProgressListener): Promise<UploadProtocol | undefined> {
    const op: Operation = { action: `upload blob ${digest}`, preposition: 'to' };
    const session = await this.startUpload(op);
    try {
      if (protocol === 'monolithic') {
        // The blob goes with the commit; the registry checks it against the digest.
        const body = countingBody(open, onProgress);
        try {
          await this.commit(op, session.location, digest, { headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(size) }, body: body.open });
        } finally {
          body.close();
        }
        return undefined;
      }
      const sent = protocol === 'streamed' ? await this.patchWhole(op, session, size, open, onProgress) : await this.patchRanges(op, session, open, onProgress);
      if (typeof sent === 'string') {
        await this.cancel(session.location);
        return sent;
      }
      if (sent.digest !== digest || sent.bytes !== size) {
        // Not retryable: the source gives different bytes than its descriptor says.
        throw new Error(`upload blob ${digest} to ${this.name}: the source gave ${sent.bytes} bytes hashing to ${sent.digest}, expected ${size} bytes`);
      }
      await this.commit(op, session.location, digest);
      return undefined;
    } catch (err) {
      await this.cancel(session.location);
      throw err;
    }
  }

  /**
   * The whole blob as one streamed PATCH; what went up, or the protocol to fall back to.
   * `session.location` follows the Location of the answer.
   */
  private async patchWhole(op: Operation, session: Session, size: number, open: () => Promise<Readable>, onProgress?: ProgressListener): Promise<Sent | UploadProtocol> {
    const body = countingBody(open, onProgress);
    // Nothing to send: the commit alone stores an empty blob.
    if (size === 0) return body.sent();
    try {
      const res = await this.uploadStep(op, { method: 'PATCH', url: session.location, headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(size) }, body: body.open });
      const fallback = streamedFallback(res.status);
      if (fallback) {
        await discard(res);
        return fallback;
      }
      if (res.status !== 202) throw await this.sessionError(op, res);
      await discard(res);
      session.location = uploadLocation(res, session.location, op, this);
      return body.sent();
    } finally {
      body.close();
    }
  }

  /**
   * The blob as PATCHes of `chunkSize` with Content-Range (larger if the registry asked for
   * larger chunks), each to the Location the previous answer gave; what went up, or
   * 'monolithic' when the first one is refused.
   */
  private async patchRanges(op: Operation, session: Session, open: () => Promise<Readable>, onProgress?: ProgressListener): Promise<Sent | UploadProtocol> {
    const hash = createHash('sha256');
    let offset = 0;
    const stream = await open();
    try {
      for await (const chunk of chunksOf(stream, Math.max(this.registry.chunkSize, session.minChunk))) {
        const res = await this.uploadStep(op, {
          method: 'PATCH',
          url: session.location,
          headers: {
            'Content-Type': 'application/octet-stream',
            // The distribution spec's form: inclusive byte offsets, no unit.
            'Content-Range': `${offset}-${offset + chunk.length - 1}`,
            'Content-Length': String(chunk.length),
          },
          body: chunk,
        });
        if (offset === 0 && CHUNKING_REFUSED.has(res.status)) {
          await discard(res);
          return 'monolithic';
        }
        if (res.status !== 202) throw await this.sessionError(op, res);
        await discard(res);
        session.location = uploadLocation(res, session.location, op, this);
        hash.update(chunk);
        offset += chunk.length;
        onProgress?.(offset);
      }
    } finally {
      stream.destroy();
    }
    return { bytes: offset, digest: `sha256:${hash.digest('hex')}` };
  }

  /** PUT `?digest=` (with the whole blob, for a monolithic upload), and check what the registry says it stored. */
  private async commit(op: Operation, location: URL, digest: string, blob?: Pick<Request, 'headers' | 'body'>): Promise<void> {
    const url = new URL(`${location.href}${location.search ? '&' : '?'}digest=${encodeURIComponent(digest)}`);
    const done = await this.uploadStep(op, { method: 'PUT', url, headers: { 'Content-Length': '0' }, ...blob });
    if (done.status !== 201 && done.status !== 204 && done.status !== 200) throw await this.sessionError(op, done);
    await discard(done);
    const claimed = done.headers.get('docker-content-digest');
    if (claimed?.startsWith('sha256:') && claimed !== digest) {
      throw new Error(`upload blob ${digest} to ${this.name}: the registry stored ${claimed}`);
    }
  }

  /**
   * A step of an upload session refused. A 404 there means the registry no longer knows the
   * session (expired, or opened on another node of a registry that does not share them), and
   * distribution's API spec says "the client must restart the upload process": it is retried,
   * and a retried upload starts in a new session.
   */
  private async sessionError(op: Operation, res: HttpResponse): Promise<RegistryError> {
    const err = await this.registry.errorFrom(op, this.repository, res);
    // A 416 past the first range: the session's offset is not ours (the spec's "out of order");
    // a new session starts from zero rather than guess where the registry stands.
    return res.status === 404 || res.status === 416 ? new RegistryError({ ...err.init, operation: op, repository: this.repository, retryable: true }) : err;
  }

  /**
   * POST a new upload session: its Location, and the smallest chunk the registry takes
   * (`OCI-Chunk-Min-Length`; distribution spec: each chunk but the last SHOULD be at least that).
   */
  private async startUpload(op: Operation): Promise<Session> {
    const sessions = this.url('blobs/uploads/');
    const started = await this.uploadStep(op, { method: 'POST', url: sessions, headers: { 'Content-Length': '0' } });
    if (started.status !== 202) throw await this.registry.errorFrom(op, this.repository, started);
    await discard(started);
    const minChunk = Number(started.headers.get('oci-chunk-min-length') ?? 0);
    return { location: uploadLocation(started, sessions, op, this), minChunk: Number.isSafeInteger(minChunk) && minChunk > 0 ? Math.min(minChunk, MAX_MIN_CHUNK) : 0 };
  }

  /** A request inside an upload: not retried alone, since a failed upload restarts with a new session. */
  private uploadStep(op: Operation, req: Omit<Request, 'repository' | 'scopes' | 'retry'>): Promise<HttpResponse> {
    return this.send(op, { ...req, scopes: this.pushScopes, retry: false });
  }

  private async cancelUpload(res: HttpResponse, base: URL) {
    const location = res.headers.get('location');
    if (location) await this.cancel(new URL(location, base));
  }

  /** Best effort: an abandoned session expires on its own (GHCR does not implement DELETE). */
  private async cancel(location: URL) {
    try {
      const res = await this.send({ action: 'cancel upload', preposition: 'in' }, { method: 'DELETE', url: location, scopes: this.pushScopes, retry: false });
      await discard(res);
    } catch (err) {
      this.registry.logger.debug(`cancel upload in ${this.name}: ${(err as Error).message}`);
    }
  }
}

/** How a blob goes up; see Repository.uploadBlob. */
export type UploadProtocol = 'streamed' | 'ranged' | 'monolithic';

/** An upload session: where its next request goes, and the smallest chunk it takes (0: any). */
interface Session {
  location: URL;
  readonly minChunk: number;
}

/** What an upload sent: its length and digest, to check against the descriptor before the commit. */
interface Sent {
  bytes: number;
  digest: string;
}

/**
 * Answers to a streamed PATCH that mean "too big for one request": 413 Content Too Large, and
 * 416, which GHCR answers when a request body is above its per-request cap.
 */
const TOO_LARGE = new Set([413, 416]);

/**
 * Answers to a first PATCH that mean "no chunked uploads here" rather than "this chunk is bad":
 * 405 Method Not Allowed, 416 for a range it will not take, 501 Not Implemented. Some registry
 * proxies and appliances answer so; the spec's monolithic PUT works on every registry.
 */
const CHUNKING_REFUSED = new Set([405, 416, 501]);

/** What a streamed PATCH answered with `status` falls back to; undefined when it was not refused. */
const streamedFallback = (status: number): UploadProtocol | undefined =>
  TOO_LARGE.has(status) ? 'ranged' : CHUNKING_REFUSED.has(status) ? 'monolithic' : undefined;

/**
 * `open` as a request body whose bytes are counted and hashed as the request reads them from
 * the source, with progress reported. Each send opens the source afresh (an auth challenge or a
 * redirect sends the body again); `sent()` is what the last one read.
 */
function countingBody(open: () => Promise<Readable>, onProgress?: ProgressListener) {
  let last = { bytes: 0, hash: createHash('sha256') };
  let source: Readable | undefined;
  return {
    open: async (): Promise<Readable> => {
      source?.destroy();
      const tally = (last = { bytes: 0, hash: createHash('sha256') });
      source = await open();
      const count = tee(tally.hash, (n) => {
        tally.bytes += n;
        onProgress?.(tally.bytes);
      });
      // pipeline destroys the source when the request stops reading early, and passes its errors on.
      return pipeline(source, count, () => {});
    },
    sent: (): Sent => ({ bytes: last.bytes, digest: `sha256:${last.hash.copy().digest('hex')}` }),
    close: () => source?.destroy(),
  };
}

function uploadLocation(res: HttpResponse, base: URL, op: Operation, repo: Repository): URL {
  const location = res.headers.get('location');
  if (!location) throw new RegistryError({ operation: op, host: repo.registry.host, repository: repo.repository, status: res.status, text: 'upload response without a Location' });
  // Relative Locations (GHCR, distribution behind some proxies) resolve against the request.
  return new URL(location, base);
}

/** Split a stream into Buffers of exactly `size` bytes (the last one shorter). */
export async function* chunksOf(stream: Readable, size: number): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let have = 0;
  for await (const c of stream) {
    let buf: Buffer = Buffer.isBuffer(c) ? c : Buffer.from(c as Uint8Array);
    while (have + buf.length >= size) {
      const take = size - have;
      parts.push(buf.subarray(0, take));
      yield Buffer.concat(parts);
      parts = [];
      have = 0;
      buf = buf.subarray(take);
    }
    if (buf.length) {
      parts.push(buf);
      have += buf.length;
    }
  }
  if (have) yield Buffer.concat(parts);
}

// --- WWW-Authenticate (RFC 9110 §11.6.1) ---

/** Parse the challenges of a WWW-Authenticate header: `Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`. */
export function parseWwwAuthenticate(header: string): { scheme: string; params: Record<string, string> }[] {
  const out: { scheme: string; params: Record<string, string> }[] = [];
  const token = /[!#$%&'*+.^_`|~0-9A-Za-z-]+/y;
  const token68 = /[A-Za-z0-9._~+/-]+=*/y;
  let i = 0;
  const skip = () => {
    while (i < header.length && /[\s,]/.test(header[i])) i++;
  };
  while (i < header.length) {
    skip();
    token.lastIndex = i;
    const m = token.exec(header);
    if (!m) break;
    i = token.lastIndex;
    let j = i;
    while (j < header.length && header[j] === ' ') j++;
    if (header[j] === '=' && out.length > 0) {
      i = j + 1;
      while (header[i] === ' ') i++;
      let value = '';
      if (header[i] === '"') {
        i++;
        while (i < header.length && header[i] !== '"') {
          if (header[i] === '\\' && i + 1 < header.length) i++;
          value += header[i++];
        }
        i++;
      } else {
        token.lastIndex = i;
        const v = token.exec(header);
        value = v ? v[0] : '';
        i = v ? token.lastIndex : i;
      }
      out[out.length - 1].params[m[0].toLowerCase()] = value;
    } else {
      out.push({ scheme: m[0].toLowerCase(), params: {} });
      // `Negotiate YII…==`: a challenge's token68 (RFC 9110 §11.3) is not a parameter, and its
      // `=` padding must not swallow the challenges after it.
      token68.lastIndex = j;
      if (token68.exec(header) && /^\s*(,|$)/.test(header.slice(token68.lastIndex))) i = token68.lastIndex;
    }
  }
  return out;
}

function pickChallenge(header: string | null): Challenge | undefined {
  const all = parseWwwAuthenticate(header ?? '');
  const bearer = all.find((c) => c.scheme === 'bearer');
  if (bearer) return { scheme: 'bearer', realm: bearer.params.realm, service: bearer.params.service, scope: bearer.params.scope };
  return all.some((c) => c.scheme === 'basic') ? { scheme: 'basic' } : undefined;
}

// --- scopes: `repository:<name>:pull,push` ---

type ScopeSet = Map<string, Set<string>>;

function parseScopes(scopes: readonly string[]): ScopeSet {
  const set: ScopeSet = new Map();
  for (const s of scopes) {
    const colon = s.lastIndexOf(':');
    const resource = colon > 0 ? s.slice(0, colon) : s;
    const actions = colon > 0 ? s.slice(colon + 1).split(',') : [];
    const have = set.get(resource) ?? new Set<string>();
    for (const a of actions) if (a) have.add(a);
    set.set(resource, have);
  }
  return set;
}

const scopeStrings = (set: ScopeSet): string[] =>
  [...set.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([r, a]) => `${r}:${[...a].sort().join(',')}`);

const scopeKey = (set: ScopeSet): string => scopeStrings(set).join(' ');

function covers(have: ScopeSet, want: ScopeSet): boolean {
  for (const [resource, actions] of want) {
    const got = have.get(resource);
    if (!got) return false;
    for (const a of actions) if (!got.has(a)) return false;
  }
  return true;
}

// --- small helpers ---

function basicAuth(c: Credentials): string {
  return `Basic ${Buffer.from(`${c.username ?? ''}:${c.password ?? ''}`).toString('base64')}`;
}

function checkDigest(digest: string) {
  if (!isDigest(digest)) throw new Error(`${JSON.stringify(digest)} is not a sha256 digest`);
}

function checkReference(reference: string) {
  if (!isDigest(reference) && !isValidTag(reference)) throw new Error(`${JSON.stringify(reference)} is neither a tag nor a sha256 digest`);
}

const mediaTypeOf = (contentType: string | null): string | undefined => contentType?.split(';')[0].trim() || undefined;

/**
 * The served Content-Type, unless a registry sent a generic one (`application/json`,
 * `text/plain`); then the document's own `mediaType`, or its shape.
 */
function manifestMediaType(contentType: string | null, bytes: Buffer): string {
  const served = mediaTypeOf(contentType);
  if (served && (isManifestMediaType(served) || isIndexMediaType(served) || served.startsWith('application/vnd.'))) return served;
  try {
    const doc = JSON.parse(bytes.toString('utf8')) as { mediaType?: unknown; manifests?: unknown };
    if (typeof doc.mediaType === 'string' && doc.mediaType) return doc.mediaType;
    return Array.isArray(doc.manifests) ? MediaType.OciIndex : MediaType.OciManifest;
  } catch {
    return served ?? MediaType.OciManifest;
  }
}

/**
 * `Link: </v2/app/tags/list?last=x&n=100>; rel="next"`. A next page on another origin is not
 * followed (the registry's credentials are not sent elsewhere), and not dropped either: a list
 * cut short could make a release's floating tags move backward (docs/tags.md).
 */
function nextLink(header: string | null, current: URL, origin: string, name: string): URL | undefined {
  if (!header) return undefined;
  for (const part of header.split(',')) {
    const m = /<([^>]*)>\s*;(.*)/.exec(part.trim());
    if (m && /rel="?next"?/i.test(m[2])) {
      const next = new URL(m[1], current);
      if (next.origin !== origin) throw new Error(`list tags of ${name}: the next page is on another origin (${next.origin}); not following it`);
      return next;
    }
  }
  return undefined;
}

/** A failure's message, and its cause's when that says more (`… : connect ECONNREFUSED …`). */
function describeFailure(err: unknown): string {
  // Duck-typed: errors may come from another realm (jest's VM), failing instanceof.
  const e = err as { name?: unknown; message?: unknown; cause?: { message?: unknown } } | undefined;
  if (typeof e?.message !== 'string') return String(err);
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return 'the time budget ran out';
  const cause = typeof e.cause?.message === 'string' ? e.cause.message : undefined;
  return cause && cause !== e.message ? `${e.message}: ${cause}` : e.message;
}

/** Let the rest of a response go (to keep the connection for the next request). */
async function discard(res: HttpResponse): Promise<void> {
  res.body.resume();
}

/** `res` with `text` as its body, to be read again after the original body was consumed. */
function withBody(res: HttpResponse, text: string): HttpResponse {
  return { status: res.status, statusText: res.statusText, headers: res.headers, body: Readable.from([Buffer.from(text)]) };
}

async function readLimited(res: HttpResponse, limit: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of res.body as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > limit) {
      res.body.destroy();
      throw new Error(`${what}: the response is larger than ${limit} bytes`);
    }
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}

/** Up to `limit` bytes of the body as text; the rest is not read. */
async function readText(res: HttpResponse, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of res.body as AsyncIterable<Buffer>) {
    chunks.push(c);
    n += c.length;
    if (n >= limit) break;
  }
  return Buffer.concat(chunks).toString('utf8').slice(0, limit);
}
