// What is attached to a package's image, on one path (docs/provenance.md#storage): the SPDX
// documents (docs/image.md#sbom) and, with provenance on, the signed SLSA provenance and SBOM
// attestations (docs/provenance.md), all pushed as referrers by one ReferrersPublisher beside
// the image publisher. Content goes up with the image; the referrers tag schema's indexes are
// names, written by `names()` with the tags.
import { createHash } from 'node:crypto';
import type { BuiltPackage } from '../gobuild/builder.js';
import type { Logger } from '../log.js';
import { descriptorOf, imagesOf } from '../oci/image.js';
import { Key, type Descriptor } from '../oci/spec.js';
import { platformSboms, type SbomResult } from '../sbom/referrer.js';
import { slsaPredicate, SLSA_PROVENANCE_V1, SPDX_DOCUMENT_V23, statement, subject, type Statement, type WorkflowClaims } from '../provenance/statement.js';
import { allDone } from '../util.js';
import { bundleReferrer, ReferrersPublisher, writeReferrerBlobs, type PushedReferrer, type Referrer, type ReferrerRepository, type ReferrerVia } from './referrers.js';

/** Signs statements and stores their bundles: the run's Sigstore identity (provenance on). */
export interface Attestor {
  /** The runner's OIDC token's claims, which the predicate states. */
  claims(): Promise<WorkflowClaims>;
  /** `GITHUB_SERVER_URL`, no trailing slash. */
  serverUrl: string;
  /** The Sigstore bundle (its JSON) of one statement. */
  sign(statement: Statement, what: string): Promise<unknown>;
  /** Store a bundle in GitHub's attestations API; its id, or undefined when the API would not take it. */
  store?(bundle: unknown): Promise<string | undefined>;
}

/** One signed statement, as the `provenance` output lists it (README.md#outputs). */
export interface SignedStatement {
  subjects: { name: string; digest: string }[];
  predicateType: string;
  /** `sha256:<hex>` of the bundle bytes stored in the registry. */
  bundle: string;
  /** The referrer manifest's digest. */
  referrer: string;
  attestationId?: string;
}

/** Where attach puts things, and what. */
export interface AttachWhere {
  push: boolean;
  layoutDir?: string;
  sbom: boolean;
  /** docs/fan-out.md: a build leg writes no tag of any kind, fallback indexes included; the merge job lists its referrers. */
  deferTags?: boolean;
}

export interface Attached {
  /** One SPDX referrer per platform image, with `sbom: spdx`. */
  sboms?: SbomResult[];
  /** The signed statements, with provenance on. */
  provenance?: SignedStatement[];
  /** Make every referrer findable where the registry has no referrers API: called with the tags, after all content is up. */
  names(): Promise<void>;
}

export interface AttachDeps {
  logger: Logger;
  /** The push-scoped repository for `host/path`. */
  repository(name: string): ReferrerRepository;
}

/**
 * Attach `built`'s SBOMs and signed statements. `imagesUp` settles once its platform images
 * are in the repository (the SBOMs' subjects), `published` once all of it is (registry and
 * layout; the provenance's subject is the artifact itself). Signing needs only the digests and
 * starts at once; blobs go up at once; each referrer manifest waits for its subject.
 */
export async function attach(
  built: BuiltPackage,
  o: AttachWhere & { attestor?: Attestor },
  deps: AttachDeps,
  published: Promise<unknown> = Promise.resolve(),
  imagesUp: Promise<unknown> = published,
): Promise<Attached> {
  const repository = built.plan.repository;
  const sboms = o.sbom ? platformSboms(built) : [];
  const publisher = o.push ? new ReferrersPublisher(deps.repository(repository)) : undefined;
  const sbomsUp = publisher ? sboms.map((s) => publisher.putContent(s.referrer, imagesUp)) : [];

  const signing = o.attestor
    ? signStatements(
        {
          repository,
          artifact: descriptorOf(built.artifact),
          images: imagesOf(built.artifact).map((i) => descriptorOf(i)),
          created: createdOf(built),
          sboms: sboms.map((s) => ({ platform: s.platform, image: s.image, created: s.created, document: s.document })),
        },
        o.attestor,
      )
    : Promise.resolve([]);
  const artifactDigest = built.artifact.digest;
  // The provenance refers to the artifact (an index goes up last); SBOM attestations to platform images.
  const signedUp = signing.then((signed) => (publisher ? allDone(signed.map((s) => publisher.putContent(s.referrer, s.referrer.subject.digest === artifactDigest ? published : imagesUp))) : []));
  const [sbomPushed, signed, signedPushed] = await allDone([allDone(sbomsUp), signing, signedUp] as const);
  await published;
  if (o.layoutDir) {
    // One at a time: the referrers share the empty config's file.
    for (const r of [...sboms.map((s) => s.referrer), ...signed.map((s) => s.referrer)]) await writeReferrerBlobs(o.layoutDir, r);
  }
  for (const [i, s] of sboms.entries()) {
    const line = `SBOM ${s.platform}: SPDX 2.3, ${s.packages} packages, ${repository}@${s.referrer.digest} refers to ${s.image.digest} (${how(sbomPushed[i], o.deferTags)})`;
    // Pushed but not findable by its subject: say so where a run's warnings are seen.
    if (sbomPushed[i]?.kind === 'unlisted') deps.logger.warning(line);
    else deps.logger.info(line);
  }
  const statements = await recordSigned(repository, signed, publisher ? signedPushed : [], publisher ? o.attestor : undefined, deps.logger);
  const pushed = [...sbomPushed, ...signedPushed];
  // A build leg's referrers that need a fallback index are the merge job's to list.
  const deferred = (p: PushedReferrer | undefined) => (o.deferTags && p?.kind === 'tag' ? { unlisted: { subject: p.referrer.subject.digest, entry: p.referrer.entry } } : {});
  return {
    sboms: o.sbom ? sboms.map((s, i) => ({ platform: s.platform, digest: s.referrer.digest, ...deferred(sbomPushed[i]) })) : undefined,
    provenance: o.attestor ? statements : undefined,
    names: async () => void (publisher && pushed.length && !o.deferTags ? await publisher.putNames(pushed) : undefined),
  };
}

/** What a package's signed statements are about (docs/provenance.md): its artifact, its platform images and their SPDX documents. */
export interface SigningSubjects {
  repository: string;
  /** The published artifact: the index, or the single manifest. */
  artifact: Descriptor;
  /** Every platform manifest (the artifact itself when it is the single manifest). */
  images: readonly Descriptor[];
  /** The artifact's created time (docs/image.md#determinism), which its provenance referrer carries. */
  created: string;
  /** Each platform's SPDX document, as its unsigned referrer holds it, with that image's created time. */
  sboms: readonly { platform: string; image: Descriptor; created: string; document: Buffer }[];
}

/** A signed statement as a referrer of its subject, not yet pushed. */
export interface SignedReferrer {
  statement: Statement;
  what: string;
  referrer: Referrer;
  bundle: unknown;
  /** `sha256:<hex>` of the bundle bytes. */
  bundleDigest: string;
}

/**
 * Sign the SLSA provenance of `s.artifact` (its subjects: the artifact and every platform
 * manifest) and each SPDX document as an attestation about its platform manifest. Needs only
 * digests and documents: nothing has to be in the registry yet.
 */
export async function signStatements(s: SigningSubjects, attestor: Attestor): Promise<SignedReferrer[]> {
  const claims = await attestor.claims();
  const subjects = [subject(s.repository, s.artifact.digest), ...s.images.filter((i) => i.digest !== s.artifact.digest).map((i) => subject(s.repository, i.digest))];
  const wanted: { statement: Statement; what: string; subject: Descriptor; created: string }[] = [
    { statement: statement(subjects, SLSA_PROVENANCE_V1, slsaPredicate(claims, attestor.serverUrl)), what: `the provenance of ${s.repository}@${s.artifact.digest}`, subject: s.artifact, created: s.created },
    // The same document as the unsigned SPDX referrer (docs/provenance.md#what-is-signed).
    ...s.sboms.map((b) => ({
      statement: statement([subject(s.repository, b.image.digest)], SPDX_DOCUMENT_V23, JSON.parse(b.document.toString('utf8'))),
      what: `the SBOM of ${s.repository}@${b.image.digest} (${b.platform})`,
      subject: b.image,
      created: b.created,
    })),
  ];
  return allDone(
    wanted.map(async (w) => {
      const bundle = await attestor.sign(w.statement, w.what);
      const bytes = Buffer.from(JSON.stringify(bundle));
      const referrer = bundleReferrer({ subject: w.subject, bundle: bytes, predicateType: w.statement.predicateType, created: w.created });
      return { statement: w.statement, what: w.what, referrer, bundle, bundleDigest: `sha256:${createHash('sha256').update(bytes).digest('hex')}` };
    }),
  );
}

/**
 * Each signed statement as the `provenance` output lists it, after storing its bundle with
 * `store` (GitHub's attestations API; only what was pushed), with one log line each.
 */
export async function recordSigned(repository: string, signed: readonly SignedReferrer[], pushed: readonly (PushedReferrer | undefined)[], store: Pick<Attestor, 'store'> | undefined, logger: Logger): Promise<SignedStatement[]> {
  const statements: SignedStatement[] = [];
  for (const [i, s] of signed.entries()) {
    const attestationId = store ? await store.store?.(s.bundle) : undefined;
    logger.info(`signed ${s.what} (${s.statement.predicateType}): ${repository}@${s.referrer.digest} (${how(pushed[i])})${attestationId ? `, attestation ${attestationId}` : ''}`);
    statements.push({
      subjects: s.statement.subject.map((x) => ({ name: x.name, digest: `sha256:${x.digest.sha256}` })),
      predicateType: s.statement.predicateType,
      bundle: s.bundleDigest,
      referrer: s.referrer.digest,
      ...(attestationId ? { attestationId } : {}),
    });
  }
  return statements;
}

/** How a referrer is (or will be, once names are written) found from its subject. */
function how(p: PushedReferrer | undefined, deferTags?: boolean): string {
  if (!p) return 'not pushed';
  if (p.kind === 'api') return 'via the referrers API';
  if (deferTags && p.kind === 'tag') return `the merge job lists it in ${p.tag}`;
  if (p.kind === 'unlisted') return `not listed: the registry has no referrers API and answers ${p.tag} with the image itself`;
  return `in the referrers index ${p.tag}${p.index.manifests.some((d) => d.digest === p.referrer.digest) ? ' (already listed)' : ''}`;
}

/** The artifact's created time (docs/image.md#determinism): the index's annotation, else the image's config. */
function createdOf(built: BuiltPackage): string {
  const a = built.artifact;
  const created = (a.kind === 'index' ? a.index.annotations?.[Key.Created] : (a.config.created ?? a.manifest.annotations?.[Key.Created])) ?? imagesOf(a)[0]?.config.created;
  if (!created) throw new Error(`provenance for ${built.plan.repository}@${a.digest}: the image has no created time`);
  return created;
}

export type { ReferrerVia };
