import type { Readable } from 'node:stream';
import { sha256 } from './digest.js';
import type { BlobOrigin } from './layer.js';

/** A manifest or index exactly as stored: the bytes are the truth, the digest is theirs. */
export interface RawManifest {
  readonly bytes: Buffer;
  readonly mediaType: string;
  readonly digest: string;
}

/**
 * Somewhere images can be read from: an OCI layout directory or a registry repository.
 * Base images are loaded through it and the validator reads published images back with it.
 */
export interface ContentSource {
  /** For messages: `oci:dir` or `host/repo`. */
  readonly name: string;
  /** Set for registry repositories, so that a registry on the same host can mount blobs. */
  readonly origin?: BlobOrigin;
  /** A manifest or index by tag or digest; the digest is verified when asked by digest. */
  getManifest(reference: string): Promise<RawManifest>;
  /** A blob's bytes, streamed. */
  getBlob(digest: string): Promise<Readable>;
}

/** An image config is held in memory whole; the registry client's manifest limit is the same. */
export const MAX_CONFIG_BYTES = 16 * 1024 * 1024;

/** All of `r`; past `limit` bytes (when given) it stops reading and throws `tooLarge()`'s error. */
export async function readAll(r: Readable, limit?: number, tooLarge?: () => Error): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of r) {
    const b = Buffer.isBuffer(c) ? c : Buffer.from(c);
    n += b.length;
    if (limit !== undefined && n > limit) {
      r.destroy();
      throw tooLarge?.() ?? new Error(`more than ${limit} bytes`);
    }
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}

/**
 * The config blob a manifest names, whole and checked against its digest. It is read no further
 * than the descriptor's size, itself at most MAX_CONFIG_BYTES: the registry (or layout) decides
 * what it sends, and the digest can be checked only once it is all in memory.
 */
export async function readConfigBlob(source: ContentSource, { digest, size }: { digest: string; size: number }): Promise<Buffer> {
  if (!Number.isSafeInteger(size) || size < 0 || size > MAX_CONFIG_BYTES) {
    throw new Error(`${source.name}: config blob ${digest} has size ${JSON.stringify(size)}; a config must be at most ${MAX_CONFIG_BYTES} bytes`);
  }
  const bytes = await readAll(await source.getBlob(digest), size, () => new Error(`${source.name}: config blob ${digest} is larger than the ${size} bytes its descriptor says`));
  if (sha256(bytes) !== digest) throw new Error(`${source.name}: config blob does not match its digest ${digest}`);
  return bytes;
}
