import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import * as tar from 'tar-stream';
import type { Image } from './image.js';
import type { Layer } from './layer.js';

type Node = { type: 'file' | 'directory' | 'symlink' | 'link' | 'other'; linkname?: string };

/** Linux gives up on a path after this many symbolic links (path_resolution(7)). */
const MAX_SYMLINKS = 40;

/**
 * The file system of an image's layers, entry metadata only (no contents): each layer over
 * the ones below it, with the OCI layer spec's whiteouts (`.wh.<name>` removes a name,
 * `.wh..wh..opq` empties a directory of what lower layers put there).
 */
export class RootFs {
  private constructor(
    private readonly nodes: Map<string, Node>,
    private readonly dirs: Set<string>,
  ) {}

  static async of(image: Image): Promise<RootFs> {
    const nodes = new Map<string, Node>();
    for (const layer of image.layers) {
      const entries = await layerEntries(layer);
      const remove = (path: string, keepSelf: boolean) => {
        for (const k of [...nodes.keys()]) if ((!keepSelf && k === path) || k.startsWith(`${path}/`) || path === '') nodes.delete(k);
      };
      for (const [path] of entries) {
        const base = path.slice(path.lastIndexOf('/') + 1);
        const dir = path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : '';
        if (base === '.wh..wh..opq') remove(dir, true);
        else if (base.startsWith('.wh.')) remove(dir ? `${dir}/${base.slice(4)}` : base.slice(4), false);
      }
      for (const [path, node] of entries) {
        const base = path.slice(path.lastIndexOf('/') + 1);
        if (base.startsWith('.wh.')) continue;
        // A file over a directory replaces it and what it held, as an overlay file system does.
        if (node.type !== 'directory' && nodes.get(path)?.type === 'directory') remove(path, false);
        nodes.set(path, node);
      }
    }
    const dirs = new Set<string>(['']);
    for (const [path, node] of nodes) {
      if (node.type === 'directory') dirs.add(path);
      // Tars need not list a file's directories; its path makes them exist.
      for (let i = path.indexOf('/'); i >= 0; i = path.indexOf('/', i + 1)) dirs.add(path.slice(0, i));
    }
    return new RootFs(nodes, dirs);
  }

  /**
   * Resolve absolute `path` as the kernel would in this file system, following symbolic links
   * (absolute ones from the image's root, never out of it). Returns the regular file's path, or
   * undefined when there is none.
   */
  resolveFile(path: string): string | undefined {
    let pending = split(path);
    const at: string[] = [];
    let hops = 0;
    while (pending.length) {
      const name = pending.shift()!;
      if (name === '.') continue;
      if (name === '..') {
        at.pop();
        continue;
      }
      const here = [...at, name].join('/');
      const node = this.nodes.get(here);
      if (node?.type === 'symlink') {
        if (++hops > MAX_SYMLINKS) return undefined;
        const target = node.linkname ?? '';
        if (target.startsWith('/')) at.length = 0;
        pending = [...split(target), ...pending];
        continue;
      }
      if (pending.length) {
        if (!this.dirs.has(here) || (node && node.type !== 'directory')) return undefined;
        at.push(name);
        continue;
      }
      if (node?.type === 'file') return `/${here}`;
      // A hard link names a file the archive holds under another name.
      if (node?.type === 'link') return this.nodes.get(clean(node.linkname ?? ''))?.type === 'file' ? `/${here}` : undefined;
      return undefined;
    }
    return undefined;
  }
}

const split = (p: string) => p.split('/').filter((x) => x !== '');
/** A tar entry's name as a path from the root: no leading `./` or `/`, no trailing `/`. */
const clean = (name: string) => split(name).filter((x) => x !== '.').join('/');

async function layerEntries(layer: Layer): Promise<[string, Node][]> {
  const out: [string, Node][] = [];
  const extract = tar.extract();
  extract.on('entry', (header, stream, next) => {
    const type =
      header.type === 'file' || header.type === 'contiguous-file' ? 'file'
      : header.type === 'directory' ? 'directory'
      : header.type === 'symlink' ? 'symlink'
      : header.type === 'link' ? 'link'
      : 'other';
    const path = clean(header.name);
    if (path) out.push([path, { type, ...(header.linkname ? { linkname: header.linkname } : {}) }]);
    stream.on('end', next);
    stream.resume();
  });
  await pipeline([await layer.open(), ...decompressor(layer.mediaType), extract] as [Readable, ...NodeJS.WritableStream[]]);
  return out;
}

function decompressor(mediaType: string): NodeJS.ReadWriteStream[] {
  if (/gzip$/.test(mediaType)) return [zlib.createGunzip()];
  if (/zstd$/.test(mediaType)) {
    // node:zlib reads zstd from Node 22.15 on.
    const z = (zlib as { createZstdDecompress?: () => NodeJS.ReadWriteStream }).createZstdDecompress;
    if (!z) throw new Error(`this Node (${process.version}) cannot read a zstd layer (${mediaType})`);
    return [z()];
  }
  return [];
}
