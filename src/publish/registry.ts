import type { Logger } from '../log.js';
import { imagesOf, type Artifact } from '../oci/image.js';
import { fromBuffer, type Layer } from '../oci/layer.js';
import type { Repository } from '../registry/client.js';
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

/** What a publisher did, for logs and tests. Manifests count platform manifests and indexes. */
export interface PublishCounters {
  blobsUploaded: number;
  blobsMounted: number;
  blobsSkipped: number;
  bytesUploaded: number;
  manifestsPushed: number;
  manifestsSkipped: number;
}

interface Blob {
  digest: string;
  size: number;
  open: Layer['open'];
  origin?: Layer['origin'];
  what: string;
}

/**
 * Publishes to a registry repository with the push protocol of SPEC §5 and STYLE §8: for each
 * blob HEAD → mount (201 only) → upload; configs before manifests, platform manifests before
 * the index, all by digest; tags last, in putTags.
 */
export class RegistryPublisher implements Publisher {
  readonly name: string;
  readonly counters: PublishCounters = { blobsUploaded: 0, blobsMounted: 0, blobsSkipped: 0, bytesUploaded: 0, manifestsPushed: 0, manifestsSkipped: 0 };
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

  async putContent(artifact: Artifact): Promise<void> {
    // A re-run of the same commit: registries (distribution, GHCR) refuse a manifest whose
    // blobs are missing and an index whose manifests are, and we never push a parent before
    // its children, so an artifact that is there by digest is there whole. One HEAD, not one
    // per blob and manifest.
    if (await this.repo.headManifest(artifact.digest)) {
      this.counters.manifestsSkipped++;
      this.logger.info(`${this.name}@${artifact.digest} is already there, with all its content`);
      return;
    }
    const images = imagesOf(artifact);
    const layers = new Map<string, Blob>();
    for (const img of images) {
      for (const l of img.layers) {
        // Foreign layers (Windows bases) stay where their URLs say; registries refuse them.
        if (l.urls?.length || layers.has(l.digest)) continue;
        layers.set(l.digest, { digest: l.digest, size: l.size, open: () => l.open(), origin: l.origin, what: 'layer' });
      }
    }
    const configs = new Map<string, Blob>();
    for (const img of images) {
      if (configs.has(img.configDigest) || layers.has(img.configDigest)) continue;
      const bytes = img.configBytes;
      configs.set(img.configDigest, { digest: img.configDigest, size: bytes.length, open: async () => fromBuffer(bytes), what: 'config' });
    }
    // Every blob (layers and configs alike) before any manifest, each platform manifest before
    // the index; within a step, concurrently.
    await mapLimit([...layers.values(), ...configs.values()], this.concurrency, (b) => this.putBlob(b));
    const manifests = new Map(images.map((img) => [img.digest, img]));
    await mapLimit([...manifests.values()], this.concurrency, (img) => this.putManifestByDigest(img.digest, img.bytes, img.mediaType));
    if (artifact.kind === 'index') await this.putManifestByDigest(artifact.digest, artifact.bytes, artifact.mediaType);
  }

  async putTags(artifact: Artifact, tags: readonly string[]): Promise<void> {
    for (const tag of tags) if (!isValidTag(tag)) throw new Error(`cannot tag ${this.name}: ${JSON.stringify(tag)} is not a valid tag`);
    // The content is all there; the names can go up together.
    await mapLimit(tags, this.concurrency, async (tag) => {
      await this.repo.putManifest(tag, artifact.bytes, artifact.mediaType);
      this.logger.info(`tagged ${this.name}:${tag} → ${artifact.digest}`);
    });
  }

  listTags(): Promise<string[]> {
    return this.repo.listTags();
  }

  private async putBlob(b: Blob): Promise<void> {
    const short = b.digest.slice('sha256:'.length, 'sha256:'.length + 12);
    if (await this.repo.hasBlob(b.digest)) {
      this.counters.blobsSkipped++;
      this.logger.debug(`${b.what} ${short} already in ${this.name}`);
      return;
    }
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

  private async putManifestByDigest(digest: string, bytes: Buffer, mediaType: string): Promise<void> {
    if (await this.repo.headManifest(digest)) {
      this.counters.manifestsSkipped++;
      return;
    }
    await this.repo.putManifest(digest, bytes, mediaType);
    this.counters.manifestsPushed++;
    this.logger.info(`pushed ${this.name}@${digest}`);
  }
}


/** `12.0 MiB / 45.6 MiB (26%)` */
export const progress = (sent: number, total: number) =>
  `${formatBytes(sent)} / ${formatBytes(total)} (${total > 0 ? Math.floor((sent / total) * 100) : 100}%)`;

