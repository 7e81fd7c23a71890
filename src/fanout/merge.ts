// docs/fan-out.md#what-the-merge-checks: the merge job builds nothing. It collects this run's leg handoffs, checks
// them against its own plan (platforms, revision, packages, the manifests in the repository), and
// only then writes the index — the same bytes one `fan-out: off` job writes — its signed
// provenance and SBOM attestations (docs/provenance.md), the referrers' fallback tags, and the
// tags, tags last.
import { familyOfPlan, indexAnnotations, packageKeys, type BuiltPackage, type PackagePlan } from '../gobuild/builder.js';
import { inheritedLabels } from '../gobuild/assemble.js';
import type { EngineDeps, PackageResult, RunRequest, RunResult } from '../engine.js';
import { descriptorOf, indexOfEntries, type ImageIndex } from '../oci/image.js';
import { compact, sortedRecord } from '../oci/json.js';
import { formatPlatform } from '../oci/platform.js';
import type { Descriptor, Platform } from '../oci/spec.js';
import type { Repository } from '../registry/repository.js';
import { Key, MediaType } from '../oci/spec.js';
import { recordSigned, signStatements, type Attestor, type SignedStatement, type SigningSubjects } from '../publish/attachments.js';
import { listReferrer, ReferrersPublisher } from '../publish/referrers.js';
import type { Logger } from '../log.js';
import { allDone, mapLimit } from '../util.js';
import {
  downloadHandoff,
  HANDOFF_SCHEMA,
  packageSetId,
  parseArtifactName,
  type ArtifactStore,
  type LegHandoff,
  type LegImage,
  type ListedArtifact,
  type RunIdentity,
} from './handoff.js';

/** What fan-out needs besides the engine's dependencies. */
export interface FanOutDeps {
  artifacts: ArtifactStore;
  /** The push-scoped repository `host/path`, on the publishing side's registry client. */
  repository(name: string): Repository;
  /** The run's Sigstore identity when provenance is on (docs/provenance.md); asked only by a merge that pushes. */
  attestor?(): Attestor | undefined;
}

/** A leg's handoff as the merge chose it: the newest attempt of its platform. */
interface Leg {
  platform: string;
  artifact: ListedArtifact;
  attempt: number;
  handoff: LegHandoff;
}

/** The merge job's run (engine.ts hands over once the packages are planned; nothing is built). */
export async function runMerge(req: RunRequest, deps: EngineDeps, plans: readonly PackagePlan[], run: RunIdentity): Promise<RunResult> {
  const fanOut = deps.fanOut;
  if (!fanOut) throw new Error('fan-out: merge needs the artifact service of a GitHub Actions run');
  const expected = (req.inputs.platforms as Platform[]).map(formatPlatform);
  const legs = await collectLegs(req, run, fanOut.artifacts, plans, expected, deps.tmpRoot);
  if (req.push) await checkManifests(plans, legs, fanOut);
  deps.logger.info(
    `fan-out merge: ${legs.length} legs of run ${run.runId} checked: the platforms of input "platforms", revision ${req.provenance.revision}, the same packages` +
      (req.push ? ', every platform manifest in its repository' : ' (push is off: the repository is not read)'),
  );

  const indexes = plans.map((plan, i) => mergedIndex(req, plan, legs.map((l) => l.handoff.images[i])));
  for (const [i, index] of indexes.entries()) {
    deps.logger.info(`${plans[i].repository}@${index.digest}: the index of ${legs.map((l) => `${l.platform} (attempt ${l.attempt})`).join(', ')}`);
  }
  const targets = req.push ? plans.map((p) => deps.registryTarget(p.repository)) : [];
  const listTags = req.push && req.tagsFollowExisting !== false;
  const tags = await Promise.all(targets.length ? targets.map(async (t) => req.tagsFor(listTags ? await t.listTags() : undefined)) : plans.map(() => req.tagsFor(undefined)));
  let provenance: (SignedStatement[] | undefined)[] = [];
  if (req.push) {
    // docs/provenance.md: the merge job publishes the index, so it signs, as one job does: the
    // provenance of each merged index (its subjects: the index and every leg's platform
    // manifest) and, with sbom: spdx, each platform's SPDX document as the legs pushed it.
    // Signing needs only digests and documents, and starts while the indexes go up.
    const attestor = fanOut.attestor?.();
    const signing = plans.map((p, i) => (attestor ? signMerged(req, p, indexes[i], legs, i, fanOut, attestor) : Promise.resolve(undefined)));
    // Content first: each index by digest (its manifests were checked above), then the signed
    // referrers; then the names: the referrers' fallback indexes (the legs leave their SBOMs'
    // to the merge, as a leg writes no tag) and the tags.
    const [, signed] = await allDone([
      (async () => {
        for (const [i, p] of plans.entries()) await deps.logger.group(`Publish ${p.repository}@${indexes[i].digest}`, () => targets[i].putContent(indexes[i]));
      })(),
      allDone(signing),
    ] as const);
    const attached = await allDone(signed.map((s, i) => (s ? pushSigned(plans[i].repository, s, fanOut, attestor!, deps.logger) : Promise.resolve(undefined))));
    provenance = attached.map((a) => a?.statements);
    // Every statement is signed and up before any tag, fallback tags included. The signed
    // referrers' fallback indexes first: listSboms reads each index afresh and adds to it.
    await allDone(attached.map((a) => a?.names() ?? Promise.resolve()));
    await listSboms(plans, legs, fanOut, deps);
    await allDone(plans.map((_, i) => targets[i].putTags(indexes[i], tags[i])));
  }
  const packages = plans.map((plan, i) => ({ ...toResult(req, plan, indexes[i], tags[i], legs, i), ...(provenance[i] ? { provenance: provenance[i] } : {}) }));
  return { version: req.provenance.version, pushed: req.push, packages };
}

/** What one package's merged index is signed over: the index, the legs' platform manifests and, with sbom: spdx, their SPDX documents. */
async function signMerged(req: RunRequest, plan: PackagePlan, index: ImageIndex, legs: readonly Leg[], i: number, fanOut: FanOutDeps, attestor: Attestor) {
  const created = index.index.annotations?.[Key.Created];
  if (!created) throw new Error(`provenance for ${plan.repository}@${index.digest}: the index has no created time`);
  const images = legs.map((l) => l.handoff.images[i]);
  const repo = fanOut.repository(plan.repository);
  const sboms = req.inputs.sbom === 'spdx' ? await mapLimit(legs, 4, (l) => legSbom(repo, l.platform, l.handoff.images[i])) : [];
  const subjects: SigningSubjects = {
    repository: plan.repository,
    artifact: descriptorOf(index),
    images: images.map((img) => img.manifest),
    created,
    sboms,
  };
  return signStatements(subjects, attestor);
}

/**
 * A leg's SPDX document, read back from the registry through the SBOM referrer the leg handed
 * over: the document its unsigned referrer holds is the one signed (docs/provenance.md#sbom-attestations),
 * and its created time is the image's (the referrer's annotation).
 */
async function legSbom(repo: Repository, platform: string, img: LegImage): Promise<SigningSubjects['sboms'][number]> {
  const where = `the SBOM of ${img.repository}@${img.manifest.digest} (${platform})`;
  if (!img.sbom) throw new Error(`fan-out merge: ${platform}: the leg handed over no SBOM for ${img.package}; does it run with sbom: spdx as the merge job does?`);
  const raw = await repo.getManifest(img.sbom);
  const m = JSON.parse(raw.bytes.toString('utf8')) as { artifactType?: string; subject?: { digest?: string }; layers?: { mediaType: string; digest: string }[]; annotations?: Record<string, string> };
  const layer = m.layers?.[0];
  if (raw.digest !== img.sbom || m.artifactType !== MediaType.SpdxJson || m.subject?.digest !== img.manifest.digest || m.layers?.length !== 1 || layer?.mediaType !== MediaType.SpdxJson) {
    throw new Error(`fan-out merge: ${where}: ${img.repository}@${img.sbom} is not the SPDX referrer of that manifest`);
  }
  const created = m.annotations?.[Key.Created];
  if (!created) throw new Error(`fan-out merge: ${where}: its referrer has no ${Key.Created}`);
  // getBlob checks the bytes against the digest.
  const document = Buffer.concat(await (await repo.getBlob(layer.digest)).toArray());
  return { platform, image: { mediaType: img.manifest.mediaType, digest: img.manifest.digest, size: img.manifest.size }, created, document };
}

/** Push a package's signed referrers (their subjects are all up), store the bundles in GitHub's attestations API, log each. */
async function pushSigned(repository: string, signed: Awaited<ReturnType<typeof signStatements>>, fanOut: FanOutDeps, attestor: Attestor, logger: Logger) {
  const publisher = new ReferrersPublisher(fanOut.repository(repository));
  const pushed = await allDone(signed.map((s) => publisher.putContent(s.referrer)));
  const statements = await recordSigned(repository, signed, pushed, attestor, logger);
  return { statements, names: async () => void (await publisher.putNames(pushed)) };
}


/**
 * This run's handoffs for the plan's package set, the newest attempt of each platform, checked
 * against the merge job's own inputs. Every problem is reported at once, each naming its
 * platform; any problem fails the merge before anything is written.
 */
async function collectLegs(req: RunRequest, run: RunIdentity, store: ArtifactStore, plans: readonly PackagePlan[], expected: readonly string[], tmpRoot?: string): Promise<Leg[]> {
  const packages = plans.map((p) => ({ package: p.pkg.importPath, repository: p.repository }));
  const set = packageSetId(packages);
  const listed = await store.list();
  const newest = new Map<string, { artifact: ListedArtifact; attempt: number }>();
  for (const artifact of listed) {
    const n = parseArtifactName(artifact.name, set);
    if (!n) continue;
    const had = newest.get(n.platformSlug);
    if (!had || had.attempt < n.attempt) newest.set(n.platformSlug, { artifact, attempt: n.attempt });
  }
  const slug = (p: string) => p.replaceAll('/', '-');
  const problems: string[] = [];
  const describeSet = packages.map((p) => p.package).join(', ');
  for (const platform of expected) {
    if (newest.has(slug(platform))) continue;
    const others = listed.filter((a) => a.name.startsWith('ko-annotate-fan-out-') && !parseArtifactName(a.name, set));
    problems.push(
      `${platform}: no build leg of this workflow run handed it over for ${describeSet}` +
        (others.length ? ` (this run has handoffs of other package sets: ${others.map((a) => a.name).join(', ')}; do the legs build the same packages and repository?)` : ''),
    );
  }
  const chosen = [...newest.entries()];
  const handoffs = await mapLimit(chosen, 4, async ([, c]) => downloadHandoff(store, c.artifact, tmpRoot));
  const legs = new Map<string, Leg>();
  for (const [k, [s, c]] of chosen.entries()) {
    const h = handoffs[k] as Partial<LegHandoff>;
    const where = `${h.platform ?? s} (artifact ${c.artifact.name})`;
    if (h.schema !== HANDOFF_SCHEMA) {
      problems.push(`${where}: not a handoff this version reads (schema ${JSON.stringify(h.schema)}, expected ${HANDOFF_SCHEMA})`);
      continue;
    }
    const leg: Leg = { platform: h.platform!, artifact: c.artifact, attempt: c.attempt, handoff: h as LegHandoff };
    const job = `the leg (job ${h.job || '?'}, attempt ${c.attempt})`;
    if (slug(leg.platform) !== s) problems.push(`${where}: the document is for ${leg.platform}`);
    else if (!expected.includes(leg.platform)) problems.push(`${leg.platform}: ${job} built it, but input "platforms" (${expected.join(',')}) does not list it`);
    if (h.runId !== run.runId) problems.push(`${where}: ${job} belongs to run ${h.runId}, not this run ${run.runId}`);
    if (h.revision !== req.provenance.revision) problems.push(`${leg.platform}: ${job} built revision ${h.revision}; this merge job is at ${req.provenance.revision}`);
    const theirs = (h.images ?? []).map((i) => `${i.package} → ${i.repository}`).join(', ');
    const ours = packages.map((p) => `${p.package} → ${p.repository}`).join(', ');
    if (theirs !== ours) problems.push(`${leg.platform}: ${job} built ${theirs || 'nothing'}; this merge job expects ${ours}`);
    else {
      for (const [i, img] of (h.images ?? []).entries()) {
        const got = img.manifest?.platform ? formatPlatform(img.manifest.platform) : 'no platform';
        if (got !== leg.platform) problems.push(`${leg.platform}: ${job} handed over a manifest of ${img.package} for ${got}`);
        const family = familyOfPlan(plans[i]);
        if (img.family !== family) problems.push(`${leg.platform}: ${job} made ${img.family} manifests of ${img.package}; the base image gives ${family}`);
      }
    }
    legs.set(leg.platform, leg);
  }
  if (problems.length) {
    throw new Error(`fan-out merge: ${problems.length === 1 ? 'the legs do not add up' : `${problems.length} problems with the legs`}; nothing was published or tagged:\n${problems.map((p) => `  ${p}`).join('\n')}`);
  }
  // The index lists the platforms in the order `platforms` gives them (docs/image.md#platforms).
  return expected.map((p) => legs.get(p)!);
}

/** docs/fan-out.md#what-the-merge-checks: every leg's platform manifest is in its repository, as the leg described it. */
async function checkManifests(plans: readonly PackagePlan[], legs: readonly Leg[], fanOut: FanOutDeps): Promise<void> {
  const checks = legs.flatMap((leg) => leg.handoff.images.map((img, i) => ({ leg, img, repo: fanOut.repository(plans[i].repository) })));
  const found = await mapLimit(checks, 4, ({ img, repo }) => repo.headManifest(img.manifest.digest));
  const problems = checks.flatMap(({ leg, img }, k) => {
    const d = found[k];
    const ref = `${img.repository}@${img.manifest.digest}`;
    if (!d) return [`${leg.platform}: ${ref} is not in the repository (job ${leg.handoff.job || '?'}, attempt ${leg.attempt} handed it over; did its push finish?)`];
    if (d.size !== img.manifest.size || d.mediaType !== img.manifest.mediaType) return [`${leg.platform}: ${ref} is ${d.mediaType}, ${d.size} bytes; the leg described ${img.manifest.mediaType}, ${img.manifest.size} bytes`];
    return [];
  });
  if (problems.length) throw new Error(`fan-out merge: ${problems.length === 1 ? 'a platform manifest is missing' : `${problems.length} platform manifests are missing`}; nothing was published or tagged:\n${problems.map((p) => `  ${p}`).join('\n')}`);
}

/** The entry as indexEntry makes it, field by field in its order: the bytes must be one job's. */
const entryOf = (d: Descriptor): Descriptor => ({
  mediaType: d.mediaType,
  digest: d.digest,
  size: d.size,
  platform: compact({ os: d.platform!.os, architecture: d.platform!.architecture, variant: d.platform!.variant || undefined }),
});

/** One package's index over the legs' manifests, with the annotations a one-job build gives it. */
function mergedIndex(req: RunRequest, plan: PackagePlan, images: readonly LegImage[]): ImageIndex {
  // A one-job build's go.version is its first platform's build (gobuild/builder.ts).
  const annotations = indexAnnotations(plan, req.provenance, images[0].goVersion);
  return indexOfEntries(familyOfPlan(plan), images.map((i) => entryOf(i.manifest)), annotations);
}

/** The legs' SBOMs whose fallback tag they left to the merge (docs/image.md#sbom). */
async function listSboms(plans: readonly PackagePlan[], legs: readonly Leg[], fanOut: FanOutDeps, deps: EngineDeps): Promise<void> {
  const pending = legs.flatMap((leg) => leg.handoff.images.flatMap((img, i) => (img.unlistedSbom ? [{ leg, sbom: img.unlistedSbom, repo: fanOut.repository(plans[i].repository), name: plans[i].repository }] : [])));
  // One at a time: platforms never share a subject, but the fallback index is read, changed and written back.
  for (const p of pending) {
    const via = await listReferrer(p.repo, p.sbom.subject, p.sbom.entry);
    const how = via.kind === 'api' ? 'via the referrers API' : via.kind === 'tag' ? `in the referrers index ${via.tag}${via.added ? '' : ' (already listed)'}` : `not listed: the registry answers ${via.kind === 'unlisted' ? via.tag : ''} with the image itself`;
    const line = `SBOM ${p.leg.platform}: ${p.name}@${p.sbom.entry.digest} refers to ${p.sbom.subject} (${how})`;
    if (via.kind === 'unlisted') deps.logger.warning(line);
    else deps.logger.info(line);
  }
}

function toResult(req: RunRequest, plan: PackagePlan, index: ImageIndex, tags: string[], legs: readonly Leg[], i: number): PackageResult {
  const first = legs[0].handoff.images[i];
  const base = plan.base;
  // The labels the legs wrote to each config (gobuild/assemble.ts): the base's own, less its
  // org.opencontainers.image.* keys, then the metadata keys and the user's labels.
  const baseLabels = base === 'scratch' ? {} : inheritedLabels(base.images[0]?.config.config?.Labels);
  const keys = packageKeys(plan, req.provenance, first.goVersion);
  const built: BuiltPackage = { plan, artifact: index, platforms: [], goVersion: first.goVersion };
  return {
    package: plan.pkg.importPath,
    repository: plan.repository,
    artifact: index,
    digest: index.digest,
    ref: `${plan.repository}@${index.digest}`,
    tags,
    platforms: legs.map((l) => ({ platform: l.platform, digest: l.handoff.images[i].manifest.digest, size: l.handoff.images[i].compressedSize })),
    base: base === 'scratch' ? undefined : { name: base.name, digest: base.digest },
    labels: sortedRecord({ ...baseLabels, ...keys, ...plan.labels }) ?? {},
    annotations: index.index.annotations ?? {},
    goVersion: first.goVersion,
    built,
    // The legs' SBOMs, as a one-job build reports its own (README.md#outputs).
    sboms: legs.every((l) => l.handoff.images[i].sbom) ? legs.map((l) => ({ platform: l.platform, digest: l.handoff.images[i].sbom! })) : undefined,
  };
}
