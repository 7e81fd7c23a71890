import type { Logger } from '../log.js';
import { imagesOf, type Artifact, type Image } from '../oci/image.js';
import { fromBuffer, type Layer } from '../oci/layer.js';
import type { Repository } from '../registry/repository.js';
import { canonicalRegistry, isValidTag } from '../registry/reference.js';
import type { Publisher } from './publisher.js';
import { formatBytes, mapLimit } from '../util.js';

export interface RegistryPublisherOptions {
  logger: Logger;
  /** Blobs in flight at once. */
  concurrency?: number;
  /** For upload progress; defaults to Date.now. */
  now?: () => number;
  /** An upload reports progress once it has run this long, and then this often. */
  progressEveryMs?: number;
}

/**
 * What a publisher did, for logs and tests. Manifests count platform manifests and indexes.
 * Each distinct blob is counted once, in one of the blob counters.
 */
export interface PublishCounters {
  /** Uploaded by the publisher; their bytes are bytesUploaded. */
  blobsUploaded: number;
  blobsMounted: number;
  /** Already in the repository: found by HEAD, or needed only by platform manifests that are. */
  blobsSkipped: number;
  /** Uploaded to this repository by this run during the build (Layer.stored): not checked or sent again, not in bytesUploaded. */
  blobsUploadedInBuild: number;
  bytesUploaded: number;
  manifestsPushed: number;
  manifestsSkipped: number;
  tagsWritten: number;
  /** Tags left as they were: they already named the artifact (putTags' `named`). */
  tagsUnchanged: number;
}

interface Blob {
  digest: string;
  size: number;
  open: Layer['open'];
  origin?: Layer['origin'];
  stored?: Layer['stored'];
  what: string;
  /** The digests of the platform manifests that reference it. */
  neededBy: string[];
}

/** One check of putContent's batch: a manifest by digest (`top`: the artifact itself), or a blob. */
type Check = { manifest: string; top?: boolean } | { blob: Blob };

/** Each blob of `images` once, layers before configs. */
function blobsOf(images: readonly Image[]): Map<string, Blob> {
  const blobs = new Map<string, Blob>();
  for (const img of images) {
    for (const l of img.layers) {
      // Foreign layers (Windows bases) stay where their URLs say; registries refuse them.
      if (l.urls?.length) continue;
      const b = blobs.get(l.digest) ?? { digest: l.digest, size: l.size, open: () => l.open(), origin: l.origin, stored: l.stored, what: 'layer', neededBy: [] };
      blobs.set(l.digest, b);
      if (!b.neededBy.includes(img.digest)) b.neededBy.push(img.digest);
    }
  }
  for (const img of images) {
    const bytes = img.configBytes;
    const b = blobs.get(img.configDigest) ?? { digest: img.configDigest, size: bytes.length, open: async () => fromBuffer(bytes), what: 'config', neededBy: [] };
    blobs.set(img.configDigest, b);
    if (!b.neededBy.includes(img.digest)) b.neededBy.push(img.digest);
  }
  return blobs;
}

const shortDigest = (digest: string) => digest.slice('sha256:'.length, 'sha256:'.length + 12);

/**
 * Publishes to a registry repository with the push protocol of docs/publishing.md and docs/architecture.md#push-protocol: for each
 * blob HEAD → mount (201 only) → upload; blobs before manifests, platform manifests before
 * the index, all by digest; tags last, in putTags.
 */
export class RegistryPublisher implements Publisher {
  readonly name: string;
  readonly counters: PublishCounters = { blobsUploaded: 0, blobsMounted: 0, blobsSkipped: 0, blobsUploadedInBuild: 0, bytesUploaded: 0, manifestsPushed: 0, manifestsSkipped: 0, tagsWritten: 0, tagsUnchanged: 0 };
  private readonly repo: Repository;
  private readonly logger: Logger;
  private readonly concurrency: number;
  private readonly now: () => number;
  private readonly progressEveryMs: number;

  constructor(repository: Repository, opts: RegistryPublisherOptions) {
    // Push-scoped tokens for the HEAD checks too: one token serves the whole push, and GHCR
    // may refuse a pull-only token for a package that does not exist yet.
    this.repo = repository.forPush();
    this.name = repository.name;
    this.logger = opts.logger;
    this.concurrency = Math.max(1, opts.concurrency ?? 4);
    this.now = opts.now ?? Date.now;
    this.progressEveryMs = opts.progressEveryMs ?? 5000;
  }

  async putContent(artifact: Artifact, named?: ReadonlyMap<string, string>, imagesUp?: () => void): Promise<void> {
    // A re-run of the same commit: registries (distribution, GHCR) refuse a manifest whose
    // blobs are missing and an index whose manifests are, and we never push a parent before
    // its children, so an artifact that is there by digest is there whole: nothing else is
    // checked or sent. A tag read naming it earlier in the run says so without a request.
    const tag = [...(named ?? [])].find(([, digest]) => digest === artifact.digest)?.[0];
    if (tag !== undefined) return this.alreadyThere(artifact, ` (${tag} names it)`, imagesUp);
    const images = [...new Map(imagesOf(artifact).map((img) => [img.digest, img])).values()];
    const blobs = blobsOf(images);
    // What this run stored here while building is known to be here: no request for it.
    const storedHere = (b: Blob) => {
      const s = b.stored;
      return s !== undefined && canonicalRegistry(s.registry) === this.repo.registry.host && s.repository === this.repo.repository;
    };
    // The artifact's HEAD, its platform manifests' (of an index) and its blobs' go out at once,
    // one round trip rather than the artifact's and then the rest: a fresh push needs them all,
    // and a re-run, which needs only the first, has mostly been recognized by a tag above. A
    // platform manifest that is there is there whole (as above), so its blobs need nothing
    // unless a missing manifest needs them too. A blob whose turn comes after all the
    // manifests that need it answered "there" is not checked at all, nor is anything once the
    // artifact itself answered "there".
    const children = artifact.kind === 'index' ? images : [];
    const present = new Set<string>();
    const covered = (b: Blob) => b.neededBy.every((d) => present.has(d));
    const missing = new Set<Blob>();
    let whole = false;
    const checks: Check[] = [
      { manifest: artifact.digest, top: true },
      ...children.map((image) => ({ manifest: image.digest })),
      ...[...blobs.values()].filter((b) => !storedHere(b)).map((blob) => ({ blob })),
    ];
    await mapLimit(checks, this.concurrency, async (c) => {
      if (whole) return;
      if ('manifest' in c) {
        if (!(await this.repo.headManifest(c.manifest))) return;
        if (c.top) whole = true;
        present.add(c.manifest);
      } else if (!covered(c.blob) && !(await this.repo.hasBlob(c.blob.digest))) {
        missing.add(c.blob);
      }
    });
    if (whole) return this.alreadyThere(artifact, '', imagesUp);
    const toPush: Blob[] = [];
    for (const b of blobs.values()) {
      const short = shortDigest(b.digest);
      if (storedHere(b)) {
        this.counters.blobsUploadedInBuild++;
        this.logger.debug(`${b.what} ${short} went up to ${this.name} as it was written`);
      } else if (missing.has(b) && !covered(b)) {
        toPush.push(b);
      } else {
        this.counters.blobsSkipped++;
        this.logger.debug(`${b.what} ${short} already in ${this.name}`);
      }
    }
    // Every blob before any manifest, each platform manifest before the index; within a step,
    // concurrently. The artifact itself was found missing above: it is put without a new check.
    await mapLimit(toPush, this.concurrency, (b) => this.putBlob(b));
    for (const image of children) if (present.has(image.digest)) this.counters.manifestsSkipped++;
    await mapLimit(
      children.filter((image) => !present.has(image.digest)),
      this.concurrency,
      (image) => this.putManifestByDigest(image.digest, image.bytes, image.mediaType),
    );
    // An index's platform images are up now; a single image is once it is put.
    if (artifact.kind === 'index') imagesUp?.();
    await this.putManifestByDigest(artifact.digest, artifact.bytes, artifact.mediaType);
    if (artifact.kind !== 'index') imagesUp?.();
  }

  private alreadyThere(artifact: Artifact, why: string, imagesUp: (() => void) | undefined): void {
    imagesUp?.();
    this.counters.manifestsSkipped++;
    this.logger.info(`${this.name}@${artifact.digest} is already there, with all its content${why}`);
  }

  async putTags(artifact: Artifact, tags: readonly string[], named?: ReadonlyMap<string, string>): Promise<void> {
    for (const tag of tags) if (!isValidTag(tag)) throw new Error(`cannot tag ${this.name}: ${JSON.stringify(tag)} is not a valid tag`);
    // A re-run pushes nothing new (docs/publishing.md): a tag read back naming this artifact stays.
    const unchanged = tags.filter((tag) => named?.get(tag) === artifact.digest);
    for (const tag of unchanged) this.logger.info(`${this.name}:${tag} already names ${artifact.digest}`);
    this.counters.tagsUnchanged += unchanged.length;
    // The content is all there; the names can go up together.
    await mapLimit(
      tags.filter((tag) => !unchanged.includes(tag)),
      this.concurrency,
      async (tag) => {
        await this.repo.putManifest(tag, artifact.bytes, artifact.mediaType);
        this.counters.tagsWritten++;
        this.logger.info(`tagged ${this.name}:${tag} → ${artifact.digest}`);
      },
    );
  }

  listTags(): Promise<string[]> {
    return this.repo.listTags();
  }

  /** Mount (201 only) or upload a blob found missing. */
  private async putBlob(b: Blob): Promise<void> {
    const short = shortDigest(b.digest);
    const from = b.origin;
    if (from && canonicalRegistry(from.registry) === this.repo.registry.host && from.repository !== this.repo.repository) {
      if (await this.repo.mountBlob(b.digest, from.repository)) {
        this.counters.blobsMounted++;
        this.logger.info(`mounted ${b.what} ${short} from ${from.registry}/${from.repository}`);
        return;
      }
    }
    const started = this.now();
    let lastReport = started;
    await this.repo.uploadBlob(b.digest, b.size, b.open, (sent) => {
      const t = this.now();
      if (t - started >= this.progressEveryMs && t - lastReport >= this.progressEveryMs && sent < b.size) {
        lastReport = t;
        this.logger.info(`uploading ${b.what} ${short}: ${progress(sent, b.size)}`);
      }
    });
    this.counters.blobsUploaded++;
    this.counters.bytesUploaded += b.size;
    this.logger.info(`uploaded ${b.what} ${short} (${formatBytes(b.size)})`);
  }

  /** PUT a manifest found missing. */
  private async putManifestByDigest(digest: string, bytes: Buffer, mediaType: string): Promise<void> {
    await this.repo.putManifest(digest, bytes, mediaType);
    this.counters.manifestsPushed++;
    this.logger.info(`pushed ${this.name}@${digest}`);
  }
}


/** `12.0 MiB / 45.6 MiB (26%)` */
export const progress = (sent: number, total: number) =>
  `${formatBytes(sent)} / ${formatBytes(total)} (${total > 0 ? Math.floor((sent / total) * 100) : 100}%)`;

