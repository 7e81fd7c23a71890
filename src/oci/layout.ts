import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { access, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createHash } from 'node:crypto';
import { digestHex, isDigest, sha256 } from './digest.js';
import { descriptorOf, imagesOf, type Artifact } from './image.js';
import { tee } from './layer.js';
import { Key, Layout, type Descriptor, type Index, MediaType } from './spec.js';
import type { ContentSource, RawManifest } from './store.js';

/** Reads an OCI image layout directory (image-layout.md). */
export class LayoutSource implements ContentSource {
  readonly name: string;
  constructor(readonly dir: string) {
    this.name = `oci:${dir}`;
  }

  /** `reference`: a digest, an `org.opencontainers.image.ref.name`, or '' for the only entry. */
  async getManifest(reference: string): Promise<RawManifest> {
    const index = await this.index();
    let desc: Descriptor | undefined;
    if (isDigest(reference)) {
      desc = index.manifests.find((d) => d.digest === reference) ?? { mediaType: '', digest: reference, size: -1 };
    } else if (reference === '') {
      if (index.manifests.length !== 1) {
        throw new Error(`${this.name} holds ${index.manifests.length} entries; name one with :<ref.name> or @sha256:…`);
      }
      desc = index.manifests[0];
    } else {
      desc = index.manifests.find((d) => d.annotations?.[Key.RefName] === reference);
      if (!desc) throw new Error(`${this.name} has no entry named ${JSON.stringify(reference)}`);
    }
    const bytes = await readFile(this.blobPath(desc.digest)).catch((err) => {
      throw new Error(`${this.name}: manifest ${desc!.digest} is missing`, { cause: err });
    });
    if (sha256(bytes) !== desc.digest) throw new Error(`${this.name}: blob ${desc.digest} does not match its digest`);
    const mediaType = desc.mediaType || (JSON.parse(bytes.toString('utf8')) as { mediaType?: string }).mediaType || MediaType.OciManifest;
    return { bytes, mediaType, digest: desc.digest };
  }

  async getBlob(digest: string) {
    const path = this.blobPath(digest);
    await access(path).catch((err) => {
      throw new Error(`${this.name}: blob ${digest} is missing`, { cause: err });
    });
    return createReadStream(path);
  }

  async index(): Promise<Index> {
    const layoutFile = join(this.dir, Layout.FileName);
    const marker = await readFile(layoutFile, 'utf8').catch((err) => {
      throw new Error(`${this.name} is not an OCI image layout (no readable ${Layout.FileName} file)`, { cause: err });
    });
    const version = (JSON.parse(marker) as { imageLayoutVersion?: string }).imageLayoutVersion;
    if (!version?.startsWith('1.')) throw new Error(`${this.name}: unsupported imageLayoutVersion ${JSON.stringify(version)}`);
    return JSON.parse(await readFile(join(this.dir, Layout.IndexFile), 'utf8')) as Index;
  }

  blobPath(digest: string): string {
    return join(this.dir, Layout.BlobsDir, 'sha256', digestHex(digest));
  }
}

/**
 * The directory and the name (or `@digest`) of `oci:<dir>[:<name>]`, `<dir>` and `<name>` as
 * given after `oci:`. A name may hold colons (a layout of several packages names its entries
 * `<repository>:<tag>`) and a directory may too (`C:\layout`): the first split whose directory
 * is an image layout wins; without one, the last colon splits, as before.
 */
export function parseLayoutReference(rest: string): { dir: string; reference: string } {
  const at = rest.lastIndexOf('@');
  if (at > 0) return { dir: rest.slice(0, at), reference: rest.slice(at + 1) };
  for (let i = rest.indexOf(':'); i > 0; i = rest.indexOf(':', i + 1)) {
    if (existsSync(join(rest.slice(0, i), Layout.FileName))) return { dir: rest.slice(0, i), reference: rest.slice(i + 1) };
  }
  const colon = rest.lastIndexOf(':');
  return colon > 1 ? { dir: rest.slice(0, colon), reference: rest.slice(colon + 1) } : { dir: rest, reference: '' };
}

/**
 * Writes artifacts into an OCI image layout: blobs by digest (existing ones are kept), then
 * the top-level index.json, whose entries are named by `org.opencontainers.image.ref.name`.
 */
export class LayoutWriter {
  constructor(readonly dir: string) {}

  async putContent(a: Artifact): Promise<void> {
    await mkdir(join(this.dir, Layout.BlobsDir, 'sha256'), { recursive: true });
    await this.writeMarker();
    for (const img of imagesOf(a)) {
      for (const layer of img.layers) {
        if (layer.urls?.length) continue; // foreign layers stay where their URLs say
        await this.putBlob(layer.digest, async () => layer.open());
      }
      await this.putBytes(img.configDigest, img.configBytes);
      await this.putBytes(img.digest, img.bytes);
    }
    if (a.kind === 'index') await this.putBytes(a.digest, a.bytes);
  }

  /** Add (or replace) the index.json entry named `refName` with the artifact. */
  async putName(a: Artifact, refName: string | undefined): Promise<void> {
    const indexPath = join(this.dir, Layout.IndexFile);
    let index: Index = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] };
    try {
      index = JSON.parse(await readFile(indexPath, 'utf8')) as Index;
    } catch {
      // A new layout: start from the empty index.
    }
    const entry: Descriptor = refName ? { ...descriptorOf(a), annotations: { [Key.RefName]: refName } } : descriptorOf(a);
    const keep = index.manifests.filter((d) =>
      refName ? d.annotations?.[Key.RefName] !== refName : !(d.digest === a.digest && !d.annotations?.[Key.RefName]),
    );
    index = { ...index, manifests: [...keep, entry] };
    await atomicWrite(indexPath, Buffer.from(JSON.stringify(index, null, 2) + '\n'));
  }

  private async writeMarker() {
    await writeFile(join(this.dir, Layout.FileName), JSON.stringify({ imageLayoutVersion: Layout.Version }));
  }

  private blobPath(digest: string) {
    return join(this.dir, Layout.BlobsDir, 'sha256', digestHex(digest));
  }

  /** Store `bytes` as the blob `digest`, unless the layout has it (its blobs directory must exist). */
  async putBytes(digest: string, bytes: Buffer): Promise<void> {
    const path = this.blobPath(digest);
    if (await exists(path)) return;
    await atomicWrite(path, bytes);
  }

  private async putBlob(digest: string, open: () => Promise<NodeJS.ReadableStream>) {
    const path = this.blobPath(digest);
    if (await exists(path)) return;
    const tmp = partialPath(path);
    const hash = createHash('sha256');
    await pipeline(await open(), tee(hash), createWriteStream(tmp));
    const got = `sha256:${hash.digest('hex')}`;
    if (got !== digest) throw new Error(`blob ${digest} read back as ${got}`);
    await rename(tmp, path);
  }
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

let partials = 0;

/**
 * Where a file is written before it is renamed to `path`: unique to this process and write, so
 * that two writes of the same blob at once (packages published together share base layers)
 * never write into one temporary file. The rename makes either complete copy the blob.
 */
const partialPath = (path: string): string => `${path}.partial-${process.pid}-${++partials}`;

async function atomicWrite(path: string, bytes: Buffer) {
  const tmp = partialPath(path);
  await writeFile(tmp, bytes);
  await rename(tmp, path);
}
