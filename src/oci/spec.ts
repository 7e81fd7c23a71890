// The OCI and Docker specs in one place: media types, annotation keys and document shapes.
// No other file spells a media type or an `org.opencontainers.image.*` key.

export const MediaType = {
  OciManifest: 'application/vnd.oci.image.manifest.v1+json',
  OciIndex: 'application/vnd.oci.image.index.v1+json',
  OciConfig: 'application/vnd.oci.image.config.v1+json',
  OciLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  OciLayer: 'application/vnd.oci.image.layer.v1.tar',
  OciEmpty: 'application/vnd.oci.empty.v1+json',
  DockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  DockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DockerConfig: 'application/vnd.docker.container.image.v1+json',
  DockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  DockerForeignLayerGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  SpdxJson: 'application/spdx+json',
  /** A Sigstore bundle (sigstore protobuf-specs), as referrer artifactType and layer (docs/provenance.md#storage). */
  SigstoreBundle: 'application/vnd.dev.sigstore.bundle.v0.3+json',
} as const;
export type MediaType = (typeof MediaType)[keyof typeof MediaType];

/** Which family of media types an image uses; it follows the base (docs/image.md#layout). */
export type MediaFamily = 'oci' | 'docker';

export const mediaTypesOf = (family: MediaFamily) =>
  family === 'oci'
    ? { manifest: MediaType.OciManifest, index: MediaType.OciIndex, config: MediaType.OciConfig, layer: MediaType.OciLayerGzip }
    : { manifest: MediaType.DockerManifest, index: MediaType.DockerManifestList, config: MediaType.DockerConfig, layer: MediaType.DockerLayerGzip };

export const isIndexMediaType = (m: string | undefined): boolean =>
  m === MediaType.OciIndex || m === MediaType.DockerManifestList;
export const isManifestMediaType = (m: string | undefined): boolean =>
  m === MediaType.OciManifest || m === MediaType.DockerManifest;
export const familyOf = (m: string): MediaFamily =>
  m === MediaType.DockerManifest || m === MediaType.DockerManifestList ? 'docker' : 'oci';

/** Accept header for manifest GET/HEAD: every manifest and index type we can read. */
export const manifestAccept = [
  MediaType.OciIndex,
  MediaType.OciManifest,
  MediaType.DockerManifestList,
  MediaType.DockerManifest,
].join(', ');

/** Annotation and label keys. */
export const Key = {
  Source: 'org.opencontainers.image.source',
  Url: 'org.opencontainers.image.url',
  Revision: 'org.opencontainers.image.revision',
  Created: 'org.opencontainers.image.created',
  Version: 'org.opencontainers.image.version',
  Title: 'org.opencontainers.image.title',
  Description: 'org.opencontainers.image.description',
  Licenses: 'org.opencontainers.image.licenses',
  BaseName: 'org.opencontainers.image.base.name',
  BaseDigest: 'org.opencontainers.image.base.digest',
  RefName: 'org.opencontainers.image.ref.name',
  GoVersion: 'io.github.ko-annotate.go.version',
  GoPackage: 'io.github.ko-annotate.go.package',
  GoModule: 'io.github.ko-annotate.go.module',
  Builder: 'io.github.ko-annotate.builder',
  /** On a bundle referrer: what the bundle holds (`dsse-envelope`) and its statement's predicate type, as cosign and GitHub write them. */
  BundleContent: 'dev.sigstore.bundle.content',
  BundlePredicateType: 'dev.sigstore.bundle.predicateType',
} as const;

/** Labels with this prefix describe the base image and are dropped before ours are written (docs/image.md#metadata). */
export const OciKeyPrefix = 'org.opencontainers.image.';

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
  'os.version'?: string;
  'os.features'?: string[];
  features?: string[];
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  platform?: Platform;
  artifactType?: string;
  data?: string;
}

export interface Manifest {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

export interface Index {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  manifests: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

export interface HistoryEntry {
  created?: string;
  created_by?: string;
  author?: string;
  comment?: string;
  empty_layer?: boolean;
}

export interface ContainerConfig {
  User?: string;
  ExposedPorts?: Record<string, object>;
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  Volumes?: Record<string, object>;
  WorkingDir?: string;
  Labels?: Record<string, string>;
  StopSignal?: string;
  [other: string]: unknown;
}

export interface ImageConfig {
  created?: string;
  author?: string;
  architecture: string;
  os: string;
  variant?: string;
  'os.version'?: string;
  'os.features'?: string[];
  config?: ContainerConfig;
  rootfs: { type: 'layers'; diff_ids: string[] };
  history?: HistoryEntry[];
  [other: string]: unknown;
}

/** OCI image layout (image-layout.md). */
export const Layout = {
  FileName: 'oci-layout',
  Version: '1.0.0',
  IndexFile: 'index.json',
  BlobsDir: 'blobs',
} as const;
