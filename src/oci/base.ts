import { imageFromParts, type Image } from './image.js';
import type { Layer } from './layer.js';
import { bestPlatformMatch, formatPlatform, isUnknownPlatform } from './platform.js';
import { familyOf, isIndexMediaType, isManifestMediaType, type Index, type Manifest, type MediaFamily, type Platform } from './spec.js';
import { readConfigBlob, type ContentSource } from './store.js';

/** A base image resolved for the platforms to build. */
export interface ResolvedBase {
  /** The reference as the user gave it (`org.opencontainers.image.base.name`). */
  readonly name: string;
  /** Digest of what the reference named: the index, or the single manifest. */
  readonly digest: string;
  readonly isIndex: boolean;
  readonly family: MediaFamily;
  /**
   * One image per requested platform, in the requested order: the base's entry that serves it,
   * which may be a lower variant (docs/cgo.md#platform-matching); its `platform` is the entry's.
   */
  readonly images: readonly Image[];
  /** The platform each of `images` is built for: the one requested, or with `all` the entry's own. */
  readonly platforms: readonly Platform[];
  /** With `platforms: all`: the base's platforms left out because they are not Linux. */
  readonly skipped?: readonly Platform[];
}

/** Platforms selectable from a base: every index entry except `unknown/unknown` attestations. */
export function basePlatforms(index: Index): Platform[] {
  return index.manifests.filter((d) => isManifestMediaType(d.mediaType) && !isUnknownPlatform(d.platform)).map((d) => d.platform!);
}

/**
 * Resolve `reference` in `source` and pick one image per platform. `platforms: 'all'` takes
 * every platform of an index (README.md#inputs) or the single image's own platform, Linux ones only:
 * images are laid out for Linux (`/ko-app`, `PATH`), as the platforms input allows no other OS.
 */
export async function resolveBase(
  source: ContentSource,
  name: string,
  reference: string,
  platforms: readonly Platform[] | 'all',
): Promise<ResolvedBase> {
  const top = await source.getManifest(reference);
  const family = familyOf(top.mediaType);
  if (isIndexMediaType(top.mediaType)) {
    const index = JSON.parse(top.bytes.toString('utf8')) as Index;
    const available = basePlatforms(index);
    const wanted = platforms === 'all' ? available.filter(isLinux) : platforms;
    if (!wanted.length) throw new Error(`base image ${name} has no Linux platform to build (it has ${available.map(formatPlatform).join(', ') || 'none'})`);
    const images: Image[] = [];
    const entries = index.manifests.map((m) => (isManifestMediaType(m.mediaType) && !isUnknownPlatform(m.platform) ? m.platform : undefined));
    for (const p of wanted) {
      const i = bestPlatformMatch(p, entries);
      if (i < 0) {
        throw new Error(
          `base image ${name} has no ${formatPlatform(p)} image, nor a lower variant of it (it has ${available.map(formatPlatform).join(', ') || 'none'})`,
        );
      }
      images.push(await loadImage(source, index.manifests[i].digest, index.manifests[i].platform!));
    }
    const skipped = platforms === 'all' ? available.filter((p) => !isLinux(p)) : [];
    return { name, digest: top.digest, isIndex: true, family, images, platforms: wanted, ...(skipped.length ? { skipped } : {}) };
  }
  if (!isManifestMediaType(top.mediaType)) {
    throw new Error(`base image ${name}: unsupported media type ${top.mediaType}`);
  }
  const image = await imageFromRaw(source, top.bytes, top.mediaType);
  if (platforms === 'all' && !isLinux(image.platform)) {
    throw new Error(`base image ${name} is a single ${formatPlatform(image.platform)} image; images are built for linux only`);
  }
  if (platforms !== 'all') {
    const other = platforms.find((p) => bestPlatformMatch(p, [image.platform]) < 0);
    if (other) {
      throw new Error(`base image ${name} is a single ${formatPlatform(image.platform)} image; it cannot serve ${formatPlatform(other)}`);
    }
  }
  const wanted = platforms === 'all' ? [image.platform] : platforms;
  return { name, digest: top.digest, isIndex: false, family, images: wanted.map(() => image), platforms: wanted };
}

const isLinux = (p: Platform) => p.os === 'linux';

async function loadImage(source: ContentSource, digest: string, platform: Platform): Promise<Image> {
  const raw = await source.getManifest(digest);
  if (!isManifestMediaType(raw.mediaType)) throw new Error(`${source.name}@${digest}: expected an image manifest, got ${raw.mediaType}`);
  return imageFromRaw(source, raw.bytes, raw.mediaType, platform);
}

async function imageFromRaw(source: ContentSource, bytes: Buffer, mediaType: string, platform?: Platform): Promise<Image> {
  const manifest = JSON.parse(bytes.toString('utf8')) as Manifest;
  const configBytes = await readConfigBlob(source, manifest.config);
  const config = JSON.parse(configBytes.toString('utf8')) as { rootfs?: { diff_ids?: string[] } };
  const diffIds = config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== manifest.layers.length) {
    throw new Error(`${source.name}: config lists ${diffIds.length} diff IDs for ${manifest.layers.length} layers`);
  }
  const layers: Layer[] = manifest.layers.map((d, i) =>
    Object.freeze({
      mediaType: d.mediaType,
      digest: d.digest,
      size: d.size,
      diffId: diffIds[i],
      urls: d.urls,
      origin: source.origin,
      open: () => source.getBlob(d.digest),
    }),
  );
  return imageFromParts({ manifestBytes: bytes, mediaType, family: familyOf(mediaType), configBytes, layers, platform });
}
