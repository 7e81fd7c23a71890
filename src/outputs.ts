import { formatBytes } from './util.js';
import type { PackageResult, RunResult } from './engine.js';
import { SLSA_PROVENANCE_V1 } from './provenance/statement.js';

/** The `images` output's objects (README.md#outputs). */
export interface ImageOutput {
  package: string;
  repository: string;
  digest: string;
  ref: string;
  tags: string[];
  platforms: { platform: string; digest: string }[];
  sbom?: { platform: string; digest: string }[];
}

/** Every output of README.md#outputs, as the strings the runner will store. */
export function outputsOf(result: RunResult): Record<string, string> {
  const first = result.packages[0];
  const images: ImageOutput[] = result.packages.map((p) => ({
    package: p.package,
    repository: p.repository,
    digest: p.digest,
    ref: p.ref,
    tags: p.tags,
    platforms: p.platforms.map(({ platform, digest }) => ({ platform, digest })),
    ...(p.sboms?.length ? { sbom: p.sboms.map(({ platform, digest }) => ({ platform, digest })) } : {}),
  }));
  const tags = result.packages.flatMap((p) => p.tags.map((t) => `${p.repository}:${t}`));
  // docs/provenance.md#outputs: every signed statement of every package.
  const provenance = result.packages.flatMap((p) => p.provenance ?? []);
  const labels = lines(first.labels);
  const annotations = lines(first.annotations);
  const metadata = {
    digest: first.digest,
    image: first.ref,
    images,
    tags,
    version: result.version,
    labels: first.labels,
    annotations: first.annotations,
    pushed: result.pushed,
    provenance,
  };
  return {
    digest: first.digest,
    image: first.ref,
    images: JSON.stringify(images),
    tags: tags.join('\n'),
    version: result.version,
    labels,
    annotations,
    metadata: JSON.stringify(metadata),
    provenance: JSON.stringify(provenance),
  };
}

const lines = (r: Record<string, string>) =>
  Object.keys(r)
    .sort()
    .map((k) => `${k}=${r[k]}`)
    .join('\n');

/** The job summary: one table per image, then a pull command (README.md#outputs). */
export function summaryMarkdown(result: RunResult): string {
  const out: string[] = [`## ko-annotate ${result.pushed ? 'published' : 'built (not pushed)'} ${result.packages.length === 1 ? 'one image' : `${result.packages.length} images`}`, ''];
  for (const p of result.packages) out.push(...packageSummary(p, result.pushed, result.owner), '');
  return out.join('\n');
}

function packageSummary(p: PackageResult, pushed: boolean, owner: string | undefined): string[] {
  const rows = [
    `### \`${p.repository}\``,
    '',
    '| | |',
    '|---|---|',
    `| Reference | \`${p.ref}\` |`,
    `| Tags | ${p.tags.map((t) => `\`${t}\``).join(' ') || '(none)'} |`,
    `| Package | \`${p.package}\` (${p.goVersion}) |`,
    `| Base | ${p.base ? `\`${p.base.name}\` @ \`${p.base.digest}\`` : '`scratch`'} |`,
    ...(p.provenance?.length ? [`| Provenance | signed: ${provenanceKinds(p)} (Sigstore), attached as referrers |`] : []),
    '',
    '| Platform | Digest | Compressed size |',
    '|---|---|---:|',
    ...p.platforms.map((x) => `| ${x.platform} | \`${x.digest}\` | ${formatBytes(x.size)} |`),
    '',
  ];
  if (pushed) rows.push('```sh', `docker pull ${p.ref}`, '```');
  // docs/provenance.md#verifying
  if (pushed && p.provenance?.length) rows.push('', 'Verify its provenance:', '', '```sh', `gh attestation verify oci://${p.ref}${owner ? ` --owner ${owner}` : ''}`, '```');
  return rows;
}

/** `SLSA v1 provenance, 2 SBOM attestations` */
function provenanceKinds(p: PackageResult): string {
  const slsa = p.provenance!.filter((s) => s.predicateType === SLSA_PROVENANCE_V1).length;
  const spdx = p.provenance!.length - slsa;
  return [slsa ? 'SLSA v1 provenance' : '', spdx ? `${spdx} SBOM attestation${spdx === 1 ? '' : 's'}` : ''].filter(Boolean).join(', ');
}

