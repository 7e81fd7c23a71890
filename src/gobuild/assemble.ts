import type { Readable } from 'node:stream';
import { sortedRecord } from '../oci/json.js';
import { makeIndex, mutate, type Artifact, type Image } from '../oci/image.js';
import type { Layer, TarEntry } from '../oci/layer.js';
import { Key, OciKeyPrefix, type ContainerConfig, type ImageConfig, type MediaFamily, type Platform } from '../oci/spec.js';

/** Where ko puts things (docs/image.md#layout); kept so that images stay ko-compatible. */
export const KoApp = { Dir: '/ko-app', DataPath: '/var/run/ko' } as const;

/** The run-wide provenance values of docs/image.md#metadata. */
export interface Provenance {
  /** Undefined only for a local run whose checkout names no GitHub-style remote. */
  source?: string;
  revision: string;
  created: string;
  version: string;
  description?: string;
  licenses?: string;
  builder: string;
}

/** The docs/image.md#metadata key set for one image. */
export function metadataKeys(p: Provenance, image: { title: string; goVersion: string; importPath: string; modulePath: string }): Record<string, string> {
  const keys: Record<string, string> = {
    ...(p.source ? { [Key.Source]: p.source, [Key.Url]: p.source } : {}),
    [Key.Revision]: p.revision,
    [Key.Created]: p.created,
    [Key.Version]: p.version,
    [Key.Title]: image.title,
    [Key.GoVersion]: image.goVersion,
    [Key.GoPackage]: image.importPath,
    [Key.GoModule]: image.modulePath,
    [Key.Builder]: p.builder,
  };
  if (p.description) keys[Key.Description] = p.description;
  if (p.licenses && p.licenses !== 'NOASSERTION') keys[Key.Licenses] = p.licenses;
  return keys;
}

/** User annotations split by level: `index:key=v` and `manifest:key=v` limit them; bare ones go to both. */
export interface UserAnnotations {
  index: Record<string, string>;
  manifest: Record<string, string>;
}

/** The binary layer's entries: `/ko-app/<name>`, mode 0555, owned by root. */
export function binaryEntries(name: string, size: number, open: () => Readable): TarEntry[] {
  return [
    { type: 'directory', path: 'ko-app/', mode: 0o755 },
    { type: 'file', path: `ko-app/${name}`, mode: 0o555, size, open },
  ];
}

export interface ImageParts {
  base: Image;
  platform: Platform;
  /** kodata first, then the binary, as ko orders them (data changes less often). */
  layers: { layer: Layer; comment: string }[];
  appName: string;
  importPath: string;
  created: string;
  user?: string;
  /** docs/image.md#metadata keys, then the user's labels (which win). */
  labels: Record<string, string>;
  /** docs/image.md#metadata keys, base.name/base.digest, then the user's manifest annotations. */
  annotations: Record<string, string>;
}

/** Compose one platform image from its base (docs/architecture.md#oci-values: a new value; the base is untouched). */
export function assembleImage(p: ImageParts): Image {
  return mutate(p.base, {
    layers: p.layers.map((l) => l.layer),
    annotations: p.annotations,
    config: (c) => editConfig(c, p),
  });
}

function editConfig(c: ImageConfig, p: ImageParts): ImageConfig {
  const cfg: ContainerConfig = { ...(c.config ?? {}) };
  const entrypoint = `${KoApp.Dir}/${p.appName}`;
  cfg.Entrypoint = [entrypoint];
  delete cfg.Cmd;
  cfg.Env = withEnv(withPath(cfg.Env ?? []), 'KO_DATA_PATH', KoApp.DataPath);
  if (p.user) cfg.User = p.user;
  cfg.Labels = sortedRecord({ ...inheritedLabels(cfg.Labels), ...p.labels });
  const history = [
    ...(c.history ?? []),
    ...p.layers.map((l) => ({ created: p.created, created_by: `ko-annotate build ${p.importPath}`, comment: l.comment })),
  ];
  const out: ImageConfig = { ...c, created: p.created, os: p.platform.os, architecture: p.platform.architecture, config: cfg, history };
  if (p.platform.variant) out.variant = p.platform.variant;
  else delete out.variant;
  return out;
}

/** Base labels stay, except `org.opencontainers.image.*`, which describe the base (docs/image.md#metadata). */
export function inheritedLabels(labels: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels ?? {})) if (!k.startsWith(OciKeyPrefix)) out[k] = v;
  return out;
}

/** `PATH` gets `:/ko-app` appended, or is `/ko-app` when the base has none (as ko does). */
function withPath(env: string[]): string[] {
  const i = env.findIndex((e) => e.startsWith('PATH='));
  if (i < 0) return [...env, `PATH=${KoApp.Dir}`];
  const out = [...env];
  const parts = out[i].slice('PATH='.length).split(':');
  if (!parts.includes(KoApp.Dir)) out[i] = `${out[i]}:${KoApp.Dir}`;
  return out;
}

function withEnv(env: string[], key: string, value: string): string[] {
  return [...env.filter((e) => !e.startsWith(`${key}=`)), `${key}=${value}`];
}

/** One platform → the image itself; several → an index of them in the requested order (docs/image.md#layout). */
export function combine(family: MediaFamily, images: readonly Image[], annotations: Record<string, string>): Artifact {
  return images.length === 1 ? images[0] : makeIndex(family, images, annotations);
}
