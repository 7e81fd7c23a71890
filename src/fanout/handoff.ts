// docs/fan-out.md#handoff: what a build leg hands the merge job, and how it travels — one small
// JSON file per package set and platform, uploaded as a workflow-run artifact with the Actions
// toolkit's artifact client (what actions/upload-artifact uses).
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import type { ArtifactClient } from '@actions/artifact';
import { loadApart } from '../apart.js';
import { sha256 } from '../oci/digest.js';
import type { Descriptor, MediaFamily } from '../oci/spec.js';

/** The handoff document's `schema`; a merge refuses any other. */
export const HANDOFF_SCHEMA = 'ko-annotate/fan-out-leg/v1';

/** One package's part of a leg's handoff: what the merge job needs to write the index byte for byte as one job would. */
export interface LegImage {
  /** The import path. */
  package: string;
  repository: string;
  /** The Go that built the binary: the index's go.version annotation (docs/image.md#metadata). */
  goVersion: string;
  family: MediaFamily;
  /** The platform manifest as an index entry: mediaType, digest, size, platform, in that order. */
  manifest: Descriptor;
  /** Manifest, config and layers, compressed: the step summary's size (README.md#outputs). */
  compressedSize: number;
  /** The digest of the SBOM referrer the leg pushed for this manifest (docs/image.md#sbom), for the merge's outputs. */
  sbom?: string;
  /**
   * The SBOM referrer the leg pushed, when the registry has no referrers API: the merge job adds
   * it to the subject's `sha256-<hex>` fallback index, a tag, which a leg never writes.
   */
  unlistedSbom?: { subject: string; entry: Descriptor };
}

/** The document a leg uploads, one per package set and platform. */
export interface LegHandoff {
  schema: typeof HANDOFF_SCHEMA;
  packageSet: string;
  platform: string;
  /** docs/image.md#metadata's revision: GITHUB_SHA, or the pull request's head. */
  revision: string;
  runId: string;
  runAttempt: number;
  job: string;
  images: LegImage[];
}

/** The run a job belongs to, from the runner's environment. */
export interface RunIdentity {
  runId: string;
  runAttempt: number;
  job: string;
}

/**
 * The run this job belongs to, and a check that the artifact service is there: the legs and the
 * merge job meet through it, in one workflow run on GitHub.com or GHE.com (the toolkit's client
 * refuses GitHub Enterprise Server, which has no such service).
 */
export function runIdentity(env: Record<string, string | undefined>): RunIdentity {
  const runId = env.GITHUB_RUN_ID?.trim();
  if (!runId) throw new Error('fan-out needs GITHUB_RUN_ID: the legs and the merge job meet in one GitHub Actions workflow run');
  for (const name of ['ACTIONS_RUNTIME_TOKEN', 'ACTIONS_RESULTS_URL']) {
    if (!env[name]?.trim()) throw new Error(`fan-out needs the runner's artifact service, and ${name} is not set: it runs in a GitHub Actions job only`);
  }
  const server = new URL(env.GITHUB_SERVER_URL?.trim() || 'https://github.com').hostname.toLowerCase();
  if (server !== 'github.com' && !server.endsWith('.ghe.com') && !server.endsWith('.localhost')) {
    throw new Error(`fan-out hands over through GitHub's artifact service, which ${server} (GitHub Enterprise Server) does not offer to @actions/artifact; build every platform in one job (fan-out: off)`);
  }
  const attempt = Number(env.GITHUB_RUN_ATTEMPT?.trim() || '1');
  if (!Number.isInteger(attempt) || attempt < 1) throw new Error(`fan-out: GITHUB_RUN_ATTEMPT ${JSON.stringify(env.GITHUB_RUN_ATTEMPT)} is not a run attempt`);
  return { runId, runAttempt: attempt, job: env.GITHUB_JOB?.trim() || '' };
}

/**
 * The package set's id: the import paths and their repositories, in order. Both sides compute it
 * after `go list`, so a leg and its merge agree on it whatever spelling `packages` used.
 */
export function packageSetId(packages: readonly { package: string; repository: string }[]): string {
  return sha256(Buffer.from(JSON.stringify(packages.map((p) => [p.package, p.repository])))).slice('sha256:'.length, 'sha256:'.length + 12);
}

const PREFIX = 'ko-annotate-fan-out';

/**
 * The artifact's name: per package set and platform, and per run attempt. Artifact names are
 * immutable for the whole workflow run, across attempts (a second upload of a name is refused
 * with 409 Conflict, and the earlier attempt's artifact stays listed), so a re-run leg uploads
 * under its own attempt's name and the merge takes the newest attempt of each platform.
 */
export function artifactName(packageSet: string, platform: string, attempt: number): string {
  return `${PREFIX}-${packageSet}-${platform.replaceAll('/', '-')}-attempt-${attempt}.json`;
}

/** What artifactName encoded, for the names of `packageSet`; undefined for any other name. */
export function parseArtifactName(name: string, packageSet: string): { platformSlug: string; attempt: number } | undefined {
  const m = new RegExp(`^${PREFIX}-${packageSet}-([a-z0-9_-]+)-attempt-(\\d+)\\.json$`).exec(name);
  return m ? { platformSlug: m[1], attempt: Number(m[2]) } : undefined;
}

/** Artifacts of this workflow run, as the toolkit's artifact client lists them. */
export interface ListedArtifact {
  id: number;
  name: string;
}

/** The small part of the artifact client fan-out uses; tests pass the real client against a stand-in service. */
export interface ArtifactStore {
  /** Upload `file` as an artifact named after the file. */
  upload(file: string): Promise<void>;
  /** This run's artifacts, the latest of each name. */
  list(): Promise<ListedArtifact[]>;
  /** Download artifact `id` (one file) into `dir`. */
  download(id: number, dir: string): Promise<void>;
}

/**
 * The toolkit's artifact client (`@actions/artifact`), loaded only by fan-out jobs: it brings the
 * Azure blob client, which no other run needs. It reads ACTIONS_RUNTIME_TOKEN and
 * ACTIONS_RESULTS_URL, which the runner gives every step.
 */
export function toolkitArtifactStore(): ArtifactStore {
  let loaded: Promise<ArtifactClient> | undefined;
  const client = () => (loaded ??= loadArtifactClient());
  return {
    async upload(file) {
      // skipArchive: the document goes up as the one file it is, not as a zip, named after it.
      await (await client()).uploadArtifact(basename(file), [file], dirname(file), { skipArchive: true });
    },
    async list() {
      const { artifacts } = await (await client()).listArtifacts({ latest: true });
      return artifacts.map((a) => ({ id: a.id, name: a.name }));
    },
    async download(id, dir) {
      await (await client()).downloadArtifact(id, { path: dir });
    },
  };
}

/** The toolkit's artifact client, a bundle of its own (src/apart.ts). */
async function loadArtifactClient(): Promise<ArtifactClient> {
  const m = await loadApart<typeof import('@actions/artifact')>('artifact', () => import(/* webpackIgnore: true */ '@actions/artifact'));
  return new m.DefaultArtifactClient();
}

/** Upload a leg's handoff documents, one per platform. */
export async function uploadHandoffs(store: ArtifactStore, handoffs: readonly LegHandoff[], tmpRoot = tmpdir()): Promise<string[]> {
  const dir = await mkdtemp(join(tmpRoot, 'ko-annotate-handoff-'));
  try {
    const names: string[] = [];
    for (const h of handoffs) {
      const name = artifactName(h.packageSet, h.platform, h.runAttempt);
      const file = join(dir, name);
      await writeFile(file, `${JSON.stringify(h, null, 2)}\n`);
      try {
        await store.upload(file);
      } catch (err) {
        const why = (err as Error).message;
        const conflict = /\(409\)|already exists/i.test(why)
          ? `: another job of run attempt ${h.runAttempt} already handed over ${h.platform} for these packages; give each matrix leg its own platforms`
          : '';
        throw new Error(`fan-out: could not hand ${h.platform} over to the merge job (artifact ${name})${conflict}: ${why}`, { cause: err });
      }
      names.push(name);
    }
    return names;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Download the artifact `a` and read its handoff document. */
export async function downloadHandoff(store: ArtifactStore, a: ListedArtifact, tmpRoot = tmpdir()): Promise<unknown> {
  const dir = await mkdtemp(join(tmpRoot, 'ko-annotate-handoff-'));
  try {
    await store.download(a.id, dir);
    const files = await readdir(dir);
    if (files.length !== 1) throw new Error(`fan-out: artifact ${a.name} should hold one file, not ${files.length}`);
    return JSON.parse(await readFile(join(dir, files[0]), 'utf8')) as unknown;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
