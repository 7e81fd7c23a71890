import { createHash } from 'node:crypto';
import type { BuildInfo, Module } from '../gobuild/go.js';
import { digestHex, sha256 } from '../oci/digest.js';
import { encodeJson } from '../oci/json.js';
import { formatPlatform } from '../oci/platform.js';
import type { Platform } from '../oci/spec.js';

// SPDX 2.3 (https://spdx.github.io/spdx-spec/v2.3/), JSON serialization: the subset of
// fields this document uses, named as the JSON schema names them.

export interface SpdxDocument {
  spdxVersion: 'SPDX-2.3';
  dataLicense: 'CC0-1.0';
  SPDXID: 'SPDXRef-DOCUMENT';
  name: string;
  documentNamespace: string;
  creationInfo: { created: string; creators: string[] };
  packages: SpdxPackage[];
  relationships: SpdxRelationship[];
}

export interface SpdxPackage {
  name: string;
  SPDXID: string;
  versionInfo?: string;
  downloadLocation: string;
  filesAnalyzed: boolean;
  checksums?: { algorithm: 'SHA256'; checksumValue: string }[];
  primaryPackagePurpose: 'CONTAINER' | 'APPLICATION' | 'LIBRARY';
  externalRefs: { referenceCategory: 'PACKAGE-MANAGER'; referenceType: 'purl'; referenceLocator: string }[];
  comment?: string;
  annotations?: SpdxAnnotation[];
}

export interface SpdxAnnotation {
  annotationDate: string;
  annotationType: 'OTHER';
  annotator: string;
  comment: string;
}

export interface SpdxRelationship {
  spdxElementId: string;
  relationshipType: 'DESCRIBES' | 'CONTAINS' | 'DEPENDS_ON';
  relatedSpdxElement: string;
}

export interface SpdxInput {
  /** The binary's embedded build information (`go version -m`). */
  buildInfo: BuildInfo;
  /** The platform image's manifest digest: the document describes that image. */
  imageDigest: string;
  platform: Platform;
  /** Where the image is published: `host[:port]/path`. */
  repository: string;
  /** The build's created time (docs/image.md#determinism), RFC 3339 UTC; never the wall clock. */
  created: string;
  /** The creating tool as SPDX wants it, `name-version` (`ko-annotate-0.1.0`). */
  tool: string;
  /** The purl name of the image; defaults to the repository's last path element. */
  imageName?: string;
}

export interface SpdxResult {
  document: SpdxDocument;
  /** The exact bytes that are hashed, pushed and written (compact JSON). */
  bytes: Buffer;
  digest: string;
}

/** SPDX's "no assertion made" value (SPDX 2.3 §7.7: the download location is not asserted). */
const NOASSERTION = 'NOASSERTION';

/**
 * The SPDX 2.3 document for one platform image: the image, the Go main module it contains,
 * and every module and the standard library the binary was linked from, as `pkg:golang` purls
 * (docs/image.md#sbom). A pure function of its input: the same input gives the same bytes.
 */
export function spdxDocument(input: SpdxInput): SpdxResult {
  const { buildInfo: info, repository, tool } = input;
  const created = spdxTime(input.created);
  const annotator = `Tool: ${tool}`;
  const imageName = (input.imageName ?? repository.split('/').at(-1) ?? repository).toLowerCase();
  const imagePurl = ociPurl(imageName, input.imageDigest, { arch: input.platform.architecture, repository_url: repository });

  const image: SpdxPackage = {
    name: repository,
    SPDXID: 'SPDXRef-Image',
    versionInfo: input.imageDigest,
    downloadLocation: NOASSERTION,
    filesAnalyzed: false,
    // The manifest digest is the SHA-256 of the manifest's bytes: the image's own identity.
    checksums: [{ algorithm: 'SHA256', checksumValue: digestHex(input.imageDigest) }],
    primaryPackagePurpose: 'CONTAINER',
    externalRefs: [purlRef(imagePurl)],
    comment: `platform ${formatPlatform(input.platform)}`,
  };

  const mainPath = info.main.path || info.path;
  const mainVersion = moduleVersion(info.main.version);
  const revision = info.settings['vcs.revision'];
  const main: SpdxPackage = {
    name: mainPath,
    SPDXID: moduleId(mainPath),
    ...(mainVersion ? { versionInfo: mainVersion } : {}),
    downloadLocation: NOASSERTION,
    filesAnalyzed: false,
    primaryPackagePurpose: 'APPLICATION',
    externalRefs: [purlRef(golangPurl(mainPath, mainVersion))],
    comment: `main module of ${info.path}` + (revision ? ` (vcs.revision ${revision})` : ''),
  };

  const deps = info.deps
    .map((m) => dependencyPackage(m, created, annotator))
    .sort((a, b) => compare(a.name, b.name) || compare(a.SPDXID, b.SPDXID));

  // The standard library is linked into every Go binary; its version is the toolchain's.
  // purl versions drop the `go` prefix, as the Go vulnerability database names them (1.23.5).
  const stdlib: SpdxPackage = {
    name: 'stdlib',
    SPDXID: 'SPDXRef-GoStdlib',
    versionInfo: info.goVersion,
    downloadLocation: NOASSERTION,
    filesAnalyzed: false,
    primaryPackagePurpose: 'LIBRARY',
    externalRefs: [purlRef(golangPurl('stdlib', info.goVersion.replace(/^go/, '')))],
    comment: `the Go standard library of ${info.goVersion}`,
  };

  const relationships: SpdxRelationship[] = [
    { spdxElementId: 'SPDXRef-DOCUMENT', relationshipType: 'DESCRIBES', relatedSpdxElement: image.SPDXID },
    { spdxElementId: image.SPDXID, relationshipType: 'CONTAINS', relatedSpdxElement: main.SPDXID },
    ...[...deps, stdlib].map((p) => ({ spdxElementId: main.SPDXID, relationshipType: 'DEPENDS_ON' as const, relatedSpdxElement: p.SPDXID })),
  ];

  const document: SpdxDocument = {
    spdxVersion: 'SPDX-2.3',
    dataLicense: 'CC0-1.0',
    SPDXID: 'SPDXRef-DOCUMENT',
    name: `${repository}@${input.imageDigest}`,
    documentNamespace: documentNamespace(imagePurl),
    creationInfo: { created, creators: [annotator] },
    packages: [image, main, ...deps, stdlib],
    relationships,
  };
  const bytes = encodeJson(document);
  return { document, bytes, digest: sha256(bytes) };
}

/**
 * One `dep` of the build info. A `=>` replacement is what was compiled: a module replacement
 * is named by its own path and version; a directory replacement has no version at all (Go
 * prints `(devel)`), so the package keeps the required path and says where it came from.
 */
function dependencyPackage(m: Module, created: string, annotator: string): SpdxPackage {
  const r = m.replace;
  const local = r !== undefined && isDirectoryPath(r.path);
  const path = r && !local ? r.path : m.path;
  const version = local ? undefined : moduleVersion(r ? r.version : m.version);
  const sum = local ? undefined : r ? r.sum : m.sum;
  const comment = !r
    ? undefined
    : local
      ? `replaced by the local directory ${r.path} (replace ${m.path} ${m.version} => ${r.path}): built from source, no module version`
      : `replaces ${m.path} ${m.version} (replace ${m.path} ${m.version} => ${r.path} ${r.version})`;
  return {
    name: path,
    SPDXID: moduleId(m.path),
    ...(version ? { versionInfo: version } : {}),
    downloadLocation: NOASSERTION,
    filesAnalyzed: false,
    primaryPackagePurpose: 'LIBRARY',
    externalRefs: [purlRef(golangPurl(path, version))],
    ...(comment ? { comment } : {}),
    // An `h1:` sum is a SHA-256 over the module's file list and file hashes (Go's dirhash), not
    // over any archive, so it is no SPDX checksum (no algorithm fits); it goes into an
    // annotation, spelled exactly as its go.sum line.
    ...(sum && version
      ? { annotations: [{ annotationDate: created, annotationType: 'OTHER' as const, annotator, comment: `go.sum: ${path} ${version} ${sum}` }] }
      : {}),
  };
}

/** `(devel)` (a main module or directory built from source) and '' are no version. */
const moduleVersion = (v: string): string | undefined => (v && v !== '(devel)' ? v : undefined);

/** Go's rule for a replacement that names a directory rather than a module (modfile.IsDirectoryPath). */
const isDirectoryPath = (p: string): boolean => /^(\.\.?([/\\]|$)|\/|\\|[A-Za-z]:[/\\])/.test(p);

/**
 * An element ID for a module path: SPDX IDs allow only letters, digits, `.` and `-`, so the
 * path is folded into those and an 8-hex hash of the exact path keeps two paths that fold
 * alike (`a/b`, `a_b`) apart.
 */
function moduleId(path: string): string {
  const short = createHash('sha256').update(path).digest('hex').slice(0, 8);
  return `SPDXRef-GoModule-${path.replace(/[^A-Za-z0-9.-]/g, '-')}-${short}`;
}

const purlRef = (locator: string) => ({ referenceCategory: 'PACKAGE-MANAGER' as const, referenceType: 'purl' as const, referenceLocator: locator });

/**
 * `pkg:golang/<module path>[@<version>]` (purl-spec, type golang). The module path keeps its
 * case: Go module paths are case-sensitive (the module proxy escapes capitals rather than
 * folding them), so lower-casing would name another module. Segments and the version are
 * percent-encoded (`+incompatible` → `%2Bincompatible`).
 */
export function golangPurl(path: string, version?: string): string {
  const name = path.split('/').map(encodeURIComponent).join('/');
  return `pkg:golang/${name}${version ? `@${encodeURIComponent(version)}` : ''}`;
}

/**
 * `pkg:oci/<name>@<digest>?<qualifiers>` (purl-spec, type oci): the name is the repository's
 * last element, lower-cased; the digest's `:` is percent-encoded; qualifiers are sorted by key
 * and keep `/` and `:` as the spec's examples do (`repository_url=ghcr.io/debian`).
 */
export function ociPurl(name: string, digest: string, qualifiers: Record<string, string | undefined>): string {
  const q = Object.keys(qualifiers)
    .filter((k) => qualifiers[k])
    .sort()
    .map((k) => `${k}=${encodeURIComponent(qualifiers[k]!).replace(/%2F/g, '/').replace(/%3A/g, ':')}`)
    .join('&');
  return `pkg:oci/${encodeURIComponent(name.toLowerCase())}@${encodeURIComponent(digest)}${q ? `?${q}` : ''}`;
}

/**
 * SPDX 2.3 §6.5 asks for a unique absolute URI per document. A name-based UUID (RFC 9562
 * version 5) of the image's purl gives one without randomness or a clock: the purl names the
 * repository and the image digest, and the digest already covers everything the document is
 * made from (the binary, the platform, the created time, the builder's version).
 */
function documentNamespace(imagePurl: string): string {
  return `urn:uuid:${uuidV5(URL_NAMESPACE, imagePurl)}`;
}

/** RFC 9562's namespace ID for URLs (and URIs such as purls). */
const URL_NAMESPACE = '6ba7b811-9dad-11d1-80b4-00c04fd430c8';

function uuidV5(namespace: string, name: string): string {
  const ns = Buffer.from(namespace.replaceAll('-', ''), 'hex');
  const h = createHash('sha1').update(ns).update(name, 'utf8').digest().subarray(0, 16);
  h[6] = (h[6] & 0x0f) | 0x50;
  h[8] = (h[8] & 0x3f) | 0x80;
  const x = h.toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

/**
 * SPDX dates are `YYYY-MM-DDThh:mm:ssZ`, UTC without fractions (SPDX 2.3 §6.9). The created
 * time is RFC 3339 already; any other offset or fraction is normalized, a non-date refused.
 */
export function spdxTime(rfc3339: string): string {
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/.test(rfc3339)) return rfc3339;
  const t = Date.parse(rfc3339);
  if (Number.isNaN(t)) throw new Error(`SBOM: created time ${JSON.stringify(rfc3339)} is not an RFC 3339 date`);
  return new Date(t).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
