// docs/provenance.md end to end: dist/index.js run as the runner runs it (Node 24, INPUT_*,
// GITHUB_* of a recorded push to main), against the token-auth registry, building two platforms,
// signing with a Sigstore instance on loopback (support/sigstore.ts: Fulcio, Rekor, a TSA, the
// runner's OIDC token endpoint and GitHub's attestations API). What it published is read back
// with skopeo and each bundle verified with @sigstore/verify against the instance's trusted root.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { MemoryLogger } from '../src/log.js';
import { Registry } from '../src/registry/client.js';
import { targetCredentials } from '../src/registry/credentials.js';
import { pushBaseImage, skopeoInspectRaw, type PushedBase } from './support/base-images.js';
import { loadEvent } from './support/events.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { createWorkspace, runAction, type ActionRun, type RunnerEvent, type Workspace } from './support/runner.js';
import { claimsOfEnv, startSigstore, type TestSigstore } from './support/sigstore.js';

const exec = promisify(execFile);

const EVENT = loadEvent('push-branch-main');
const E = EVENT.env;
const GITHUB_TOKEN = `ghs_${'G'.repeat(36)}`;
const BUNDLE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
const SLSA = 'https://slsa.dev/provenance/v1';
const SPDX = 'https://spdx.dev/Document/v2.3';

let registry: TestRegistry;
let base: PushedBase;
let workspace: Workspace;
let sigstore: TestSigstore;
let tmp: string;

/** The runner's claims for this event: the OIDC token says what the environment says. */
const claims = claimsOfEnv(E);

beforeAll(async () => {
  [registry, sigstore, workspace, tmp] = await Promise.all([
    startRegistry({ auth: 'token' }),
    startSigstore({ rekor: true, tsa: false, claims }),
    createWorkspace(),
    mkdtemp(join(tmpdir(), 'provenance-e2e-')),
  ]);
  base = await pushBaseImage(registry, 'oci-index');
  await writeSkopeoFiles();
}, 240_000);

afterAll(async () => {
  await Promise.all([registry?.stop(), sigstore?.stop(), workspace?.cleanup(), tmp && rm(tmp, { recursive: true, force: true })]);
});

const event: RunnerEvent = { env: EVENT.env, payload: EVENT.payload };

function run(s: TestSigstore, repository: string, inputs: Record<string, string> = {}, extraEnv: Record<string, string | undefined> = {}): Promise<ActionRun> {
  return runAction({
    event,
    registry,
    workspace: workspace.dir,
    inputs: {
      repository: `${registry.host}/${repository}`,
      'base-image': base.reference,
      packages: './cmd/hello',
      platforms: 'linux/amd64,linux/arm64',
      // The registry checks its user; the default (`${{ github.actor }}`) is not it.
      username: registry.username,
      sigstore: s.input,
      'github-token': GITHUB_TOKEN,
      timeout: '120s',
      ...inputs,
    },
    extraEnv: { ...s.env, GITHUB_API_URL: s.apiUrl, ...extraEnv },
  });
}

const creds = () => ({ username: registry.username, password: registry.password });
const json = <T>(b: Buffer): T => JSON.parse(b.toString('utf8')) as T;
const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}
interface Manifest {
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

/** The referrers of `digest` in `repository` as the fallback tag lists them (the test registry has no referrers API). */
async function referrersOf(repository: string, digest: string): Promise<Descriptor[]> {
  const raw = await skopeoInspectRaw(`${registry.host}/${repository}:sha256-${digest.slice('sha256:'.length)}`, creds());
  return json<{ manifests: Descriptor[] }>(raw).manifests;
}

/** A referrer's manifest and its one layer's bytes, copied out of the registry by skopeo. */
async function readReferrer(repository: string, digest: string): Promise<{ manifest: Manifest; layer: Buffer }> {
  const dir = await mkdtemp(join(tmp, 'referrer-'));
  await exec('skopeo', ['copy', '--quiet', '--preserve-digests', '--policy', join(tmp, 'policy.json'), '--src-tls-verify=false', '--src-authfile', join(tmp, 'auth.json'), `docker://${registry.host}/${repository}@${digest}`, `dir:${dir}`]);
  const manifestBytes = await readFile(join(dir, 'manifest.json'));
  expect(sha256(manifestBytes)).toBe(digest);
  const manifest = json<Manifest>(manifestBytes);
  const layer = await readFile(join(dir, manifest.layers[0].digest.slice('sha256:'.length)));
  expect(sha256(layer)).toBe(manifest.layers[0].digest);
  return { manifest, layer };
}

async function writeSkopeoFiles() {
  await writeFile(join(tmp, 'auth.json'), JSON.stringify({ auths: { [registry.host]: { auth: Buffer.from(`${registry.username}:${registry.password}`).toString('base64') } } }));
  await writeFile(join(tmp, 'policy.json'), JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
}

interface Statement {
  _type: string;
  subject: { name: string; digest: { sha256: string } }[];
  predicateType: string;
  predicate: Record<string, any>;
}

describe('a push with provenance: signed, attached, stored, verifiable', () => {
  const repository = 'octo-org/hello-world';
  let result: ActionRun;
  let images: { digest: string; platforms: { platform: string; digest: string }[]; sbom: { platform: string; digest: string }[] }[];
  let signed: { subjects: { name: string; digest: string }[]; predicateType: string; bundle: string; referrer: string; attestationId?: string }[];
  let tokenRequestsBefore: number;

  beforeAll(async () => {
    tokenRequestsBefore = registry.tokenRequests.length;
    result = await run(sigstore, repository, { provenance: 'true' });
    if (result.code !== 0) throw new Error(`the action failed (${result.code}):\n${result.stdout}\n${result.stderr}`);
    images = JSON.parse(result.outputs.images);
    signed = JSON.parse(result.outputs.provenance);
  }, 300_000);

  test('(1) the provenance bundle, read back with skopeo, verifies; its subjects are the index and both platforms; it names the commit', async () => {
    const image = images[0];
    const name = `${registry.host}/${repository}`;
    const slsa = signed.filter((s) => s.predicateType === SLSA);
    expect(slsa).toHaveLength(1);
    expect(slsa[0].subjects).toEqual([image.digest, ...image.platforms.map((p) => p.digest)].map((digest) => ({ name, digest })));

    // The index's referrers, as the sha256-<hex> fallback index lists them.
    const listed = (await referrersOf(repository, image.digest)).filter((d) => d.artifactType === BUNDLE);
    expect(listed.map((d) => d.digest)).toEqual([slsa[0].referrer]);
    expect(listed[0].annotations).toMatchObject({ 'dev.sigstore.bundle.predicateType': SLSA, 'dev.sigstore.bundle.content': 'dsse-envelope' });

    const { manifest, layer } = await readReferrer(repository, slsa[0].referrer);
    expect(manifest.artifactType).toBe(BUNDLE);
    expect(manifest.config).toMatchObject({ mediaType: 'application/vnd.oci.empty.v1+json', size: 2 });
    expect(manifest.layers.map((l) => l.mediaType)).toEqual([BUNDLE]);
    expect(manifest.subject?.digest).toBe(image.digest);
    // The image's created time (the index's annotation), never the clock.
    const index = json<{ annotations: Record<string, string> }>(await skopeoInspectRaw(`${name}@${image.digest}`, creds()));
    expect(manifest.annotations).toEqual({
      'dev.sigstore.bundle.content': 'dsse-envelope',
      'dev.sigstore.bundle.predicateType': SLSA,
      'org.opencontainers.image.created': index.annotations['org.opencontainers.image.created'],
    });
    expect(sha256(layer)).toBe(slsa[0].bundle);

    const st = json<Statement>(sigstore.verify(json(layer)));
    expect(st._type).toBe('https://in-toto.io/Statement/v1');
    expect(st.predicateType).toBe(SLSA);
    expect(st.subject).toEqual(slsa[0].subjects.map((s) => ({ name: s.name, digest: { sha256: s.digest.slice('sha256:'.length) } })));
    const server = E.GITHUB_SERVER_URL;
    expect(st.predicate.buildDefinition.resolvedDependencies).toEqual([{ uri: `git+${server}/${E.GITHUB_REPOSITORY}@${E.GITHUB_REF}`, digest: { gitCommit: E.GITHUB_SHA } }]);
    expect(st.predicate.buildDefinition.externalParameters).toEqual({ workflow: { ref: E.GITHUB_REF, repository: `${server}/${E.GITHUB_REPOSITORY}`, path: '.github/workflows/image.yml' } });
    expect(st.predicate.runDetails).toEqual({
      builder: { id: `${server}/${E.GITHUB_WORKFLOW_REF}` },
      metadata: { invocationId: `${server}/${E.GITHUB_REPOSITORY}/actions/runs/${E.GITHUB_RUN_ID}/attempts/${E.GITHUB_RUN_ATTEMPT}` },
    });
    // The index itself is as it was: no unknown/unknown entry, only the two platforms.
    expect(json<{ manifests: Descriptor[] }>(await skopeoInspectRaw(`${name}@${image.digest}`, creds())).manifests.map((d) => d.digest)).toEqual(image.platforms.map((p) => p.digest));
  });

  test('(2) each platform\'s SBOM attestation verifies and carries the unsigned SPDX referrer\'s document, which is still there', async () => {
    const image = images[0];
    for (const [i, p] of image.platforms.entries()) {
      const referrers = await referrersOf(repository, p.digest);
      const spdx = referrers.filter((d) => d.artifactType === 'application/spdx+json');
      const bundles = referrers.filter((d) => d.artifactType === BUNDLE);
      expect(spdx.map((d) => d.digest)).toEqual([image.sbom[i].digest]);
      const att = signed.filter((s) => s.predicateType === SPDX && s.subjects[0].digest === p.digest);
      expect(att).toHaveLength(1);
      expect(bundles.map((d) => d.digest)).toEqual([att[0].referrer]);

      const document = json((await readReferrer(repository, spdx[0].digest)).layer);
      const { layer } = await readReferrer(repository, att[0].referrer);
      expect(sha256(layer)).toBe(att[0].bundle);
      const st = json<Statement>(sigstore.verify(json(layer)));
      expect(st.predicateType).toBe(SPDX);
      expect(st.subject).toEqual([{ name: `${registry.host}/${repository}`, digest: { sha256: p.digest.slice('sha256:'.length) } }]);
      expect(st.predicate).toEqual(document);
    }
  });

  test('(3) the attestations API received each bundle, with the github-token', async () => {
    expect(sigstore.attestations).toHaveLength(signed.length);
    const [owner, repo] = E.GITHUB_REPOSITORY.split('/');
    for (const a of sigstore.attestations) expect(a).toMatchObject({ owner, repo, authorization: `token ${GITHUB_TOKEN}` });
    const stored = await Promise.all(signed.map(async (s) => json((await readReferrer(repository, s.referrer)).layer)));
    expect(sigstore.attestations.map((a) => a.bundle)).toEqual(stored);
    expect(signed.every((s) => /^\d+$/.test(s.attestationId ?? ''))).toBe(true);
  });

  test('the step summary says the provenance is signed and shows the gh attestation verify command', () => {
    expect(result.summary).toContain('| Provenance | signed: SLSA v1 provenance, 2 SBOM attestations (Sigstore), attached as referrers |');
    expect(result.summary).toContain(`gh attestation verify oci://${registry.host}/${repository}@${images[0].digest} --owner ${E.GITHUB_REPOSITORY_OWNER}`);
  });

  test('(6) neither token in any log, output or summary; the OIDC token masked and sent to Fulcio only; the github-token to the API only', () => {
    const oidc = sigstore.issued;
    expect(oidc.length).toBeGreaterThan(0);
    // The runner hides what `::add-mask::` names; those lines are the only place a secret may be.
    const log = (result.stdout + result.stderr).split('\n').filter((l) => !l.startsWith('::add-mask::')).join('\n');
    for (const secret of [GITHUB_TOKEN, registry.password, sigstore.env.ACTIONS_ID_TOKEN_REQUEST_TOKEN, ...oidc]) {
      for (const where of [log, result.outputsFile, result.summary]) expect(where).not.toContain(secret);
    }
    for (const jwt of oidc) expect(result.stdout).toContain(`::add-mask::${jwt}`);
    const carrying = (secret: string) => [...new Set(sigstore.requests.filter((r) => JSON.stringify(r.headers).includes(secret) || r.body.includes(secret)).map((r) => `${r.service} ${r.method}`))];
    for (const jwt of oidc) expect(carrying(jwt)).toEqual(['fulcio POST']);
    expect(carrying(GITHUB_TOKEN)).toEqual(['api POST']);
    expect(carrying(registry.password)).toEqual([]);
    // The registry's token service refused nothing: no credentials but its own reached it (the
    // github-token would have been refused there).
    const asked = registry.tokenRequests.slice(tokenRequestsBefore);
    expect(asked.length).toBeGreaterThan(0);
    expect(asked.filter((t) => t.status !== 200 || !t.authenticated)).toEqual([]);
  });

  test('(4) the index digest is the same with provenance off', async () => {
    const off = await run(sigstore, repository, { provenance: 'false' });
    expect(off.code).toBe(0);
    expect(off.outputs.digest).toBe(images[0].digest);
    expect(JSON.parse(off.outputs.provenance)).toEqual([]);
    expect(off.stdout).toContain('provenance: off (input "provenance" is false)');
  }, 300_000);
});

describe("GitHub's instance shape (Fulcio and a timestamp authority, no Rekor)", () => {
  test('the provenance bundle carries an RFC 3161 timestamp and no log entry, and verifies', async () => {
    const tsaOnly = await startSigstore({ rekor: false, tsa: true, claims });
    try {
      const repository = 'octo-org/tsa-only';
      const r = await run(tsaOnly, repository, { provenance: 'true', sbom: 'none' });
      if (r.code !== 0) throw new Error(`the action failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
      const signed = JSON.parse(r.outputs.provenance) as { predicateType: string; referrer: string; bundle: string }[];
      expect(signed.map((s) => s.predicateType)).toEqual([SLSA]);
      const { layer } = await readReferrer(repository, signed[0].referrer);
      expect(sha256(layer)).toBe(signed[0].bundle);
      const bundle = json<{ verificationMaterial: { tlogEntries?: unknown[]; timestampVerificationData?: { rfc3161Timestamps: unknown[] } } }>(layer);
      expect(bundle.verificationMaterial.tlogEntries ?? []).toEqual([]);
      expect(bundle.verificationMaterial.timestampVerificationData?.rfc3161Timestamps).toHaveLength(1);
      const st = json<Statement>(tsaOnly.verify(bundle));
      expect(st.predicate.buildDefinition.resolvedDependencies[0].digest.gitCommit).toBe(E.GITHUB_SHA);
      expect(tsaOnly.requests.some((q) => q.service === 'rekor')).toBe(false);
    } finally {
      await tsaOnly.stop();
    }
  }, 300_000);
});

describe("GitHub's attestations API refuses (no attestations: write)", () => {
  test('one warning naming the permission; the run succeeds and the bundles are in the registry', async () => {
    const refusing = await startSigstore({ rekor: true, claims, apiStatus: 403 });
    try {
      const repository = 'octo-org/no-attestations';
      const r = await run(refusing, repository, { provenance: 'true' });
      if (r.code !== 0) throw new Error(`the action failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
      const warnings = r.stdout.split('\n').filter((l) => l.startsWith('::warning'));
      expect(warnings).toEqual([expect.stringContaining('`permissions: attestations: write`')]);
      // One refusal, and the other bundles are not sent after it.
      expect(refusing.requests.filter((q) => q.service === 'api' && q.method === 'POST')).toHaveLength(1);
      const signed = JSON.parse(r.outputs.provenance) as { referrer: string; attestationId?: string }[];
      expect(signed).toHaveLength(3);
      expect(signed.every((s) => s.attestationId === undefined)).toBe(true);
      for (const s of signed) refusing.verify(json((await readReferrer(repository, s.referrer)).layer));
    } finally {
      await refusing.stop();
    }
  }, 300_000);
});

describe('provenance: auto', () => {
  test('without id-token: write, signs nothing and says how to turn it on, in one line', async () => {
    const repository = 'octo-org/no-id-token';
    const r = await run(sigstore, repository, { sbom: 'none' }, { ACTIONS_ID_TOKEN_REQUEST_URL: undefined, ACTIONS_ID_TOKEN_REQUEST_TOKEN: undefined });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.outputs.provenance)).toEqual([]);
    const lines = r.stdout.split('\n').filter((l) => l.startsWith('provenance: '));
    expect(lines).toEqual([expect.stringContaining('`permissions: id-token: write`')]);
    expect(r.summary).not.toContain('gh attestation verify');
  }, 300_000);
});

describe('failures', () => {
  test('(5) Fulcio down (GitHub\'s shape: TSA only): retried, then the run fails within its timeout, naming the signing, with no tag of any kind', async () => {
    const down = await startSigstore({ rekor: false, tsa: true, claims, fulcioStatus: 503 });
    try {
      const repository = 'octo-org/fulcio-down';
      const started = Date.now();
      const r = await run(down, repository, { provenance: 'true', timeout: '15s' });
      const elapsed = Date.now() - started;
      expect(r.code).not.toBe(0);
      expect(r.stdout).toMatch(/::error::.*sign the provenance of .* with Sigstore \(http:\/\/127\.0\.0\.1:\d+\/fulcio\): error creating signing certificate - \(503\) Service Unavailable \((gave up after \d+ attempts|.*time budget ran out.*)\)$/m);
      expect(down.requests.filter((q) => q.service === 'fulcio').length).toBeGreaterThan(1);
      // Build time plus at most the 15 s budget and a margin.
      expect(elapsed).toBeLessThan(120_000);
      const client = new Registry(registry.host, { credentials: targetCredentials(registry.host, registry.username, registry.password), logger: new MemoryLogger() });
      const tags = await client.repository(repository).listTags();
      expect(tags).toEqual([]);
    } finally {
      await down.stop();
    }
  }, 300_000);
});
