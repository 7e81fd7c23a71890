// docs/fan-out.md: a build leg publishes its platform manifests by digest only — no index, no
// tag of any kind — and hands their descriptors to the merge job.
import type { BuiltPackage } from '../gobuild/builder.js';
import { imagesOf, indexEntry } from '../oci/image.js';
import { formatPlatform } from '../oci/platform.js';
import type { Publisher } from '../publish/publisher.js';
import type { SbomResult } from '../sbom/referrer.js';
import { HANDOFF_SCHEMA, packageSetId, type LegHandoff, type RunIdentity } from './handoff.js';

/**
 * Put a leg's platform images into the repository, each by digest; the index a one-job build
 * would put over them is the merge job's to write. `imagesUp` once they are all there.
 */
export async function putLegContent(target: Publisher, b: BuiltPackage, named: ReadonlyMap<string, string> | undefined, imagesUp: () => void): Promise<void> {
  // One after another: platforms of one package share their kodata layer, and a blob is best
  // sent once (a leg usually builds one platform).
  for (const image of imagesOf(b.artifact)) await target.putContent(image, named);
  imagesUp();
}

/** The compressed size of a built platform image: manifest, config and layers. */
export const compressedSize = (p: BuiltPackage['platforms'][number]): number =>
  p.image.size + p.image.manifest.config.size + p.image.layers.reduce((n, l) => n + l.size, 0);

/** One handoff document per platform the leg built, over every package it built. */
export function legHandoffs(built: readonly BuiltPackage[], sboms: readonly (readonly SbomResult[] | undefined)[], run: RunIdentity, revision: string): LegHandoff[] {
  const packageSet = packageSetId(built.map((b) => ({ package: b.plan.pkg.importPath, repository: b.plan.repository })));
  const platforms = built[0].platforms.map((p) => formatPlatform(p.platform));
  return platforms.map((platform) => ({
    schema: HANDOFF_SCHEMA,
    packageSet,
    platform,
    revision,
    runId: run.runId,
    runAttempt: run.runAttempt,
    job: run.job,
    images: built.map((b, i) => {
      const p = b.platforms.find((x) => formatPlatform(x.platform) === platform)!;
      const sbom = sboms[i]?.find((s) => s.platform === platform);
      const unlisted = sbom?.unlisted;
      return {
        package: b.plan.pkg.importPath,
        repository: b.plan.repository,
        goVersion: p.buildInfo.goVersion,
        family: p.image.family,
        manifest: indexEntry(p.image),
        compressedSize: compressedSize(p),
        ...(sbom ? { sbom: sbom.digest } : {}),
        ...(unlisted ? { unlistedSbom: unlisted } : {}),
      };
    }),
  }));
}
