import { sha256 } from './digest.js';
import { compact, deepCopy, encodeJson, sortedRecord } from './json.js';
import { layerDescriptor, type Layer } from './layer.js';
import { mediaTypesOf, type Descriptor, type ImageConfig, type Index, type Manifest, type MediaFamily, type Platform } from './spec.js';

/**
 * An image: its manifest and config as the exact bytes that are hashed and pushed, plus its
 * layers. Values are frozen; every change below returns a new one (docs/architecture.md#oci-values).
 */
export interface Image {
  readonly kind: 'image';
  readonly family: MediaFamily;
  readonly mediaType: string;
  readonly manifest: Manifest;
  readonly bytes: Buffer;
  readonly digest: string;
  readonly size: number;
  readonly config: ImageConfig;
  readonly configBytes: Buffer;
  readonly configDigest: string;
  readonly layers: readonly Layer[];
  readonly platform: Platform;
}

export interface ImageIndex {
  readonly kind: 'index';
  readonly family: MediaFamily;
  readonly mediaType: string;
  readonly index: Index;
  readonly bytes: Buffer;
  readonly digest: string;
  readonly size: number;
  readonly images: readonly Image[];
}

/** What building yields and publishing takes (docs/architecture.md#build-and-publish). */
export type Artifact = Image | ImageIndex;

export const descriptorOf = (a: Artifact): Descriptor => ({ mediaType: a.mediaType, digest: a.digest, size: a.size });

export const platformOfConfig = (c: ImageConfig): Platform =>
  compact({ os: c.os, architecture: c.architecture, variant: c.variant || undefined });

/**
 * Assemble an image from a config and layers. The config's rootfs is set from the layers,
 * so the two cannot disagree. `configBytes`, when given, are the base's own bytes, kept
 * exactly so that an unchanged base keeps its digest.
 */
export function makeImage(opts: {
  family: MediaFamily;
  config: ImageConfig;
  configBytes?: Buffer;
  layers: readonly Layer[];
  annotations?: Record<string, string>;
  manifestBytes?: Buffer;
}): Image {
  const types = mediaTypesOf(opts.family);
  const config: ImageConfig = deepCopy(opts.config);
  const diffIds = opts.layers.map((l) => l.diffId);
  const keepBytes = opts.configBytes && sameList(config.rootfs?.diff_ids, diffIds);
  if (!keepBytes) config.rootfs = { type: 'layers', diff_ids: diffIds };
  const configBytes = keepBytes ? opts.configBytes! : encodeJson(config);
  const configDigest = sha256(configBytes);
  const manifest: Manifest = compact({
    schemaVersion: 2 as const,
    mediaType: types.manifest,
    config: { mediaType: types.config, digest: configDigest, size: configBytes.length },
    layers: opts.layers.map(layerDescriptor),
    annotations: sortedRecord(opts.annotations),
  });
  const bytes = opts.manifestBytes ?? encodeJson(manifest);
  return freezeImage({
    kind: 'image',
    family: opts.family,
    mediaType: types.manifest,
    manifest,
    bytes,
    digest: sha256(bytes),
    size: bytes.length,
    config,
    configBytes,
    configDigest,
    layers: Object.freeze([...opts.layers]),
    platform: platformOfConfig(config),
  });
}

/** An image read from storage: its manifest bytes are kept as the truth. */
export function imageFromParts(opts: {
  manifestBytes: Buffer;
  mediaType: string;
  family: MediaFamily;
  configBytes: Buffer;
  layers: readonly Layer[];
  platform?: Platform;
}): Image {
  const manifest = JSON.parse(opts.manifestBytes.toString('utf8')) as Manifest;
  const config = JSON.parse(opts.configBytes.toString('utf8')) as ImageConfig;
  return freezeImage({
    kind: 'image',
    family: opts.family,
    mediaType: opts.mediaType,
    manifest,
    bytes: opts.manifestBytes,
    digest: sha256(opts.manifestBytes),
    size: opts.manifestBytes.length,
    config,
    configBytes: opts.configBytes,
    configDigest: sha256(opts.configBytes),
    layers: Object.freeze([...opts.layers]),
    platform: opts.platform ?? platformOfConfig(config),
  });
}

/** The empty image for `scratch`: no layers, a minimal config for the platform. */
export function scratch(platform: Platform): Image {
  return makeImage({
    family: 'oci',
    config: compact({
      architecture: platform.architecture,
      os: platform.os,
      variant: platform.variant,
      config: {},
      rootfs: { type: 'layers' as const, diff_ids: [] },
    }),
    layers: [],
  });
}

/** A new image with `layers` appended and the config changed by `edit` (given a deep copy). */
export function mutate(
  base: Image,
  change: { layers?: readonly Layer[]; config?: (c: ImageConfig) => ImageConfig; annotations?: Record<string, string> },
): Image {
  const config = change.config ? change.config(deepCopy(base.config)) : base.config;
  return makeImage({
    family: base.family,
    config,
    configBytes: change.config ? undefined : base.configBytes,
    layers: [...base.layers, ...(change.layers ?? [])],
    annotations: change.annotations ?? base.manifest.annotations,
  });
}

/** An index over images, in the order given, each entry carrying its platform (docs/image.md#platforms). */
export function makeIndex(family: MediaFamily, images: readonly Image[], annotations?: Record<string, string>): ImageIndex {
  return indexOfEntries(family, images.map(indexEntry), annotations, images);
}

/** An image as an entry of an index: its descriptor and platform. */
export const indexEntry = (img: Image): Descriptor => ({ ...descriptorOf(img), platform: compact({ ...img.platform }) });

/**
 * The index makeIndex makes, from its entries (indexEntry) rather than the images: docs/fan-out.md's
 * merge job has only the legs' descriptors, and its index must be the same bytes. `images` are
 * those of the entries this run holds (none for a merge: they are in the registry already).
 */
export function indexOfEntries(family: MediaFamily, entries: readonly Descriptor[], annotations: Record<string, string> | undefined, images: readonly Image[] = []): ImageIndex {
  const index: Index = compact({
    schemaVersion: 2 as const,
    mediaType: mediaTypesOf(family).index,
    manifests: entries.map((e) => ({ ...e })),
    annotations: sortedRecord(annotations),
  });
  return indexFromDocument(family, index, images);
}

/**
 * An index value from a complete index document, serialized once: the bytes are what is
 * hashed and pushed. For documents makeIndex cannot express (entries with annotations).
 */
export function indexFromDocument(family: MediaFamily, index: Index, images: readonly Image[]): ImageIndex {
  const bytes = encodeJson(index);
  return Object.freeze({
    kind: 'index' as const,
    family,
    mediaType: mediaTypesOf(family).index,
    index,
    bytes,
    digest: sha256(bytes),
    size: bytes.length,
    images: Object.freeze([...images]),
  });
}

/** Every image of an artifact (one for an image, each child for an index). */
export const imagesOf = (a: Artifact): readonly Image[] => (a.kind === 'image' ? [a] : a.images);

function sameList(a: readonly string[] | undefined, b: readonly string[]): boolean {
  return !!a && a.length === b.length && a.every((x, i) => x === b[i]);
}

function freezeImage(i: Image): Image {
  return Object.freeze(i);
}
