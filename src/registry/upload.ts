import { createHash } from 'node:crypto';
import { pipeline, type Readable } from 'node:stream';
import { tee } from '../oci/layer.js';
import type { RegistryRequest } from './client.js';
import { RegistryError, type Operation } from './errors.js';
import { discard, type HttpResponse } from './http.js';
import { checkDigest } from './reference.js';
import type { Repository } from './repository.js';

/** See RegistryOptions.uploadFallbacks: by host, the protocol a refused upload fell back to. */
export type UploadFallbacks = Map<string, UploadProtocol>;

/** Upload progress: bytes of the blob sent so far (read from the source for a streamed body). */
export type ProgressListener = (sentBytes: number) => void;

/**
 * The chunk size of the ranged fallback (see Uploads.upload): GHCR refuses a PATCH with
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
 * The blob upload sessions of one repository (distribution spec, "Pushing Blobs"), and
 * cross-repository mounts, which start as one. Each request of a session is sent once; a
 * failed upload is retried as a whole, in a new session.
 */
export class Uploads {
  constructor(private readonly repo: Repository) {}

  private get registry() {
    return this.repo.registry;
  }

  /**
   * Cross-repository mount (distribution spec). Only 201 means mounted; 202 means the registry
   * started an upload instead (source unknown or not readable with our token), which is
   * cancelled. A mount refused with a 4xx is not an error either: the blob is uploaded.
   */
  async mount(digest: string, fromRepository: string): Promise<boolean> {
    checkDigest(digest);
    const op: Operation = { action: `mount blob ${digest} from ${fromRepository}`, preposition: 'to' };
    const url = this.repo.url(`blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(fromRepository)}`);
    let res: HttpResponse;
    try {
      res = await this.repo.send(op, { method: 'POST', url, scopes: [...this.repo.pushScopes, `repository:${fromRepository}:pull`], headers: { 'Content-Length': '0' } });
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
      const location = res.headers.get('location');
      if (location) await this.cancel(new URL(location, url));
      return false;
    }
    const err = await this.repo.errorFrom(op, res);
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
  async upload(digest: string, size: number, open: () => Promise<Readable>, onProgress?: ProgressListener): Promise<void> {
    checkDigest(digest);
    let protocol: UploadProtocol = size <= this.registry.smallBlob ? 'monolithic' : (this.registry.uploadFallback ?? 'streamed');
    const attempt = async () => {
      let fallback: UploadProtocol | undefined;
      while ((fallback = await this.uploadOnce(protocol, digest, size, open, onProgress))) {
        this.registry.logger.debug(`${this.repo.name} refused a ${protocol} upload of ${digest}; trying ${fallback}`);
        protocol = this.registry.uploadFallback = fallback;
      }
    };
    await this.registry.retried(`upload blob ${digest} to ${this.repo.name}`, attempt);
  }

  /**
   * Upload a blob while it is being made, before its digest and size are known: POST, one PATCH
   * whose body is `source` as it is produced (chunked transfer encoding, as docker push and
   * go-containerregistry's stream.Layer send theirs), then PUT `?digest=` with what `digest`
   * resolves to once the source has ended; the registry checks the bytes against it. A live
   * stream cannot be sent twice, so this is one attempt with no fallbacks: on any failure the
   * session is cancelled and the error thrown, and the blob is left for upload(). A refusal
   * of the streamed PATCH is remembered for the registry (uploadFallback), and once one is
   * known nothing is tried here.
   */
  async uploadWhileWritten(source: Readable, digest: Promise<string>): Promise<void> {
    const op: Operation = { action: 'upload a blob while it is written', preposition: 'to' };
    const known = this.registry.uploadFallback;
    if (known) {
      source.destroy();
      throw new Error(`${this.repo.name} refused a streamed upload earlier in this run; publishing uploads this blob (${known})`);
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
      const res = await this.step(op, { method: 'PATCH', url: location, headers: { 'Content-Type': 'application/octet-stream' }, body });
      const fallback = streamedFallback(res.status);
      if (fallback) this.registry.uploadFallback = fallback;
      if (res.status !== 202) throw await this.repo.errorFrom(op, res);
      await discard(res);
      location = uploadLocation(res, location, op, this.repo);
      const made = await digest;
      checkDigest(made);
      await this.commit(op, location, made);
    } catch (err) {
      source.destroy();
      await this.cancel(location);
      throw err;
    }
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
        throw new Error(`upload blob ${digest} to ${this.repo.name}: the source gave ${sent.bytes} bytes hashing to ${sent.digest}, expected ${size} bytes`);
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
      const res = await this.step(op, { method: 'PATCH', url: session.location, headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(size) }, body: body.open });
      const fallback = streamedFallback(res.status);
      if (fallback) {
        await discard(res);
        return fallback;
      }
      if (res.status !== 202) throw await this.sessionError(op, res);
      await discard(res);
      session.location = uploadLocation(res, session.location, op, this.repo);
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
        const res = await this.step(op, {
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
        session.location = uploadLocation(res, session.location, op, this.repo);
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
  private async commit(op: Operation, location: URL, digest: string, blob?: Pick<RegistryRequest, 'headers' | 'body'>): Promise<void> {
    const url = new URL(`${location.href}${location.search ? '&' : '?'}digest=${encodeURIComponent(digest)}`);
    const done = await this.step(op, { method: 'PUT', url, headers: { 'Content-Length': '0' }, ...blob });
    if (done.status !== 201 && done.status !== 204 && done.status !== 200) throw await this.sessionError(op, done);
    await discard(done);
    const claimed = done.headers.get('docker-content-digest');
    if (claimed?.startsWith('sha256:') && claimed !== digest) {
      throw new Error(`upload blob ${digest} to ${this.repo.name}: the registry stored ${claimed}`);
    }
  }

  /**
   * A step of an upload session refused. A 404 there means the registry no longer knows the
   * session (expired, or opened on another node of a registry that does not share them), and
   * distribution's API spec says "the client must restart the upload process": it is retried,
   * and a retried upload starts in a new session.
   */
  private async sessionError(op: Operation, res: HttpResponse): Promise<RegistryError> {
    const err = await this.repo.errorFrom(op, res);
    // A 416 past the first range: the session's offset is not ours (the spec's "out of order");
    // a new session starts from zero rather than guess where the registry stands.
    return res.status === 404 || res.status === 416 ? new RegistryError({ ...err.init, operation: op, repository: this.repo.repository, retryable: true }) : err;
  }

  /**
   * POST a new upload session: its Location, and the smallest chunk the registry takes
   * (`OCI-Chunk-Min-Length`; distribution spec: each chunk but the last SHOULD be at least that).
   */
  private async startUpload(op: Operation): Promise<Session> {
    const sessions = this.repo.url('blobs/uploads/');
    const started = await this.step(op, { method: 'POST', url: sessions, headers: { 'Content-Length': '0' } });
    if (started.status !== 202) throw await this.repo.errorFrom(op, started);
    await discard(started);
    const minChunk = Number(started.headers.get('oci-chunk-min-length') ?? 0);
    return { location: uploadLocation(started, sessions, op, this.repo), minChunk: Number.isSafeInteger(minChunk) && minChunk > 0 ? Math.min(minChunk, MAX_MIN_CHUNK) : 0 };
  }

  /** A request inside an upload: not retried alone, since a failed upload restarts with a new session. */
  private step(op: Operation, req: Omit<RegistryRequest, 'repository' | 'scopes' | 'retry'>): Promise<HttpResponse> {
    return this.repo.send(op, { ...req, scopes: this.repo.pushScopes, retry: false });
  }

  /** Best effort: an abandoned session expires on its own (GHCR does not implement DELETE). */
  private async cancel(location: URL) {
    try {
      const res = await this.step({ action: 'cancel upload', preposition: 'in' }, { method: 'DELETE', url: location });
      await discard(res);
    } catch (err) {
      this.registry.logger.debug(`cancel upload in ${this.repo.name}: ${(err as Error).message}`);
    }
  }
}

/** How a blob goes up; see Uploads.upload. */
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
