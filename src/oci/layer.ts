import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { Readable, Transform, Writable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import * as tar from 'tar-stream';
import type { Descriptor } from './spec.js';

/**
 * A layer is immutable and re-openable: hashing, upload and retries each open it again
 * (docs/architecture.md#oci-values, go-containerregistry's `tarball.LayerFromOpener`).
 */
export interface Layer {
  readonly mediaType: string;
  /** Digest and size of the compressed blob, as it is stored and pushed. */
  readonly digest: string;
  readonly size: number;
  /** Digest of the uncompressed tar (the config's rootfs.diff_ids entry). */
  readonly diffId: string;
  readonly urls?: readonly string[];
  /** Where the blob already lives, so a registry on the same host can mount it. */
  readonly origin?: BlobOrigin;
  /**
   * Where this run already stored the blob (the registry accepted the commit of its upload),
   * so that publishing there needs no request for it.
   */
  readonly stored?: BlobOrigin;
  /** A fresh stream of the compressed bytes. */
  open(): Promise<Readable>;
}

export interface BlobOrigin {
  registry: string;
  repository: string;
}

export const layerDescriptor = (l: Layer): Descriptor =>
  l.urls?.length
    ? { mediaType: l.mediaType, digest: l.digest, size: l.size, urls: [...l.urls] }
    : { mediaType: l.mediaType, digest: l.digest, size: l.size };

/** One file-system entry of a layer we write. Times, owners and modes are fixed by us. */
export type TarEntry =
  | { type: 'directory'; path: string; mode: number }
  | { type: 'file'; path: string; mode: number; size: number; open: () => Readable }
  | { type: 'symlink'; path: string; target: string };

/**
 * Fixed tar metadata (docs/image.md#determinism): uid/gid 0, no user or group names, and the Unix epoch as
 * mtime, so that a layer's bytes depend only on the paths, modes and contents given.
 */
const FIXED = { uid: 0, gid: 0, uname: '', gname: '', mtime: new Date(0) };

/**
 * Deflate settings for layers: level 1, as go-containerregistry (ko, crane) uses
 * (gzip.BestSpeed), with an 8 KiB window (windowBits 13) and the largest hash table (memLevel 9).
 * Measured with `bench/levels.mjs` on the bench's two generated Go binaries (54 MB, Node 24's
 * zlib, CPU time for both, median of 7): the zlib default (15/8) gives 43.02% of the input in
 * 771 ms; 15/9 43.04%, 680 ms; 14/9 43.37%, 608 ms; 13/9 43.70%, 555 ms; 12/9 44.21%, 590 ms.
 * 13/9 costs 28% less CPU for 1.6% more bytes, and is still smaller than Go's BestSpeed output
 * of the same binary (44.4%). Level 6 would be ~5% smaller for 2.3× the CPU; runners push to
 * GHCR far faster than that saving is worth. Any gzip reader inflates a smaller window.
 * Changing any of these changes every layer digest.
 */
export const GZIP_LEVEL = 1;
export const GZIP_WINDOW_BITS = 13;
export const GZIP_MEM_LEVEL = 9;

/**
 * zlib output chunk size. The default (16 KiB) makes one thread-pool round trip, callback and
 * small Buffer per 16 KiB of output; 1 MiB chunks cut the main thread's share of writeLayer by
 * about a third (bench: both binaries 1.0 s → 0.65 s wall, 1.45 s → 1.1 s CPU).
 */
const GZIP_CHUNK = 1 << 20;

/** Read size for files fed into a layer; fs streams default to 64 KiB (see GZIP_CHUNK). */
export const READ_CHUNK = 1 << 20;

/**
 * Write a layer in one pass over the bytes: tar → (sha256 = diffID) → gzip → (sha256 =
 * digest, byte count) → file. The file is the layer's re-openable storage. With `copy`, the
 * compressed bytes also go there as they are made (an upload), at the pace it takes them; if
 * it fails, the layer is written all the same. It is ended with the layer, destroyed if the
 * layer fails.
 */
export async function writeLayer(entries: readonly TarEntry[], file: string, mediaType: string, copy?: Writable): Promise<Layer> {
  const pack = tar.pack();
  const diffHash = createHash('sha256');
  const blobHash = createHash('sha256');
  let size = 0;
  const feeding = feedEntries(pack, entries);
  try {
    await Promise.all([
      feeding,
      pipeline(
        pack,
        tee(diffHash),
        createGzip({ level: GZIP_LEVEL, windowBits: GZIP_WINDOW_BITS, memLevel: GZIP_MEM_LEVEL, chunkSize: GZIP_CHUNK }),
        fixGzipHeader(),
        tee(blobHash, (n) => (size += n), copy),
        createWriteStream(file),
      ),
    ]);
  } catch (err) {
    copy?.destroy(err as Error);
    throw err;
  }
  const digest = `sha256:${blobHash.digest('hex')}`;
  const diffId = `sha256:${diffHash.digest('hex')}`;
  return fileLayer(file, { mediaType, digest, diffId, size });
}

/**
 * The diff ID `writeLayer` would give these entries, from the tar alone: no gzip, so about a
 * tenth of its CPU. A re-run uses it to find the layer among those already published.
 */
export async function tarDigest(entries: readonly TarEntry[]): Promise<string> {
  const pack = tar.pack();
  const hash = createHash('sha256');
  await Promise.all([feedEntries(pack, entries), pipeline(pack, tee(hash), devNull())]);
  return `sha256:${hash.digest('hex')}`;
}

/**
 * A layer known by a descriptor that is already published (see tarDigest), with the same
 * diff ID as `entries`. Its bytes are made only if something asks for them (a registry that
 * lost the blob): then `file` is written once, and it must hash to the descriptor's digest.
 */
export function reusedLayer(entries: readonly TarEntry[], file: string, known: { mediaType: string; digest: string; size: number; diffId: string }): Layer {
  let written: Promise<Layer> | undefined;
  const open = async () => {
    written ??= writeLayer(entries, file, known.mediaType);
    const layer = await written;
    if (layer.digest !== known.digest || layer.size !== known.size) {
      throw new Error(`layer ${known.diffId} was reused as ${known.digest} (${known.size} bytes), but compresses to ${layer.digest} (${layer.size} bytes) here`);
    }
    return layer.open();
  };
  return Object.freeze({ mediaType: known.mediaType, digest: known.digest, size: known.size, diffId: known.diffId, open });
}

/** A layer stored in a local file whose digest, diffID and size are already known. */
export function fileLayer(file: string, d: { mediaType: string; digest: string; diffId: string; size: number; origin?: BlobOrigin }): Layer {
  return Object.freeze({ ...d, open: async () => createReadStream(file) });
}

async function feedEntries(pack: tar.Pack, entries: readonly TarEntry[]): Promise<void> {
  try {
    for (const e of entries) {
      switch (e.type) {
        case 'directory':
          await addEntry(pack, { ...FIXED, name: e.path, type: 'directory', mode: e.mode });
          break;
        case 'symlink':
          await addEntry(pack, { ...FIXED, name: e.path, type: 'symlink', linkname: e.target, mode: 0o777 });
          break;
        case 'file': {
          await new Promise<void>((resolve, reject) => {
            const sink = pack.entry({ ...FIXED, name: e.path, type: 'file', mode: e.mode, size: e.size }, (err) =>
              err ? reject(err) : resolve(),
            );
            pipeline(e.open(), sink).catch(reject);
          });
          break;
        }
      }
    }
    pack.finalize();
  } catch (err) {
    pack.destroy(err as Error);
    throw err;
  }
}

const addEntry = (pack: tar.Pack, header: Parameters<tar.Pack["entry"]>[0]): Promise<void> =>
  new Promise((resolve, reject) => pack.entry(header, (err) => (err ? reject(err) : resolve())));

/**
 * A pass-through that feeds every chunk to a hash (and an optional byte counter), and with
 * `sink` also writes it there, waiting while the sink is full. A sink that fails or closes
 * early is let go: the main stream goes on without it. The sink is ended with the stream.
 */
export function tee(hash: Hash, count?: (n: number) => void, sink?: Writable): Transform {
  let alive = sink !== undefined;
  sink?.on('error', () => (alive = false));
  sink?.on('close', () => (alive = false));
  return new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
      hash.update(chunk);
      count?.(chunk.length);
      if (!alive || sink!.write(chunk)) return cb(null, chunk);
      const go = () => {
        sink!.off('drain', go);
        sink!.off('close', go);
        cb(null, chunk);
      };
      sink!.on('drain', go);
      sink!.on('close', go);
    },
    flush(cb) {
      if (alive) sink!.end();
      cb();
    },
  });
}

/**
 * zlib writes the gzip header's OS byte from the platform it was compiled for (3 on Unix,
 * 10 on Windows), which would make the same layer differ between runners. RFC 1952 allows
 * 255 ("unknown"); we write that, as Go's compress/gzip does.
 */
function fixGzipHeader(): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      if (seen <= 9 && seen + chunk.length > 9) {
        chunk = Buffer.from(chunk);
        chunk[9 - seen] = 0xff;
      }
      seen += chunk.length;
      cb(null, chunk);
    },
  });
}

export const devNull = () => new Writable({ write: (_c, _e, cb) => cb() });

export const fromBuffer = (b: Uint8Array): Readable => Readable.from([Buffer.from(b)]);
