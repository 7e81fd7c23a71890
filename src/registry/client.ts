import type { Readable } from 'node:stream';
import type { Logger } from '../log.js';
import { Authenticator, type TokenRefusals } from './auth.js';
import type { CredentialProvider } from './credentials.js';
import { describeFailure, describeOperation, isRetryableStatus, parseErrorBody, RegistryError, type Operation } from './errors.js';
import { discard, readText, REDIRECTS, send, withBody, type HttpResponse } from './http.js';
import { apiHost, canonicalRegistry, isLoopbackHost } from './reference.js';
import { Repository } from './repository.js';
import { parseRetryAfter, RetryPolicy, type RetryEvent } from './retry.js';
import { CHUNK_SIZE, SMALL_BLOB, type UploadFallbacks, type UploadProtocol } from './upload.js';

/**
 * The registry client, in layers as go-containerregistry's `remote` sits on `transport`:
 * - client.ts (here): a Registry sends one request through the retry policy, redirects and
 *   authentication, with timeouts, and turns refusals into RegistryErrors;
 * - auth.ts: challenges, basic credentials and bearer tokens;
 * - repository.ts: what to ask of a repository (manifests, blobs, tags, referrers);
 * - upload.ts: blob upload sessions and mounts;
 * - http.ts: one HTTP exchange on node:http.
 */

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
  /** Upload protocols fallen back to (see Uploads.upload in upload.ts), shared like `refusals`. */
  uploadFallbacks?: UploadFallbacks;
}

/**
 * A connection silent for this long, waiting for an answer or in the middle of a body, is cut
 * and the request retried: without it, a registry that stops answering would hold a run until
 * the job's own limit (hours). As long as undici's header and body timeouts, which fetch had.
 */
export const IDLE_TIMEOUT_MS = 300_000;
const MAX_REDIRECTS = 10;

/** One request to a registry, as the Repository operations ask it. */
export interface RegistryRequest {
  method: 'GET' | 'HEAD' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
  url: URL;
  repository?: string;
  scopes: readonly string[];
  headers?: Record<string, string>;
  /** Bytes, or an opener for a streamed body (opened again if an auth challenge needs a resend). */
  body?: RequestBody;
  /** False inside an upload, which is retried as a whole with a new session. */
  retry?: boolean;
  /** False to get a 3xx back instead of following it. */
  followRedirects?: boolean;
}

export type RequestBody = Buffer | (() => Promise<Readable>);

/**
 * A registry speaking the OCI distribution API. It owns authentication (auth.ts), redirects,
 * and the retry policy; the Repository methods say what to ask. Authorization is only ever sent
 * to the registry's own origin: not to redirect targets (blob storage) nor to upload Locations
 * elsewhere (the token realm is auth.ts's one exception).
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
  private readonly auth: Authenticator;

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
    this.uploadFallbacks = opts.uploadFallbacks ?? new Map();
    this.userAgent = opts.userAgent ?? 'ko-annotate';
    this.now = opts.now ?? Date.now;
    this.auth = new Authenticator(this, { credentials: opts.credentials, now: this.now, userAgent: this.userAgent, refusals: opts.refusals ?? new Map() });
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
  async send(op: Operation, req: RegistryRequest): Promise<HttpResponse> {
    const what = describeOperation(op, this.host, req.repository);
    const go = () =>
      this.exchange(op, req).catch((err: unknown) => {
        throw err instanceof RegistryError ? err : new Error(`${what}: ${describeFailure(err)}`, { cause: err });
      });
    if (req.retry === false) return go();
    return this.retried(what, go);
  }

  /** @internal `attempt` through the retry policy, each retry logged. */
  retried<T>(what: string, attempt: () => Promise<T>): Promise<T> {
    return this.retry.run(what, attempt, (e) => this.logRetry(e));
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
   * Uploads.upload in upload.ts), by any client of the run: later uploads start with it rather
   * than be refused the same way again.
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

  /** @internal One request as it is (auth.ts signs it): the run's deadline, the stall and idle timeouts. */
  async rawSend(method: string, url: URL, headers: Record<string, string> | undefined, body: RequestBody | undefined, auth: string | undefined): Promise<HttpResponse> {
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

  private logRetry(e: RetryEvent): void {
    const message = (e.error as { message?: unknown } | undefined)?.message;
    const reason = typeof message === 'string' ? message.split('\n')[0] : String(e.error);
    this.logger.info(`${reason}; retrying in ${(e.delayMs / 1000).toFixed(1)}s (attempt ${e.attempt + 1} of ${e.maxAttempts})`);
  }

  private async exchange(op: Operation, req: RegistryRequest): Promise<HttpResponse> {
    let { method, url, body } = req;
    for (let hops = 0; ; hops++) {
      const res = await this.auth.send(op, req, method, url, body);
      if (REDIRECTS.has(res.status) && req.followRedirects !== false) {
        const location = res.headers.get('location');
        await discard(res);
        const refuse = (text: string) => new RegistryError({ operation: op, host: this.host, repository: req.repository, status: res.status, text });
        if (!location) throw refuse('redirect without a Location');
        if (hops >= MAX_REDIRECTS) throw refuse(`more than ${MAX_REDIRECTS} redirects`);
        const next = new URL(location, url);
        if (url.protocol === 'https:' && next.protocol !== 'https:' && !isLoopbackHost(next.host)) {
          throw refuse(`refused redirect from HTTPS to ${next.protocol}//${next.host}`);
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
}
