import { sha256 } from '../oci/digest.js';
import { isIndexMediaType, isManifestMediaType, Key, type Descriptor, type ImageConfig, type Index, type Manifest } from '../oci/spec.js';
import { readConfigBlob, type ContentSource } from '../oci/store.js';

/**
 * Compressed layers already in a repository, by the digest of their uncompressed tar (the
 * config's diff ID). A re-run can then name a layer it would write byte for byte the same
 * without compressing it again: gzip is most of a publish's CPU, hashing the tar is cheap.
 */
export type PreviousLayers = ReadonlyMap<string, Descriptor>;

/** What a repository's tags named when they were read back: the layers, and each tag's digest. */
export interface PreviousImages {
  layers: PreviousLayers;
  /** Tag → the digest of the manifest or index it named (whoever made it). */
  tags: ReadonlyMap<string, string>;
}

/** At most this many of the run's tags are read back; the first ones are the most specific. */
const MAX_TAGS = 4;

/**
 * Read the images that `tags` name in `source` now: which digest each tag names, and their
 * layers, but only from images whose config says the same builder (`builder`, i.e. this
 * ko-annotate version, whose tar and gzip settings are fixed) made them: a layer another tool
 * or version compressed has the same diff ID but other bytes, and reusing it would make the
 * result depend on what the registry held. A tag that is missing or unreadable is skipped.
 */
export async function previousImages(source: ContentSource, tags: readonly string[], builder: string): Promise<PreviousImages> {
  const found = new Map<string, Descriptor>();
  const seen = new Set<string>();
  const read = tags.slice(0, MAX_TAGS);
  const tops = await Promise.all(read.map((t) => source.getManifest(t).catch(() => undefined)));
  const tagged = new Map<string, string>();
  tops.forEach((top, i) => top && tagged.set(read[i], top.digest));
  const manifests: Promise<void>[] = [];
  const visit = (bytes: Buffer, mediaType: string) => {
    const digest = sha256(bytes);
    if (seen.has(digest)) return;
    seen.add(digest);
    if (isIndexMediaType(mediaType)) {
      const index = JSON.parse(bytes.toString('utf8')) as Index;
      for (const d of index.manifests ?? []) {
        if (!isManifestMediaType(d.mediaType) || seen.has(d.digest)) continue;
        manifests.push(
          source.getManifest(d.digest).then(
            (raw) => visit(raw.bytes, raw.mediaType),
            () => undefined,
          ),
        );
      }
    } else if (isManifestMediaType(mediaType)) {
      manifests.push(collect(source, JSON.parse(bytes.toString('utf8')) as Manifest, builder, found).catch(() => undefined));
    }
  };
  for (const top of tops) if (top) visit(top.bytes, top.mediaType);
  // `visit` adds the platform manifests' reads while the index reads settle.
  for (let i = 0; i < manifests.length; i++) await manifests[i];
  return { layers: found, tags: tagged };
}

async function collect(source: ContentSource, manifest: Manifest, builder: string, into: Map<string, Descriptor>): Promise<void> {
  // A config that is too large or does not match its digest fails this image alone (the caller
  // catches it): none of its layers is reused.
  const bytes = await readConfigBlob(source, manifest.config);
  const config = JSON.parse(bytes.toString('utf8')) as ImageConfig;
  if (config.config?.Labels?.[Key.Builder] !== builder) return;
  const diffIds = config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== manifest.layers.length) return;
  manifest.layers.forEach((l, i) => {
    if (!l.urls?.length) into.set(diffIds[i], { mediaType: l.mediaType, digest: l.digest, size: l.size });
  });
}
