import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { BuiltPackage } from '../gobuild/builder.js';
import type { Logger } from '../log.js';
import { digestHex, sha256 } from '../oci/digest.js';
import { descriptorOf } from '../oci/image.js';
import { encodeJson } from '../oci/json.js';
import { fromBuffer } from '../oci/layer.js';
import { LayoutWriter } from '../oci/layout.js';
import { formatPlatform } from '../oci/platform.js';
import { isIndexMediaType, Key, Layout, MediaType, type Descriptor, type Index, type Manifest } from '../oci/spec.js';
import type { Repository } from '../registry/repository.js';
import { RegistryError } from '../registry/errors.js';
import { allDone } from '../util.js';
import { spdxDocument } from './spdx.js';

/** A blob held in memory: SBOMs and the empty config are small. */
export interface BytesBlob {
  descriptor: Descriptor;
  bytes: Buffer;
}

/** An SBOM as an OCI artifact manifest whose subject is one platform image (docs/image.md#sbom). */
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

/** Layer file name for tools that pull artifacts to files (`oras pull`). */
const SBOM_FILE = 'sbom.spdx.json';

/**
 * The referrer manifest for an SPDX document: an image manifest with `artifactType`, the empty
 * config (the image spec's guidance for artifacts with no config), one layer holding the
 * document, and `subject` = the image it describes.
 */
export function sbomReferrer(o: { subject: Descriptor; sbom: Buffer; created: string }): Referrer {
  const config: BytesBlob = { descriptor: { mediaType: MediaType.OciEmpty, digest: sha256(EMPTY_JSON), size: EMPTY_JSON.length }, bytes: EMPTY_JSON };
  const layer: BytesBlob = {
    descriptor: { mediaType: MediaType.SpdxJson, digest: sha256(o.sbom), size: o.sbom.length, annotations: { [Key.Title]: SBOM_FILE } },
    bytes: o.sbom,
  };
  const subject: Descriptor = { mediaType: o.subject.mediaType, digest: o.subject.digest, size: o.subject.size };
  const annotations = { [Key.Created]: o.created };
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    artifactType: MediaType.SpdxJson,
    config: config.descriptor,
    layers: [layer.descriptor],
    subject,
    annotations,
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
    entry: { mediaType: MediaType.OciManifest, digest, size: bytes.length, artifactType: MediaType.SpdxJson, annotations },
  };
}

/** The referrers tag schema's tag for a subject (distribution spec, "Referrers Tag Schema"). */
export const referrersTag = (subjectDigest: string): string => `sha256-${digestHex(subjectDigest)}`;

/** How the referrer was made findable: the registry's referrers API, or the fallback tag. */
export type ReferrerVia =
  | { kind: 'api' }
  | { kind: 'tag'; tag: string; added: boolean }
  /** Pushed, but the registry has no referrers API and answers the fallback tag with the subject itself. */
  | { kind: 'unlisted'; tag: string }
  /** Pushed by a docs/fan-out.md build leg, on a registry without the referrers API: the merge job writes the fallback tag. */
  | { kind: 'deferred' };

/** What pushReferrer waits for, and how it sends a blob. */
export interface PushReferrerOptions {
  /** Settles once the subject is in the repository; the referrer manifest is PUT only after it. */
  subject?: Promise<unknown>;
  /** HEAD the blob and upload it if missing; publishSboms passes one that sends a shared blob once. */
  putBlob?(blob: BytesBlob): Promise<void>;
  /** docs/fan-out.md: a build leg writes no tag of any kind, the fallback tag included; the merge job lists it (listReferrer). */
  deferTag?: boolean;
}

/**
 * Push a referrer: its blobs (HEAD first, skipped if present), then its manifest by digest.
 * A registry with the referrers API indexes `subject` itself; one without it (distribution
 * 2.8, our test registry) gets the referrers tag schema: the `sha256-<hex>` tag holds an index
 * of the subject's referrers, to which ours is added once, so re-runs change nothing.
 */
export async function pushReferrer(repo: Repository, r: Referrer, o: PushReferrerOptions = {}): Promise<ReferrerVia> {
  const putBlob = o.putBlob ?? ((blob: BytesBlob) => putBlobIfMissing(repo, blob));
  // The blobs and the manifest's HEAD wait for nothing. The manifest's PUT waits for both blobs
  // (registries refuse a manifest whose blobs are missing) and for its subject.
  const [present] = await allDone([repo.headManifest(r.digest), putBlob(r.config), putBlob(r.layer), o.subject ?? Promise.resolve()]);
  let subjectHeader: string | null = null;
  if (!present) subjectHeader = (await repo.pushManifest(r.digest, r.bytes, MediaType.OciManifest)).subject;
  // distribution spec: a registry that processed `subject` answers the PUT with OCI-Subject.
  if (subjectHeader === r.subject.digest) return { kind: 'api' };
  if (o.deferTag) return (await repo.referrers(r.subject.digest)) ? { kind: 'api' } : { kind: 'deferred' };
  return listReferrer(repo, r.subject.digest, r.entry);
}

/**
 * Make a pushed referrer findable from its subject: nothing to do where the referrers API lists
 * it; otherwise add `entry` to the subject's `sha256-<hex>` fallback index.
 */
export async function listReferrer(repo: Repository, subject: string, entry: Descriptor): Promise<ReferrerVia> {
  // Ask the referrers API and read the fallback tag at once, one round trip instead of two
  // (GHCR has no referrers API); the tag is used only when the API is missing.
  const tag = referrersTag(subject);
  const current = readReferrersTag(repo, tag, subject).then(
    (index) => ({ index }),
    (error: unknown) => ({ error }),
  );
  if (await repo.referrers(subject)) return { kind: 'api' };
  const read = await current;
  if ('error' in read) throw read.error;
  if (read.index === 'subject') return { kind: 'unlisted', tag };
  return addToReferrersTag(repo, entry, tag, read.index);
}

async function putBlobIfMissing(repo: Repository, blob: BytesBlob): Promise<void> {
  const d = blob.descriptor;
  if (!(await repo.hasBlob(d.digest))) await repo.uploadBlob(d.digest, d.size, async () => fromBuffer(blob.bytes));
}

/**
 * The subject's referrers index under the tag schema's `tag`; empty when the tag is not there
 * (404). 'subject' when the registry answered with the subject itself: GitLab's registry reads
 * `sha256-<hex>` as the digest `sha256:<hex>`, so the tag schema cannot work there, and an index
 * subject's own manifests must not be taken for its referrers.
 */
async function readReferrersTag(repo: Repository, tag: string, subject: string): Promise<Index | 'subject'> {
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

/** Add ours to the subject's referrers `index` (read from `tag`) if it is not there, and PUT it back. */
async function addToReferrersTag(repo: Repository, entry: Descriptor, tag: string, index: Index): Promise<ReferrerVia> {
  if (index.manifests.some((d) => d.digest === entry.digest)) return { kind: 'tag', tag, added: false };
  // Other tools' referrers stay as they are; ours is appended. Two writers at the same moment
  // could each drop the other's entry; the spec accepts that race for the tag schema.
  const next: Index = { ...index, manifests: [...index.manifests, entry] };
  await repo.putManifest(tag, encodeJson(next), MediaType.OciIndex);
  return { kind: 'tag', tag, added: true };
}

/** Write the referrer's blobs (config, document, manifest) into an OCI layout's blob store. */
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

/** Where publishSboms puts the documents. */
export interface SbomWhere {
  push: boolean;
  layoutDir?: string;
  /** docs/fan-out.md: a build leg leaves the fallback tags to the merge job (PushReferrerOptions.deferTag). */
  deferTags?: boolean;
}

/** One platform's SBOM referrer; `unlisted` when a build leg left its fallback tag to the merge job. */
export interface SbomResult {
  platform: string;
  digest: string;
  unlisted?: { subject: string; entry: Descriptor };
}

export interface SbomDeps {
  logger: Logger;
  /** The push-scoped repository for `host/path`. */
  repository(name: string): Repository;
}

/**
 * docs/image.md#sbom for one package: an SPDX document per platform image, each as a referrer of its
 * image, pushed when `push` and written into the layout when there is one. Returns the
 * referrer manifests' digests, one per platform in order.
 *
 * `published` settles once the package's images are published (registry and layout), and
 * `imagesUp` once its platform images are in the repository, before the index. The referrers'
 * blobs need nothing from them and go up at once; each referrer manifest waits for `imagesUp`
 * (its subject is a platform image), the layout's copies for `published`.
 */
export async function publishSboms(
  built: BuiltPackage,
  where: SbomWhere,
  deps: SbomDeps,
  published: Promise<unknown> = Promise.resolve(),
  /** Settles once the platform images are in the repository (before the index); defaults to `published`. */
  imagesUp: Promise<unknown> = published,
): Promise<SbomResult[]> {
  const made = built.platforms.map((p) => {
    const platform = formatPlatform(p.platform);
    const annotations = p.image.manifest.annotations ?? {};
    // The image's own created time (docs/image.md#determinism), so the SBOM is as reproducible as the image.
    const created = p.image.config.created ?? annotations[Key.Created];
    if (!created) throw new Error(`SBOM for ${built.plan.repository}@${p.image.digest} (${platform}): the image has no created time`);
    const doc = spdxDocument({
      buildInfo: p.buildInfo,
      imageDigest: p.image.digest,
      platform: p.platform,
      repository: built.plan.repository,
      created,
      tool: toolName(annotations[Key.Builder]),
    });
    return { platform, image: p.image.digest, packages: doc.document.packages.length, r: sbomReferrer({ subject: descriptorOf(p.image), sbom: doc.bytes, created }) };
  });
  let vias: ReferrerVia[] | undefined;
  if (where.push) {
    const repo = deps.repository(built.plan.repository);
    // Every platform's referrer at once; the blob they all share (the empty config) goes up once.
    const blobs = new Map<string, Promise<void>>();
    const putBlob = (blob: BytesBlob) => {
      const d = blob.descriptor.digest;
      if (!blobs.has(d)) blobs.set(d, putBlobIfMissing(repo, blob));
      return blobs.get(d)!;
    };
    vias = await allDone(made.map((m) => pushReferrer(repo, m.r, { subject: imagesUp, putBlob, deferTag: where.deferTags })));
  }
  await published;
  const out: SbomResult[] = [];
  for (const [i, m] of made.entries()) {
    // One platform at a time: the referrers share the empty config's file.
    if (where.layoutDir) await writeReferrerBlobs(where.layoutDir, m.r);
    const via = vias?.[i];
    const how = !via
      ? 'not pushed'
      : via.kind === 'api'
        ? 'via the referrers API'
        : via.kind === 'unlisted'
          ? `not listed: the registry has no referrers API and answers ${via.tag} with the image itself`
          : via.kind === 'deferred'
            ? `the merge job lists it in ${referrersTag(m.image)}`
            : `in the referrers index ${via.tag}${via.added ? '' : ' (already listed)'}`;
    const line = `SBOM ${m.platform}: SPDX 2.3, ${m.packages} packages, ${built.plan.repository}@${m.r.digest} refers to ${m.image} (${how})`;
    // Pushed but not findable by its subject: say so where a run's warnings are seen.
    if (via?.kind === 'unlisted') deps.logger.warning(line);
    else deps.logger.info(line);
    out.push({ platform: m.platform, digest: m.r.digest, ...(via?.kind === 'deferred' ? { unlisted: { subject: m.image, entry: m.r.entry } } : {}) });
  }
  return out;
}

/** SPDX's tool creator form is `name-version`; the builder key holds `ko-annotate/<version>` (docs/image.md#metadata). */
const toolName = (builder: string | undefined): string => (builder ? builder.replace('/', '-') : 'ko-annotate');
