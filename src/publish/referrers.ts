// The referrers publisher (docs/provenance.md#storage): everything attached to an image (its
// SBOMs, their signed attestations, the signed provenance) is an OCI artifact manifest whose
// `subject` is that image, pushed beside the image publisher in the same two steps: content
// (blobs, then the manifest by digest once its subject is there) and names (the referrers tag
// schema's `sha256-<hex>` index, for a registry without the referrers API), written with the
// tags, after everything of the run is up.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { digestHex, sha256 } from '../oci/digest.js';
import { encodeJson } from '../oci/json.js';
import { fromBuffer } from '../oci/layer.js';
import { LayoutWriter } from '../oci/layout.js';
import { isIndexMediaType, Key, Layout, MediaType, type Descriptor, type Index, type Manifest } from '../oci/spec.js';
import type { Repository } from '../registry/repository.js';
import { RegistryError } from '../registry/errors.js';
import { allDone } from '../util.js';

/** What the publisher needs of a registry repository. */
export type ReferrerRepository = Pick<Repository, 'name' | 'headManifest' | 'pushManifest' | 'referrers' | 'getManifest' | 'putManifest' | 'hasBlob' | 'uploadBlob'>;

/** A blob held in memory: documents, bundles and the empty config are small. */
export interface BytesBlob {
  descriptor: Descriptor;
  bytes: Buffer;
}

/** An OCI artifact manifest whose subject is one image (image-spec manifest.md). */
export interface Referrer {
  manifest: Manifest;
  bytes: Buffer;
  digest: string;
  size: number;
  config: BytesBlob;
  layer: BytesBlob;
  subject: Descriptor;
  /** This referrer as an entry of its subject's referrers list (image-spec manifest.md, distribution "Listing Referrers"). */
  entry: Descriptor;
}

/** The OCI empty descriptor's content (image-spec manifest.md, "Guidance for an Empty Descriptor"). */
export const EMPTY_JSON = Buffer.from('{}');

/**
 * An artifact manifest: `artifactType`, the empty config (the image spec's guidance for
 * artifacts with no config), one layer holding `layer.bytes`, `subject` = the image it is about.
 * `annotations` go on the manifest and on its entry in the subject's referrers list.
 */
export function artifactReferrer(o: {
  subject: Descriptor;
  artifactType: string;
  layer: { mediaType: string; bytes: Buffer; annotations?: Record<string, string> };
  annotations: Record<string, string>;
}): Referrer {
  const config: BytesBlob = { descriptor: { mediaType: MediaType.OciEmpty, digest: sha256(EMPTY_JSON), size: EMPTY_JSON.length }, bytes: EMPTY_JSON };
  const layer: BytesBlob = {
    descriptor: { mediaType: o.layer.mediaType, digest: sha256(o.layer.bytes), size: o.layer.bytes.length, ...(o.layer.annotations ? { annotations: o.layer.annotations } : {}) },
    bytes: o.layer.bytes,
  };
  const subject: Descriptor = { mediaType: o.subject.mediaType, digest: o.subject.digest, size: o.subject.size };
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    artifactType: o.artifactType,
    config: config.descriptor,
    layers: [layer.descriptor],
    subject,
    annotations: o.annotations,
  };
  const bytes = encodeJson(manifest);
  const digest = sha256(bytes);
  return {
    manifest,
    bytes,
    digest,
    size: bytes.length,
    config,
    layer,
    subject,
    entry: { mediaType: MediaType.OciManifest, digest, size: bytes.length, artifactType: o.artifactType, annotations: o.annotations },
  };
}

/**
 * A Sigstore bundle as a referrer of its subject, as cosign and GitHub store them: the bundle
 * media type as artifactType and layer, annotated with what it holds and its predicate type.
 * `created` is the image's own (docs/image.md#determinism), never the clock.
 */
export const bundleReferrer = (o: { subject: Descriptor; bundle: Buffer; predicateType: string; created: string }): Referrer =>
  artifactReferrer({
    subject: o.subject,
    artifactType: MediaType.SigstoreBundle,
    layer: { mediaType: MediaType.SigstoreBundle, bytes: o.bundle },
    annotations: { [Key.BundleContent]: 'dsse-envelope', [Key.BundlePredicateType]: o.predicateType, [Key.Created]: o.created },
  });

/** The referrers tag schema's tag for a subject (distribution spec, "Referrers Tag Schema"). */
export const referrersTag = (subjectDigest: string): string => `sha256-${digestHex(subjectDigest)}`;

/** How the referrer was made findable: the registry's referrers API, or the fallback tag. */
export type ReferrerVia =
  | { kind: 'api' }
  | { kind: 'tag'; tag: string; added: boolean }
  /** Pushed, but the registry has no referrers API and answers the fallback tag with the subject itself. */
  | { kind: 'unlisted'; tag: string };

/** A referrer whose content is up: findable already, or once its subject's fallback index names it. */
export type PushedReferrer = { referrer: Referrer } & ({ kind: 'api' } | { kind: 'unlisted'; tag: string } | { kind: 'tag'; tag: string; index: Index });

/**
 * Pushes referrers to one repository. `putContent` for each referrer during the content phase;
 * `putNames` once, with the tags, for all of them: each subject's fallback index is written
 * once, with every referrer of this run that it lacks.
 */
export class ReferrersPublisher {
  /** Each blob once: referrers share the empty config. */
  private readonly blobs = new Map<string, Promise<void>>();

  constructor(private readonly repo: ReferrerRepository) {}

  /**
   * Blobs (HEAD first, skipped if present) at once; the manifest by digest once they are stored
   * (registries refuse a manifest whose blobs are missing) and `subject` has settled (its subject
   * must exist). Then: the registry indexed it itself (OCI-Subject on the PUT, or its referrers
   * API), or the fallback tag is read, to be written by putNames.
   */
  async putContent(r: Referrer, subject: Promise<unknown> = Promise.resolve()): Promise<PushedReferrer> {
    const [present] = await allDone([this.repo.headManifest(r.digest), this.putBlob(r.config), this.putBlob(r.layer), subject]);
    let subjectHeader: string | null = null;
    if (!present) subjectHeader = (await this.repo.pushManifest(r.digest, r.bytes, MediaType.OciManifest)).subject;
    // distribution spec: a registry that processed `subject` answers the PUT with OCI-Subject.
    if (subjectHeader === r.subject.digest) return { referrer: r, kind: 'api' };
    // Otherwise ask the referrers API and read the fallback tag at once, one round trip instead of
    // two (GHCR has no referrers API); the tag is used only when the API is missing.
    const tag = referrersTag(r.subject.digest);
    const current = readReferrersTag(this.repo, tag, r.subject.digest).then(
      (index) => ({ index }),
      (error: unknown) => ({ error }),
    );
    if (await this.repo.referrers(r.subject.digest)) return { referrer: r, kind: 'api' };
    const read = await current;
    if ('error' in read) throw read.error;
    if (read.index === 'subject') return { referrer: r, kind: 'unlisted', tag };
    return { referrer: r, kind: 'tag', tag, index: read.index };
  }

  /** Write each fallback index that lacks one of `pushed` (one PUT per subject); returns how each is findable, in order. */
  async putNames(pushed: readonly PushedReferrer[]): Promise<ReferrerVia[]> {
    const byTag = new Map<string, Extract<PushedReferrer, { kind: 'tag' }>[]>();
    for (const p of pushed) if (p.kind === 'tag') byTag.set(p.tag, [...(byTag.get(p.tag) ?? []), p]);
    const added = new Set<string>();
    await allDone(
      [...byTag].map(async ([tag, ps]) => {
        // Other tools' referrers stay as they are; ours are appended. Two writers at the same
        // moment could each drop the other's entry; the spec accepts that race for the tag schema.
        const index = ps[0].index;
        const missing = ps.map((p) => p.referrer).filter((r, i, all) => !index.manifests.some((d) => d.digest === r.digest) && all.findIndex((o) => o.digest === r.digest) === i);
        if (!missing.length) return;
        await this.repo.putManifest(tag, encodeJson({ ...index, manifests: [...index.manifests, ...missing.map((r) => r.entry)] }), MediaType.OciIndex);
        for (const r of missing) added.add(r.digest);
      }),
    );
    return pushed.map((p): ReferrerVia => (p.kind === 'tag' ? { kind: 'tag', tag: p.tag, added: added.has(p.referrer.digest) } : p.kind === 'unlisted' ? { kind: 'unlisted', tag: p.tag } : { kind: 'api' }));
  }

  private putBlob(blob: BytesBlob): Promise<void> {
    const d = blob.descriptor;
    let put = this.blobs.get(d.digest);
    if (!put) {
      put = (async () => {
        if (!(await this.repo.hasBlob(d.digest))) await this.repo.uploadBlob(d.digest, d.size, async () => fromBuffer(blob.bytes));
      })();
      this.blobs.set(d.digest, put);
    }
    return put;
  }
}

/**
 * Make a pushed referrer findable from its subject, knowing only its entry: nothing to do where
 * the referrers API lists it; otherwise add `entry` to the subject's fallback index. The
 * docs/fan-out.md merge job does this for what its build legs pushed.
 */
export async function listReferrer(repo: ReferrerRepository, subject: string, entry: Descriptor): Promise<ReferrerVia> {
  const tag = referrersTag(subject);
  const current = readReferrersTag(repo, tag, subject).then(
    (index) => ({ index }),
    (error: unknown) => ({ error }),
  );
  if (await repo.referrers(subject)) return { kind: 'api' };
  const read = await current;
  if ('error' in read) throw read.error;
  if (read.index === 'subject') return { kind: 'unlisted', tag };
  if (read.index.manifests.some((d) => d.digest === entry.digest)) return { kind: 'tag', tag, added: false };
  await repo.putManifest(tag, encodeJson({ ...read.index, manifests: [...read.index.manifests, entry] }), MediaType.OciIndex);
  return { kind: 'tag', tag, added: true };
}

/** One referrer, content and name at once (what a run of one referrer does). */
export async function pushReferrer(repo: ReferrerRepository, r: Referrer, o: { subject?: Promise<unknown> } = {}): Promise<ReferrerVia> {
  const publisher = new ReferrersPublisher(repo);
  const [via] = await publisher.putNames([await publisher.putContent(r, o.subject)]);
  return via;
}

/**
 * The subject's referrers index under the tag schema's `tag`; empty when the tag is not there
 * (404). 'subject' when the registry answered with the subject itself: GitLab's registry reads
 * `sha256-<hex>` as the digest `sha256:<hex>`, so the tag schema cannot work there, and an index
 * subject's own manifests must not be taken for its referrers.
 */
async function readReferrersTag(repo: ReferrerRepository, tag: string, subject: string): Promise<Index | 'subject'> {
  try {
    const raw = await repo.getManifest(tag);
    if (raw.digest === subject) return 'subject';
    const doc = JSON.parse(raw.bytes.toString('utf8')) as Index;
    if (!isIndexMediaType(raw.mediaType) || !Array.isArray(doc.manifests)) {
      throw new Error(`${repo.name}:${tag} should hold the referrers of ${subject} but is not an image index`);
    }
    return doc;
  } catch (err) {
    if (!(err instanceof RegistryError && err.status === 404)) throw err;
    return { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] };
  }
}

/** Write the referrer's blobs (config, layer, manifest) into an OCI layout's blob store. */
export async function writeReferrerBlobs(dir: string, r: Referrer): Promise<void> {
  await mkdir(join(dir, Layout.BlobsDir, 'sha256'), { recursive: true });
  const layout = new LayoutWriter(dir);
  for (const [digest, bytes] of [
    [r.config.descriptor.digest, r.config.bytes],
    [r.layer.descriptor.digest, r.layer.bytes],
    [r.digest, r.bytes],
  ] as const) {
    await layout.putBytes(digest, bytes);
  }
}
