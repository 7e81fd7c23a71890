import type { BuiltPackage } from '../gobuild/builder.js';
import { descriptorOf } from '../oci/image.js';
import { formatPlatform } from '../oci/platform.js';
import { Key, MediaType, type Descriptor } from '../oci/spec.js';
import { artifactReferrer, type Referrer } from '../publish/referrers.js';
import { spdxDocument } from './spdx.js';

/** Layer file name for tools that pull artifacts to files (`oras pull`). */
const SBOM_FILE = 'sbom.spdx.json';

/** The referrer manifest for an SPDX document about `subject` (docs/image.md#sbom). */
export const sbomReferrer = (o: { subject: Descriptor; sbom: Buffer; created: string }): Referrer =>
  artifactReferrer({
    subject: o.subject,
    artifactType: MediaType.SpdxJson,
    layer: { mediaType: MediaType.SpdxJson, bytes: o.sbom, annotations: { [Key.Title]: SBOM_FILE } },
    annotations: { [Key.Created]: o.created },
  });

/** One platform's SBOM referrer; `unlisted` when a docs/fan-out.md build leg left its fallback tag to the merge job. */
export interface SbomResult {
  platform: string;
  digest: string;
  unlisted?: { subject: string; entry: Descriptor };
}

/** One platform image's SPDX document, and its referrer. */
export interface PlatformSbom {
  platform: string;
  /** The platform image it describes. */
  image: Descriptor;
  /** The image's created time, which the referrers carry. */
  created: string;
  document: Buffer;
  packages: number;
  referrer: Referrer;
}

/** docs/image.md#sbom: an SPDX document per platform image of `built`, in order. */
export function platformSboms(built: BuiltPackage): PlatformSbom[] {
  return built.platforms.map((p) => {
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
    const image = descriptorOf(p.image);
    return { platform, image, created, document: doc.bytes, packages: doc.document.packages.length, referrer: sbomReferrer({ subject: image, sbom: doc.bytes, created }) };
  });
}

/** SPDX's tool creator form is `name-version`; the builder key holds `ko-annotate/<version>` (docs/image.md#metadata). */
const toolName = (builder: string | undefined): string => (builder ? builder.replace('/', '-') : 'ko-annotate');
