// docs/fan-out.md end to end: build legs and the merge job as separate runs of dist/index.js
// under the runner protocol (one workflow run id, each job its own job id and runtime token),
// pushing to the token-auth registry, handing over through the real @actions/artifact client
// talking to a loopback stand-in of the artifact service (support/artifact-service.ts). The
// results are read back with skopeo, crane and our validator, and the amd64 image is run.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { MemoryLogger } from '../src/log.js';
import { validateStored } from '../src/oci/validate.js';
import { Registry } from '../src/registry/client.js';
import type { Index } from '../src/oci/spec.js';
import { startArtifactService, type ArtifactService } from './support/artifact-service.js';
import { pushBaseImage, umociUnpack, type PushedBase } from './support/base-images.js';
import { repoRoot } from './support/engine.js';
import { loadEvent } from './support/events.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { createWorkspace, fakeSha, runAction, type ActionRun, type Workspace } from './support/runner.js';
import { claimsOfEnv, startSigstore, type TestSigstore } from './support/sigstore.js';

const exec = promisify(execFile);

const EVENT = 'push-tag-v1.2.3';
const TAGS = ['1', '1.2', '1.2.3', 'latest'];
const PLATFORMS = ['linux/amd64', 'linux/arm64'];

let registry: TestRegistry;
let base: PushedBase;
let workspace: Workspace;
let service: ArtifactService;
let client: Registry;
let crane: string;

beforeAll(async () => {
  [registry, service, workspace] = await Promise.all([startRegistry({ auth: 'token' }), startArtifactService(), createWorkspace()]);
  base = await pushBaseImage(registry, 'oci-index');
  client = new Registry(registry.host, { credentials: async () => ({ username: registry.username, password: registry.password }), logger: new MemoryLogger() });
  crane = await findCrane();
}, 600_000);

afterAll(async () => {
  await Promise.all([registry?.stop(), service?.stop(), workspace?.cleanup()]);
});

/** crane from PATH, else the one `npm run bench` builds (bench/install.sh, Debian's source package). */
async function findCrane(): Promise<string> {
  const onPath = await exec('sh', ['-c', 'command -v crane']).then((r) => r.stdout.trim(), () => '');
  if (onPath) return onPath;
  const built = join(repoRoot, '.tmp', 'bench', 'crane');
  if (!existsSync(built)) await exec('bash', [join(repoRoot, 'bench', 'install.sh'), built], { timeout: 540_000 });
  return built;
}

interface Job {
  /** The workflow run: GITHUB_RUN_ID, and the run's backend id in the runtime token. */
  run: string;
  /** The job's backend id in its runtime token (each job, and each attempt of it, its own). */
  job: string;
  attempt?: number;
  inputs: Record<string, string>;
  /** Another commit than the event's (a leg of another revision). */
  sha?: string;
  /** More of the runner's environment (the OIDC token endpoint, GITHUB_API_URL). */
  env?: Record<string, string | undefined>;
}

/** One job's step: dist/index.js under the runner, with the job's artifact-service token. */
async function runJob(j: Job): Promise<ActionRun> {
  const recorded = loadEvent(EVENT);
  const event = { env: { ...recorded.env, ...(j.sha ? { GITHUB_SHA: j.sha, GITHUB_WORKFLOW_SHA: j.sha } : {}) }, payload: recorded.payload };
  return runAction({
    event,
    registry,
    workspace: workspace.dir,
    inputs: { 'base-image': base.reference, packages: './cmd/hello', username: registry.username, ...j.inputs },
    extraEnv: {
      ...service.envFor(`run-${j.run}`, j.job),
      GITHUB_RUN_ID: j.run,
      GITHUB_RUN_ATTEMPT: String(j.attempt ?? 1),
      GITHUB_JOB: j.job.replace(/-attempt-\d+$/, ''),
      ...j.env,
    },
  });
}

const leg = (run: string, platform: string, repo: string, over: Partial<Job> = {}) =>
  runJob({ run, job: `build-${platform.split('/')[1]}${over.attempt && over.attempt > 1 ? `-attempt-${over.attempt}` : ''}`, ...over, inputs: { repository: repo, 'fan-out': 'build', platforms: platform, ...over.inputs } });
const merge = (run: string, repo: string, over: Partial<Job> = {}) =>
  runJob({ run, job: `merge${over.attempt && over.attempt > 1 ? `-attempt-${over.attempt}` : ''}`, ...over, inputs: { repository: repo, 'fan-out': 'merge', platforms: PLATFORMS.join(','), ...over.inputs } });

const describeRun = (r: ActionRun) => `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
function ok(r: ActionRun): ActionRun {
  if (r.code !== 0) throw new Error(`the job failed: ${describeRun(r)}`);
  return r;
}
function failed(r: ActionRun): string {
  if (r.code === 0) throw new Error(`the job should have failed: ${describeRun(r)}`);
  return r.stdout.split('\n').filter((l) => l.startsWith('::error')).join('\n');
}

const path = (repo: string) => repo.slice(registry.host.length + 1);
const tagsOf = (repo: string) => client.repository(path(repo)).listTags();
const images = (r: ActionRun) => JSON.parse(r.outputs.images) as { digest: string; tags: string[]; platforms: { platform: string; digest: string }[]; sbom?: { platform: string; digest: string }[] }[];

describe('fan-out across jobs (docs/fan-out.md)', () => {
  const RUN = '7100000001';
  const repo = () => `${registry.host}/octo-org/fan-out`;
  // User annotations of both levels and labels: a leg's one-platform manifest must be made as an
  // index entry (no index-level annotations on it), or the merged index would differ from one job's.
  const inputs = { annotations: 'index:org.example.index-only=yes\nmanifest:org.example.level=manifest\norg.example.both=yes', labels: 'org.example.team=images' };
  let legs: ActionRun[];
  let merged: ActionRun;

  test('two legs in parallel push by digest only: no tag of any kind, each hands over one artifact', async () => {
    legs = await Promise.all(PLATFORMS.map((p) => leg(RUN, p, repo(), { inputs })));
    legs.forEach(ok);
    expect(await tagsOf(repo())).toEqual([]);
    for (const [i, r] of legs.entries()) {
      const [img] = images(r);
      expect(img.platforms).toEqual([{ platform: PLATFORMS[i], digest: expect.stringMatching(/^sha256:[0-9a-f]{64}$/) }]);
      expect(r.outputs.digest).toBe(img.platforms[0].digest);
      expect(r.outputs.tags).toBe('');
      expect(img.tags).toEqual([]);
      // The platform manifest is in the repository, by digest.
      expect(await client.repository(path(repo())).headManifest(r.outputs.digest)).toEqual(expect.objectContaining({ digest: r.outputs.digest }));
    }
    const names = service.artifacts.filter((a) => a.runBackendId === `run-${RUN}`).map((a) => a.name).sort();
    expect(names).toEqual([expect.stringMatching(/^ko-annotate-fan-out-[0-9a-f]{12}-linux-amd64-attempt-1\.json$/), expect.stringMatching(/^ko-annotate-fan-out-[0-9a-f]{12}-linux-arm64-attempt-1\.json$/)]);
    // Through the real client: Twirp CreateArtifact → blob PUTs → FinalizeArtifact, per leg.
    const rpcs = service.requests.filter((q) => q.rpc).map((q) => q.rpc);
    expect(rpcs.filter((r) => r === 'CreateArtifact')).toHaveLength(2);
    expect(rpcs.filter((r) => r === 'FinalizeArtifact')).toHaveLength(2);
  }, 600_000);

  test('the merge writes the index of both legs, its SBOM fallback tags and the computed tags; crane validates it; the amd64 image runs', async () => {
    merged = ok(await merge(RUN, repo(), { inputs }));
    expect(merged.stdout).toContain(`fan-out merge: 2 legs of run ${RUN} checked: the platforms of input "platforms", revision ${loadEvent(EVENT).env.GITHUB_SHA}, the same packages, every platform manifest in its repository`);
    expect(merged.stdout).not.toMatch(/go build/);
    const [img] = images(merged);
    expect([...img.tags].sort()).toEqual(TAGS);
    expect(img.platforms).toEqual(PLATFORMS.map((p, i) => ({ platform: p, digest: legs[i].outputs.digest })));
    const r = client.repository(path(repo()));
    const tags = await r.listTags();
    for (const t of TAGS) expect(tags).toContain(t);
    // The SBOMs' referrers tag schema (this registry has no referrers API): written by the merge.
    for (const l of legs) expect(tags).toContain(`sha256-${l.outputs.digest.slice('sha256:'.length)}`);
    const raw = await r.getManifest('1.2.3');
    expect(raw.digest).toBe(merged.outputs.digest);
    const index = JSON.parse(raw.bytes.toString()) as Index;
    expect(index.manifests.map((m) => [m.platform?.architecture, m.digest])).toEqual([
      ['amd64', legs[0].outputs.digest],
      ['arm64', legs[1].outputs.digest],
    ]);
    expect(await validateStored(r, merged.outputs.digest)).toEqual({ digest: merged.outputs.digest, manifests: 2, layers: expect.any(Number) });

    const dir = await mkdtemp(join(tmpdir(), 'ko-annotate-fan-out-'));
    try {
      const auth = Buffer.from(`${registry.username}:${registry.password}`).toString('base64');
      await writeFile(join(dir, 'config.json'), JSON.stringify({ auths: { [registry.host]: { auth } } }), { mode: 0o600 });
      const env = { ...process.env, DOCKER_CONFIG: dir, HOME: dir };
      await exec(crane, ['validate', '--insecure', '--remote', `${repo()}:1.2.3`], { env, timeout: 120_000 });
      // skopeo copies the amd64 image out; umoci unpacks it; the binary prints its greeting.
      await writeFile(join(dir, 'policy.json'), JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
      await exec('skopeo', ['copy', '--quiet', '--policy', join(dir, 'policy.json'), '--src-tls-verify=false', '--src-authfile', join(dir, 'config.json'), `docker://${repo()}@${legs[0].outputs.digest}`, `oci:${join(dir, 'layout')}:amd64`], { timeout: 120_000 });
      const rootfs = join(dir, 'rootfs');
      await umociUnpack(join(dir, 'layout'), 'amd64', rootfs);
      const { stdout } = await exec(join(rootfs, 'ko-app', 'hello'), [], { env: { KO_DATA_PATH: join(rootfs, 'var', 'run', 'ko') } });
      expect(stdout).toBe('Hello from kodata, world! (hello dev)\nbuilt for linux/amd64\n');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 600_000);

  test('the merged index is byte for byte the one a single fan-out: off job makes for the same commit and inputs', async () => {
    const single = ok(await runJob({ run: '7100000002', job: 'image', inputs: { repository: repo(), platforms: PLATFORMS.join(','), ...inputs } }));
    expect(single.outputs.digest).toBe(merged.outputs.digest);
    expect(single.outputs.annotations).toBe(merged.outputs.annotations);
    expect(single.outputs.labels).toBe(merged.outputs.labels);
    expect(images(single)[0].platforms).toEqual(images(merged)[0].platforms);
    // The images output is one job's, SBOM referrers included.
    expect(images(merged)[0]).toEqual(images(single)[0]);
    expect(images(merged)[0]).toEqual(expect.objectContaining({ sbom: PLATFORMS.map((platform) => ({ platform, digest: expect.stringMatching(/^sha256:/) })) }));
    expect(merged.outputs.annotations).toContain('org.example.index-only=yes');
    expect(merged.outputs.labels).toContain('org.example.team=images');
    // Everything it would push was there: the merge had pushed these very bytes.
    expect(single.stdout).toContain(`${repo()}@${merged.outputs.digest} is already there`);
  }, 600_000);
});

describe('the merge job signs what it publishes (docs/provenance.md, docs/fan-out.md)', () => {
  const RUN = '7100000041';
  const E = loadEvent(EVENT).env;
  const GITHUB_TOKEN = `ghs_${'F'.repeat(36)}`;
  const BUNDLE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
  const SLSA = 'https://slsa.dev/provenance/v1';
  const SPDX = 'https://spdx.dev/Document/v2.3';
  // The runner's OIDC token says what the environment says, run id included.
  const claims = claimsOfEnv(E, { run_id: RUN, run_attempt: '1' });

  type Signed = { subjects: { name: string; digest: string }[]; predicateType: string; bundle: string; referrer: string; attestationId?: string };
  type Statement = { subject: { name: string; digest: { sha256: string } }[]; predicateType: string; predicate: Record<string, any> };
  let sigstore: TestSigstore;
  let dir: string;
  let craneEnv: NodeJS.ProcessEnv;

  beforeAll(async () => {
    sigstore = await startSigstore({ rekor: true, tsa: false, claims });
    dir = await mkdtemp(join(tmpdir(), 'ko-annotate-fan-out-signed-'));
    const auth = Buffer.from(`${registry.username}:${registry.password}`).toString('base64');
    await writeFile(join(dir, 'config.json'), JSON.stringify({ auths: { [registry.host]: { auth } } }), { mode: 0o600 });
    craneEnv = { ...process.env, DOCKER_CONFIG: dir, HOME: dir };
  });
  afterAll(async () => {
    await Promise.all([sigstore?.stop(), dir && rm(dir, { recursive: true, force: true })]);
  });

  const signing = (s: TestSigstore, more: Record<string, string> = {}) => ({
    inputs: { provenance: 'true', sigstore: s.input, 'github-token': GITHUB_TOKEN, timeout: '120s', ...more },
    env: { ...s.env, GITHUB_API_URL: s.apiUrl },
  });
  /** crane, the independent reader: a manifest's or blob's bytes, checked against the digest asked for. */
  async function craneRead(what: 'manifest' | 'blob', ref: string): Promise<Buffer> {
    const { stdout } = await exec(crane, [what, '--insecure', ref], { env: craneEnv, encoding: 'buffer', maxBuffer: 64 << 20, timeout: 60_000 });
    const digest = ref.slice(ref.indexOf('@') + 1);
    expect(`sha256:${createHash('sha256').update(stdout).digest('hex')}`).toBe(digest);
    return stdout;
  }
  const json = <T>(b: Buffer): T => JSON.parse(b.toString('utf8')) as T;
  /** The referrers of `digest`, as its sha256-<hex> fallback index lists them (this registry has no referrers API). */
  const referrersOf = async (repo: string, digest: string) =>
    json<{ manifests: { digest: string; artifactType?: string; annotations?: Record<string, string> }[] }>(
      (await exec(crane, ['manifest', '--insecure', `${repo}:sha256-${digest.slice('sha256:'.length)}`], { env: craneEnv, encoding: 'buffer', timeout: 60_000 })).stdout,
    ).manifests;
  /** A referrer's one layer, read with crane. */
  async function referrerLayer(repo: string, digest: string): Promise<{ manifest: { subject?: { digest: string }; annotations?: Record<string, string>; layers: { digest: string }[] }; layer: Buffer }> {
    const manifest = json<{ subject?: { digest: string }; annotations?: Record<string, string>; layers: { digest: string }[] }>(await craneRead('manifest', `${repo}@${digest}`));
    return { manifest, layer: await craneRead('blob', `${repo}@${manifest.layers[0].digest}`) };
  }

  const repo = () => `${registry.host}/octo-org/fan-out-signed`;
  let legs: ActionRun[];
  let merged: ActionRun;
  let signed: Signed[];

  test('the legs sign nothing; the merge signs the provenance of the index and each platform\'s SBOM, which verify when read back with crane', async () => {
    legs = await Promise.all(PLATFORMS.map((p) => leg(RUN, p, repo(), signing(sigstore))));
    legs.forEach(ok);
    // A leg has no index to sign: it asks for no token and sends nothing to Fulcio.
    expect(sigstore.requests.filter((q) => q.service !== 'api')).toEqual([]);
    for (const l of legs) expect(JSON.parse(l.outputs.provenance)).toEqual([]);
    expect(await tagsOf(repo())).toEqual([]);

    merged = ok(await merge(RUN, repo(), signing(sigstore)));
    const [img] = images(merged);
    const name = repo();
    signed = JSON.parse(merged.outputs.provenance) as Signed[];
    expect(signed.map((s) => s.predicateType)).toEqual([SLSA, SPDX, SPDX]);

    // The provenance: its subjects are the merged index and both legs' platform manifests.
    const slsa = signed[0];
    expect(slsa.subjects).toEqual([merged.outputs.digest, ...legs.map((l) => l.outputs.digest)].map((digest) => ({ name, digest })));
    const listed = (await referrersOf(repo(), merged.outputs.digest)).filter((d) => d.artifactType === BUNDLE);
    expect(listed.map((d) => d.digest)).toEqual([slsa.referrer]);
    const { manifest, layer } = await referrerLayer(repo(), slsa.referrer);
    expect(manifest.subject?.digest).toBe(merged.outputs.digest);
    const index = json<{ annotations: Record<string, string> }>(await craneRead('manifest', `${name}@${merged.outputs.digest}`));
    expect(manifest.annotations).toEqual({ 'dev.sigstore.bundle.content': 'dsse-envelope', 'dev.sigstore.bundle.predicateType': SLSA, 'org.opencontainers.image.created': index.annotations['org.opencontainers.image.created'] });
    expect(`sha256:${createHash('sha256').update(layer).digest('hex')}`).toBe(slsa.bundle);
    const st = json<Statement>(sigstore.verify(json(layer)));
    expect(st.predicateType).toBe(SLSA);
    expect(st.subject).toEqual([merged.outputs.digest, ...legs.map((l) => l.outputs.digest)].map((d) => ({ name, digest: { sha256: d.slice('sha256:'.length) } })));
    expect(st.predicate.buildDefinition.resolvedDependencies).toEqual([{ uri: `git+${E.GITHUB_SERVER_URL}/${E.GITHUB_REPOSITORY}@${E.GITHUB_REF}`, digest: { gitCommit: E.GITHUB_SHA } }]);
    expect(st.predicate.runDetails.metadata.invocationId).toBe(`${E.GITHUB_SERVER_URL}/${E.GITHUB_REPOSITORY}/actions/runs/${RUN}/attempts/1`);

    // Each platform's SBOM attestation carries the document of the leg's unsigned SPDX referrer,
    // which is still listed beside it.
    for (const [i, l] of legs.entries()) {
      const platform = l.outputs.digest;
      const referrers = await referrersOf(repo(), platform);
      const sbom = img.sbom![i].digest;
      expect(images(l)[0].sbom).toEqual([{ platform: PLATFORMS[i], digest: sbom }]);
      expect(referrers.filter((d) => d.artifactType === 'application/spdx+json').map((d) => d.digest)).toEqual([sbom]);
      const att = signed.filter((s) => s.predicateType === SPDX && s.subjects[0].digest === platform);
      expect(att).toHaveLength(1);
      expect(referrers.filter((d) => d.artifactType === BUNDLE).map((d) => d.digest)).toEqual([att[0].referrer]);
      const document = json((await referrerLayer(repo(), sbom)).layer);
      const a = await referrerLayer(repo(), att[0].referrer);
      expect(a.manifest.subject?.digest).toBe(platform);
      const sst = json<Statement>(sigstore.verify(json(a.layer)));
      expect(sst.subject).toEqual([{ name, digest: { sha256: platform.slice('sha256:'.length) } }]);
      expect(sst.predicate).toEqual(document);
    }

    // GitHub's attestations API got each bundle with the github-token; the tags came after.
    expect(sigstore.attestations.map((a) => a.bundle)).toEqual(await Promise.all(signed.map(async (s) => json((await referrerLayer(repo(), s.referrer)).layer))));
    expect(signed.every((s) => /^\d+$/.test(s.attestationId ?? ''))).toBe(true);
    for (const t of TAGS) expect(await tagsOf(repo())).toContain(t);
    expect(merged.summary).toContain(`gh attestation verify oci://${name}@${merged.outputs.digest} --owner ${E.GITHUB_REPOSITORY_OWNER}`);
    // The OIDC token went to Fulcio only.
    for (const jwt of sigstore.issued) {
      expect(merged.stdout).toContain(`::add-mask::${jwt}`);
      expect([...new Set(sigstore.requests.filter((q) => JSON.stringify(q.headers).includes(jwt) || q.body.includes(jwt)).map((q) => q.service))]).toEqual(['fulcio']);
    }
  }, 900_000);

  test('the signed merged index is the one a single signing job makes: same digest, same subjects', async () => {
    const single = ok(await runJob({ run: '7100000042', job: 'image', ...signing(sigstore), inputs: { repository: repo(), platforms: PLATFORMS.join(','), ...signing(sigstore).inputs } }));
    expect(single.outputs.digest).toBe(merged.outputs.digest);
    const theirs = JSON.parse(single.outputs.provenance) as Signed[];
    expect(theirs.map((s) => [s.predicateType, s.subjects])).toEqual(signed.map((s) => [s.predicateType, s.subjects]));
  }, 600_000);

  test('Fulcio down in the merge: the merge fails naming the signing, and writes no tag of any kind', async () => {
    const down = await startSigstore({ rekor: true, claims: { ...claims, run_id: '7100000043' }, fulcioStatus: 503 });
    try {
      const RUN2 = '7100000043';
      const where = `${registry.host}/octo-org/fan-out-signed-down`;
      // The legs sign nothing, so Fulcio being down does not concern them.
      (await Promise.all(PLATFORMS.map((p) => leg(RUN2, p, where, signing(down))))).forEach(ok);
      const errors = failed(await merge(RUN2, where, signing(down, { timeout: '15s' })));
      expect(errors).toMatch(/sign the provenance of .* with Sigstore \(http:\/\/127\.0\.0\.1:\d+\/fulcio\): .*\(503\) Service Unavailable/);
      expect(down.requests.filter((q) => q.service === 'fulcio').length).toBeGreaterThan(1);
      // Neither the tags nor the fallback indexes of the legs' SBOMs.
      expect(await tagsOf(where)).toEqual([]);
    } finally {
      await down.stop();
    }
  }, 600_000);
});

describe('the merge checks the legs before anything is named (docs/fan-out.md#what-the-merge-checks)', () => {
  const RUN = '7100000011';
  const repo = () => `${registry.host}/octo-org/fan-out-checks`;
  let amd64: ActionRun;

  test('a missing leg: the merge fails naming the platform, and writes no tag', async () => {
    amd64 = ok(await leg(RUN, 'linux/amd64', repo()));
    const errors = failed(await merge(RUN, repo()));
    expect(errors).toMatch(/linux\/arm64: no build leg of this workflow run handed it over/);
    expect(errors).not.toMatch(/linux\/amd64:/);
    expect(await tagsOf(repo())).toEqual([]);
  }, 600_000);

  test('a leg of another revision: the merge fails naming the platform and both revisions, and writes no tag', async () => {
    const other = fakeSha('another commit');
    const stale = ok(await leg(RUN, 'linux/arm64', repo(), { sha: other }));
    const errors = failed(await merge(RUN, repo()));
    expect(errors).toContain(`linux/arm64: the leg (job build-arm64, attempt 1) built revision ${other}; this merge job is at ${loadEvent(EVENT).env.GITHUB_SHA}`);
    expect(await tagsOf(repo())).toEqual([]);
    expect(stale.outputs.digest).toMatch(/^sha256:/);
  }, 600_000);

  test('the leg re-run (attempt 2) supersedes it and the merge publishes', async () => {
    const rerun = ok(await leg(RUN, 'linux/arm64', repo(), { attempt: 2 }));
    const done = ok(await merge(RUN, repo(), { attempt: 2 }));
    expect(done.stdout).toContain('linux/amd64 (attempt 1), linux/arm64 (attempt 2)');
    expect(images(done)[0].platforms).toEqual([
      { platform: 'linux/amd64', digest: amd64.outputs.digest },
      { platform: 'linux/arm64', digest: rerun.outputs.digest },
    ]);
    for (const t of TAGS) expect(await tagsOf(repo())).toContain(t);
    expect((await client.repository(path(repo())).getManifest('latest')).digest).toBe(done.outputs.digest);
  }, 600_000);

  test('a second leg for the same platform in the same attempt fails: the artifact name is taken (409)', async () => {
    const errors = failed(await leg(RUN, 'linux/amd64', repo(), { job: 'build-amd64-again' }));
    expect(errors).toMatch(/could not hand linux\/amd64 over to the merge job .*another job of run attempt 1 already handed over linux\/amd64/);
  }, 600_000);
});

describe('the merge checks the repository and the package set (docs/fan-out.md#what-the-merge-checks)', () => {
  let dir: string;
  let craneEnv: NodeJS.ProcessEnv;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ko-annotate-fan-out-repo-'));
    const auth = Buffer.from(`${registry.username}:${registry.password}`).toString('base64');
    await writeFile(join(dir, 'config.json'), JSON.stringify({ auths: { [registry.host]: { auth } } }), { mode: 0o600 });
    craneEnv = { ...process.env, DOCKER_CONFIG: dir, HOME: dir };
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('a leg whose platform manifest is gone from the repository: the merge names the platform and the manifest, and writes no tag', async () => {
    const RUN = '7100000031';
    const repo = `${registry.host}/octo-org/fan-out-gone`;
    const [amd64, arm64] = (await Promise.all(PLATFORMS.map((p) => leg(RUN, p, repo)))).map(ok);
    // Deleted behind the merge's back (crane speaks the registry API independently of this project).
    await exec(crane, ['delete', '--insecure', `${repo}@${arm64.outputs.digest}`], { env: craneEnv, timeout: 60_000 });
    const errors = failed(await merge(RUN, repo));
    expect(errors).toContain(`linux/arm64: ${repo}@${arm64.outputs.digest} is not in the repository`);
    expect(errors).not.toContain(amd64.outputs.digest);
    expect(await tagsOf(repo)).toEqual([]);
  }, 600_000);

  test('legs of another package set (another repository): the merge finds no leg of its own, names the other set, and writes no tag', async () => {
    const RUN = '7100000032';
    const theirs = `${registry.host}/octo-org/fan-out-theirs`;
    const ours = `${registry.host}/octo-org/fan-out-ours`;
    (await Promise.all(PLATFORMS.map((p) => leg(RUN, p, theirs)))).forEach(ok);
    const errors = failed(await merge(RUN, ours));
    for (const p of PLATFORMS) expect(errors).toContain(`${p}: no build leg of this workflow run handed it over`);
    expect(errors).toMatch(/this run has handoffs of other package sets: .*do the legs build the same packages and repository\?/);
    expect(await tagsOf(ours)).toEqual([]);
    expect(await tagsOf(theirs)).toEqual([]);
  }, 600_000);
});

describe('faults and bad input', () => {
  test('a leg whose upload fails fails; the merge then fails naming the missing platform, and nothing is tagged', async () => {
    const RUN = '7100000021';
    const repo = `${registry.host}/octo-org/fan-out-faults`;
    service.fault = (rpc, job) => (rpc === 'CreateArtifact' && job === 'build-arm64' ? { status: 403, code: 'permission_denied', msg: 'artifact storage refused the upload' } : undefined);
    try {
      const [a, b] = await Promise.all([leg(RUN, 'linux/amd64', repo), leg(RUN, 'linux/arm64', repo)]);
      ok(a);
      expect(failed(b)).toMatch(/could not hand linux\/arm64 over to the merge job .*artifact storage refused the upload/);
    } finally {
      service.fault = undefined;
    }
    const errors = failed(await merge(RUN, repo));
    expect(errors).toMatch(/linux\/arm64: no build leg of this workflow run handed it over/);
    expect(await tagsOf(repo)).toEqual([]);
  }, 600_000);

  test('a leg of a platform "platforms" does not list, and one it lists without a leg: both named, nothing tagged', async () => {
    const RUN = '7100000022';
    const repo = `${registry.host}/octo-org/fan-out-extra`;
    (await Promise.all(PLATFORMS.map((p) => leg(RUN, p, repo)))).forEach(ok);
    const errors = failed(await merge(RUN, repo, { inputs: { platforms: 'linux/amd64,linux/arm/v7' } }));
    expect(errors).toMatch(/2 problems with the legs; nothing was published or tagged/);
    expect(errors).toMatch(/linux\/arm\/v7: no build leg of this workflow run handed it over/);
    expect(errors).toMatch(/linux\/arm64: the leg \(job build-arm64, attempt 1\) built it, but input "platforms" \(linux\/amd64,linux\/arm\/v7\) does not list it/);
    expect(await tagsOf(repo)).toEqual([]);
  }, 600_000);

  test('a leg outside a job with the artifact service fails before it builds or pushes anything', async () => {
    const tokenRequests = registry.tokenRequests.length;
    const r = await runAction({
      event: EVENT,
      registry,
      workspace: workspace.dir,
      inputs: { 'base-image': base.reference, packages: './cmd/hello', username: registry.username, repository: `${registry.host}/octo-org/fan-out-nowhere`, 'fan-out': 'build', platforms: 'linux/amd64' },
    });
    expect(failed(r)).toMatch(/fan-out needs the runner's artifact service, and ACTIONS_RUNTIME_TOKEN is not set/);
    expect(r.stdout).not.toMatch(/go build/);
    expect(registry.tokenRequests.length).toBe(tokenRequests);
  }, 120_000);

  test('fan-out: merge without platforms is bad input: it fails before any request', async () => {
    const before = service.requests.length;
    const tokenRequests = registry.tokenRequests.length;
    const errors = failed(await merge('7100000031', `${registry.host}/octo-org/fan-out-bad`, { inputs: { platforms: '' } }));
    expect(errors).toMatch(/input "platforms".*required with fan-out: merge/);
    expect(service.requests.length).toBe(before);
    expect(registry.tokenRequests.length).toBe(tokenRequests);
  }, 120_000);
});
