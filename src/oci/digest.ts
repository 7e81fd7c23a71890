import { createHash } from 'node:crypto';

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

export const sha256 = (data: Uint8Array | string): string =>
  `sha256:${createHash('sha256').update(data).digest('hex')}`;

export const isDigest = (s: string): boolean => DIGEST_RE.test(s);

/** The hex part of a `sha256:` digest, after checking its form (it becomes a file name). */
export function digestHex(digest: string): string {
  if (!isDigest(digest)) throw new Error(`not a sha256 digest: ${JSON.stringify(digest)}`);
  return digest.slice('sha256:'.length);
}

/** Memoize a zero-argument async function: a digest is computed once (docs/architecture.md#oci-values). */
export function once<T>(f: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | undefined;
  return () => (p ??= f());
}
