import { createHash } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { sha256 } from './digest.js';
import { devNull, tee } from './layer.js';
import { formatPlatform } from './platform.js';
import { familyOf, isIndexMediaType, isManifestMediaType, mediaTypesOf, MediaType, type Descriptor, type ImageConfig, type Index, type Manifest } from './spec.js';
import { readAll, type ContentSource } from './store.js';

export interface ValidationReport {
  digest: string;
  manifests: number;
  layers: number;
}

/**
 * Read an artifact back from where it was stored and check every invariant we rely on
 * (after go-containerregistry's `validate`): each digest and size recomputed from the bytes,
 * index entries ↔ child manifests, platform ↔ config, manifest ↔ config ↔ layers (diff IDs,
 * by decompressing each layer), media types of one family. Throws listing every problem.
 */
export async function validateStored(source: ContentSource, reference: string): Promise<ValidationReport> {
  const problems: string[] = [];
  const top = await source.getManifest(reference);
  const report: ValidationReport = { digest: top.digest, manifests: 0, layers: 0 };
  if (sha256(top.bytes) !== top.digest) problems.push(`top-level manifest bytes do not hash to ${top.digest}`);
  const family = familyOf(top.mediaType);
  if (isIndexMediaType(top.mediaType)) {
    const index = JSON.parse(top.bytes.toString('utf8')) as Index;
    if (index.schemaVersion !== 2) problems.push('index schemaVersion is not 2');
    if (index.mediaType && index.mediaType !== top.mediaType) problems.push(`index mediaType ${index.mediaType} ≠ served ${top.mediaType}`);
    for (const d of index.manifests) {
      if (!isManifestMediaType(d.mediaType)) continue; // artifacts such as attestations are not images
      if (d.mediaType !== mediaTypesOf(family).manifest) problems.push(`index entry ${d.digest} has ${d.mediaType} in a ${family} index`);
      if (!d.platform) problems.push(`index entry ${d.digest} has no platform`);
      else if (d.platform.os === 'unknown' || d.platform.architecture === 'unknown') problems.push(`index entry ${d.digest} is unknown/unknown`);
      await validateImage(source, d, problems, report);
    }
  } else if (isManifestMediaType(top.mediaType)) {
    await validateImage(source, { mediaType: top.mediaType, digest: top.digest, size: top.bytes.length }, problems, report);
  } else {
    problems.push(`unexpected media type ${top.mediaType}`);
  }
  if (problems.length) throw new Error(`invalid image ${source.name}@${top.digest}:\n  - ${problems.join('\n  - ')}`);
  return report;
}

async function validateImage(source: ContentSource, desc: Descriptor, problems: string[], report: ValidationReport) {
  report.manifests++;
  const raw = await source.getManifest(desc.digest);
  const at = `manifest ${desc.digest}`;
  if (sha256(raw.bytes) !== desc.digest) problems.push(`${at}: bytes do not hash to the digest`);
  if (raw.bytes.length !== desc.size) problems.push(`${at}: size ${raw.bytes.length} ≠ descriptor size ${desc.size}`);
  const m = JSON.parse(raw.bytes.toString('utf8')) as Manifest;
  const types = mediaTypesOf(familyOf(desc.mediaType));
  if (m.schemaVersion !== 2) problems.push(`${at}: schemaVersion is not 2`);
  if (m.mediaType && m.mediaType !== desc.mediaType) problems.push(`${at}: mediaType ${m.mediaType} ≠ descriptor ${desc.mediaType}`);
  if (m.config.mediaType !== types.config) problems.push(`${at}: config media type ${m.config.mediaType}`);

  const configBytes = await readAll(await source.getBlob(m.config.digest));
  if (sha256(configBytes) !== m.config.digest) problems.push(`${at}: config does not hash to ${m.config.digest}`);
  if (configBytes.length !== m.config.size) problems.push(`${at}: config size ${configBytes.length} ≠ ${m.config.size}`);
  const config = JSON.parse(configBytes.toString('utf8')) as ImageConfig;

  if (desc.platform) {
    const fromConfig = formatPlatform({ os: config.os, architecture: config.architecture, variant: config.variant });
    const fromIndex = formatPlatform(desc.platform);
    if (fromConfig !== fromIndex) problems.push(`${at}: index says ${fromIndex}, config says ${fromConfig}`);
  }
  const diffIds = config.rootfs?.diff_ids ?? [];
  if (config.rootfs?.type !== 'layers') problems.push(`${at}: config rootfs.type is not "layers"`);
  if (diffIds.length !== m.layers.length) problems.push(`${at}: ${m.layers.length} layers but ${diffIds.length} diff IDs`);
  const layerHistory = (config.history ?? []).filter((h) => !h.empty_layer).length;
  if (config.history && layerHistory !== m.layers.length) {
    problems.push(`${at}: ${layerHistory} non-empty history entries for ${m.layers.length} layers`);
  }
  for (const [i, l] of m.layers.entries()) {
    report.layers++;
    if (l.urls?.length) continue; // foreign layers are not in the registry
    const gz = l.mediaType === types.layer || l.mediaType === MediaType.DockerForeignLayerGzip;
    if (!gz && l.mediaType !== MediaType.OciLayer) problems.push(`${at}: layer ${i} media type ${l.mediaType} in a ${types.manifest} manifest`);
    const blobHash = createHash('sha256');
    const diffHash = createHash('sha256');
    let size = 0;
    const stages = gz ? [createGunzip(), tee(diffHash)] : [tee(diffHash)];
    try {
      await pipeline(await source.getBlob(l.digest), tee(blobHash, (n) => (size += n)), ...stages, devNull());
    } catch (err) {
      problems.push(`${at}: layer ${i} (${l.digest}) could not be read: ${(err as Error).message}`);
      continue;
    }
    if (`sha256:${blobHash.digest('hex')}` !== l.digest) problems.push(`${at}: layer ${i} does not hash to ${l.digest}`);
    if (size !== l.size) problems.push(`${at}: layer ${i} size ${size} ≠ ${l.size}`);
    const diffId = `sha256:${diffHash.digest('hex')}`;
    if (diffIds[i] !== diffId) problems.push(`${at}: layer ${i} diff ID ${diffId} ≠ config's ${diffIds[i]}`);
  }
}
