// Issue 4's end-to-end proof: dist/index.js run exactly as the Actions runner runs it (Node 24,
// INPUT_* variables, GITHUB_* from recorded events, GITHUB_OUTPUT and GITHUB_STEP_SUMMARY
// files), against a real distribution registry with token auth, with a real Go toolchain, and
// the result read back by tools that are not ours (skopeo, umoci) as well as our validator.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { MemoryLogger } from '../src/log.js';
import { validateStored } from '../src/oci/validate.js';
import { Registry } from '../src/registry/client.js';
import { pushBaseImage, skopeoInspectRaw, umociUnpack, type PushedBase } from './support/base-images.js';
import { repoRoot } from './support/engine.js';
import { loadEvent } from './support/events.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { createWorkspace, fakeSha, goEnvironment, runAction, type ActionRun, type RunnerEvent, type Workspace } from './support/runner.js';

const exec = promisify(execFile);

const OWNER_REPO = 'octo-org/hello-world';
const SOURCE = 'https://github.com/Octo-Org/Hello-World';
const DESCRIPTION = 'A tiny Go service that says hello, shipped as an OCI image';
const LICENSE = 'Apache-2.0';
const PACKAGE = 'example.com/hello/cmd/hello';
const MODULE = 'example.com/hello';
const PLATFORMS = ['linux/amd64', 'linux/arm64'];
const K = {
  source: 'org.opencontainers.image.source',
  url: 'org.opencontainers.image.url',
  revision: 'org.opencontainers.image.revision',
  created: 'org.opencontainers.image.created',
  version: 'org.opencontainers.image.version',
  title: 'org.opencontainers.image.title',
  description: 'org.opencontainers.image.description',
  licenses: 'org.opencontainers.image.licenses',
  baseName: 'org.opencontainers.image.base.name',
  baseDigest: 'org.opencontainers.image.base.digest',
  goVersion: 'io.github.ko-annotate.go.version',
  goPackage: 'io.github.ko-annotate.go.package',
  goModule: 'io.github.ko-annotate.go.module',
  builder: 'io.github.ko-annotate.builder',
} as const;
const ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

let registry: TestRegistry;
let base: PushedBase;
let workspace: Workspace;
let goVersion: string;
let builder: string;
let repo: string;

beforeAll(async () => {
  registry = await startRegistry({ auth: 'token' });
  base = await pushBaseImage(registry, 'oci-index');
  workspace = await createWorkspace();
  repo = `${registry.host}/${OWNER_REPO}`;
  goVersion = (await exec(join((await goEnvironment()).bin, 'go'), ['env', 'GOVERSION'])).stdout.trim();
  builder = `ko-annotate/${JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')).version}`;
}, 240_000);

afterAll(async () => {
  await registry?.stop();
  await workspace?.cleanup();
});

// ---------------------------------------------------------------------------------------
// Helpers

/** The step's `with:` of these tests; everything else is action.yml's default. */
const withInputs = (over: Record<string, string> = {}) => ({
  repository: repo,
  'base-image': base.reference,
  packages: './cmd/hello',
  platforms: PLATFORMS.join(','),
  // One case below runs with the default sbom: spdx; the rest leave SBOMs out so that their
  // registry checks (catalogs, tag lists, upload counts) are about the image alone.
  sbom: 'none',
  // ghcr.io takes any user name with a GITHUB_TOKEN; this registry checks it, and the default
  // (`${{ github.actor }}`, the fixtures' monalisa) is not its user.
  username: registry.username,
  ...over,
});

async function run(event: string | RunnerEvent, over: Record<string, string> = {}, extra: Partial<Parameters<typeof runAction>[0]> = {}) {
  const r = await runAction({ event, inputs: withInputs(over), registry, workspace: workspace.dir, ...extra });
  expectTokenKeptSecret(r, registry.password);
  return r;
}

const describeRun = (r: ActionRun) => `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

function expectSuccess(r: ActionRun) {
  if (r.code !== 0) throw new Error(`the action failed: ${describeRun(r)}`);
}

/**
 * docs/publishing.md#credentials: the token is masked (`::add-mask::` is the only line that carries it, which the
 * runner swallows) and appears nowhere else: not in the log, the outputs or the summary, nor as
 * the Basic credentials derived from it.
 */
function expectTokenKeptSecret(r: ActionRun, token: string) {
  const mask = `::add-mask::${token}`;
  const lines = r.stdout.split('\n');
  expect(lines).toContain(mask);
  const log = lines.filter((l) => l !== mask).join('\n');
  const basic = Buffer.from(`${registry.username}:${token}`).toString('base64');
  for (const [where, text] of Object.entries({ stdout: log, stderr: r.stderr, outputs: r.outputsFile, summary: r.summary })) {
    for (const secret of [token, basic]) {
      if (text.includes(secret)) throw new Error(`the token appears in ${where}`);
    }
  }
}

/** A tag push derived from the recorded v1.2.3 one, for versions the fixtures do not have. */
function tagPush(tag: string, timestamp: string): RunnerEvent {
  const recorded = loadEvent('push-tag-v1.2.3');
  const oldSha = recorded.env.GITHUB_SHA;
  const sha = fakeSha(tag);
  const swap = (v: unknown) => JSON.parse(JSON.stringify(v).replaceAll('v1.2.3', tag).replaceAll('Release 1.2.3', `Release ${tag}`).replaceAll(oldSha, sha));
  const payload = swap(recorded.payload) as { head_commit: { timestamp: string } };
  payload.head_commit.timestamp = timestamp;
  const { GITHUB_EVENT_PATH: _, ...env } = recorded.env;
  return { env: swap(env), payload };
}

/** RFC 3339 with an offset → the UTC form the image carries. */
const utc = (t: string) => new Date(t).toISOString().replace(/\.000Z$/, 'Z');

// A small client of our own for reading the registry back, independent of src/registry.
const tokens = new Map<string, string>();
let challenge: { realm: string; service: string } | undefined;

async function registryFetch(path: string, scope: string, init: RequestInit = {}): Promise<Response> {
  if (!challenge) {
    const res = await fetch(`http://${registry.host}/v2/`);
    await res.arrayBuffer();
    const header = res.headers.get('www-authenticate') ?? '';
    const param = (n: string) => new RegExp(`${n}="([^"]*)"`).exec(header)?.[1] ?? '';
    challenge = { realm: param('realm'), service: param('service') };
  }
  if (!tokens.has(scope)) {
    const url = new URL(challenge.realm);
    url.searchParams.set('service', challenge.service);
    url.searchParams.set('scope', scope);
    const res = await fetch(url, { headers: { Authorization: `Basic ${Buffer.from(`${registry.username}:${registry.password}`).toString('base64')}` } });
    if (res.status !== 200) throw new Error(`token for ${scope}: HTTP ${res.status}`);
    tokens.set(scope, ((await res.json()) as { token: string }).token);
  }
  return fetch(`http://${registry.host}${path}`, { ...init, headers: { ...(init.headers as Record<string, string>), Authorization: `Bearer ${tokens.get(scope)}` } });
}

/** Tags of `repository` (without host); [] when it does not exist. */
async function tagsOf(repository = OWNER_REPO): Promise<string[]> {
  const res = await registryFetch(`/v2/${repository}/tags/list`, `repository:${repository}:pull`);
  if (res.status === 404) return [];
  if (res.status !== 200) throw new Error(`tags of ${repository}: HTTP ${res.status}`);
  return (((await res.json()) as { tags: string[] | null }).tags ?? []).sort();
}

async function catalog(): Promise<string[]> {
  const res = await registryFetch('/v2/_catalog', 'registry:catalog:*');
  if (res.status !== 200) throw new Error(`catalog: HTTP ${res.status}`);
  return ((await res.json()) as { repositories: string[] }).repositories.sort();
}

/** The manifest `reference` (tag or digest) as served, with the digest of its bytes. */
async function manifest(reference: string, repository = OWNER_REPO): Promise<{ digest: string; json: any; mediaType: string }> {
  const res = await registryFetch(`/v2/${repository}/manifests/${reference}`, `repository:${repository}:pull`, { headers: { Accept: ACCEPT } });
  if (res.status !== 200) throw new Error(`manifest ${repository}:${reference}: HTTP ${res.status}`);
  const bytes = Buffer.from(await res.arrayBuffer());
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  expect(res.headers.get('docker-content-digest')).toBe(digest);
  return { digest, json: JSON.parse(bytes.toString('utf8')), mediaType: res.headers.get('content-type') ?? '' };
}

async function blobJson(digest: string, repository = OWNER_REPO): Promise<any> {
  const res = await registryFetch(`/v2/${repository}/blobs/${digest}`, `repository:${repository}:pull`);
  if (res.status !== 200) throw new Error(`blob ${digest}: HTTP ${res.status}`);
  return JSON.parse(Buffer.from(await res.arrayBuffer()).toString('utf8'));
}

/** Which digest each tag resolves to. */
async function resolveTags(tags: string[], repository = OWNER_REPO): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const t of tags) out[t] = (await manifest(t, repository)).digest;
  return out;
}

const lineRecord = (text: string) =>
  Object.fromEntries(
    text
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );

interface Expected {
  repository?: string;
  revision: string;
  created: string;
  version: string;
  description?: string;
  licenses?: string;
}

/** Every docs/image.md#metadata key, as it must be on every config, manifest and the index. */
function metadataKeys(e: Expected): Record<string, string> {
  const keys: Record<string, string> = {
    [K.source]: SOURCE,
    [K.url]: SOURCE,
    [K.revision]: e.revision,
    [K.created]: e.created,
    [K.version]: e.version,
    [K.title]: 'hello-world',
    [K.goVersion]: goVersion,
    [K.goPackage]: PACKAGE,
    [K.goModule]: MODULE,
    [K.builder]: builder,
  };
  if (e.description) keys[K.description] = e.description;
  if (e.licenses) keys[K.licenses] = e.licenses;
  return keys;
}

/**
 * The index at `digest` and each of its platform images carry the metadata (docs/image.md#metadata) in all
 * three places, and the base keys where docs/image.md#metadata says; returns the platform manifest digests.
 */
async function expectMetadata(digest: string, e: Expected): Promise<{ platform: string; digest: string; size: number }[]> {
  const repository = e.repository ?? OWNER_REPO;
  const keys = metadataKeys(e);
  const index = await manifest(digest, repository);
  expect(index.json.mediaType).toBe('application/vnd.oci.image.index.v1+json');
  expect(index.json.annotations).toEqual(expect.objectContaining({ ...keys, [K.baseName]: base.reference, [K.baseDigest]: base.digest }));
  if (!e.description) expect(index.json.annotations).not.toHaveProperty([K.description]);
  if (!e.licenses) expect(index.json.annotations).not.toHaveProperty([K.licenses]);
  const platforms = index.json.manifests.map((d: any) => [d.platform.os, d.platform.architecture, d.platform.variant].filter(Boolean).join('/'));
  expect(platforms).toEqual(PLATFORMS);
  const out: { platform: string; digest: string; size: number }[] = [];
  for (const [i, d] of (index.json.manifests as any[]).entries()) {
    const m = await manifest(d.digest, repository);
    const baseImage = base.platforms.find((p) => p.platform === platforms[i])!;
    expect(m.json.annotations).toEqual(expect.objectContaining({ ...keys, [K.baseName]: base.reference, [K.baseDigest]: baseImage.digest }));
    const config = await blobJson(m.json.config.digest, repository);
    expect(config.config.Labels).toEqual(expect.objectContaining(keys));
    // Labels the base wrote about itself are gone; its other labels stay (docs/image.md#metadata).
    expect(config.config.Labels['com.example.base']).toBe('yes');
    expect(config.config.Entrypoint).toEqual(['/ko-app/hello']);
    expect(config.created).toBe(e.created);
    const size = m.json.config.size + (m.json.layers as any[]).reduce((n, l) => n + l.size, 0);
    out.push({ platform: platforms[i], digest: d.digest, size });
  }
  return out;
}

/** The outputs of README.md#outputs for a one-package run, checked against what the registry holds. */
async function expectOutputs(r: ActionRun, e: Expected & { tags: string[] }) {
  const repository = e.repository ?? OWNER_REPO;
  const fullRepo = `${registry.host}/${repository}`;
  const { digest } = r.outputs;
  expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
  expect(r.outputs.image).toBe(`${fullRepo}@${digest}`);
  expect(r.outputs.version).toBe(e.version);
  expect(r.outputs.tags.split('\n')).toEqual(e.tags.map((t) => `${fullRepo}:${t}`));
  const index = await manifest(digest, repository);
  const platforms = (index.json.manifests as any[]).map((d, i) => ({ platform: PLATFORMS[i], digest: d.digest }));
  const images = JSON.parse(r.outputs.images);
  expect(images).toEqual([
    { package: PACKAGE, repository: fullRepo, digest, ref: `${fullRepo}@${digest}`, tags: e.tags, platforms },
  ]);
  const config = await blobJson((await manifest(platforms[0].digest, repository)).json.config.digest, repository);
  expect(lineRecord(r.outputs.labels)).toEqual(config.config.Labels);
  expect(lineRecord(r.outputs.annotations)).toEqual(index.json.annotations);
  const metadata = JSON.parse(r.outputs.metadata);
  expect(metadata).toEqual(
    expect.objectContaining({
      digest,
      image: `${fullRepo}@${digest}`,
      images,
      tags: e.tags.map((t) => `${fullRepo}:${t}`),
      version: e.version,
      labels: config.config.Labels,
      annotations: index.json.annotations,
    }),
  );
  return { digest, platforms };
}

/** A run that published: outputs, metadata in every place, and each tag resolving to the digest. */
async function expectPublished(r: ActionRun, e: Expected & { tags: string[] }): Promise<string> {
  expectSuccess(r);
  const { digest } = await expectOutputs(r, e);
  await expectMetadata(digest, e);
  const resolved = await resolveTags(e.tags, e.repository);
  expect(resolved).toEqual(Object.fromEntries(e.tags.map((t) => [t, digest])));
  expect(r.summary).toContain(`docker pull ${registry.host}/${e.repository ?? OWNER_REPO}@${digest}`);
  return digest;
}

const SIZE_UNITS: Record<string, number> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };

// ---------------------------------------------------------------------------------------

describe('dist/index.js under a runner environment, against a token-auth registry', () => {
  const published: Record<string, string> = {};

  test('push of tag v1.2.3: all four tags, metadata in every place, outputs, summary; the image validates and runs', async () => {
    const r = await run('push-tag-v1.2.3');
    expectSuccess(r);
    const event = loadEvent('push-tag-v1.2.3');
    const expected: Expected = {
      revision: event.env.GITHUB_SHA,
      created: utc((event.payload as any).head_commit.timestamp),
      version: '1.2.3',
      description: DESCRIPTION,
      licenses: LICENSE,
    };
    expect(expected.created).toBe('2026-01-02T03:04:05Z');
    const tags = ['1.2.3', '1.2', '1', 'latest'];
    const { digest } = await expectOutputs(r, { ...expected, tags });
    published['1.2.3'] = digest;

    // Every tag resolves to the digest output, as skopeo (not our code) reads it.
    for (const t of tags) {
      const raw = await skopeoInspectRaw(`${repo}:${t}`, registry);
      expect(`sha256:${createHash('sha256').update(raw).digest('hex')}`).toBe(digest);
    }
    expect(await tagsOf()).toEqual([...tags].sort());

    const platforms = await expectMetadata(digest, expected);

    // The job summary: reference, tags, platforms with digests and sizes, base, pull command.
    expect(r.summary).toContain(`${repo}@${digest}`);
    for (const t of tags) expect(r.summary).toContain(`\`${t}\``);
    expect(r.summary).toContain(base.reference);
    expect(r.summary).toContain(base.digest);
    expect(r.summary).toContain(`docker pull ${repo}@${digest}`);
    expect(r.summary).toMatch(/^\|.*\|\s*$/m); // a Markdown table
    for (const p of platforms) {
      const row = new RegExp(`^\\| ${p.platform} \\| \`${p.digest}\` \\| ([0-9.]+) (B|KiB|MiB|GiB) \\|$`, 'm').exec(r.summary);
      expect(row).not.toBeNull();
      const unit = SIZE_UNITS[row![2]];
      const shown = Number(row![1]) * unit;
      // Compressed: config and layers as the manifest lists them (plus the manifest, at most),
      // shown with one decimal, so within half of the last digit.
      expect(shown).toBeGreaterThanOrEqual(p.size - 0.05 * unit);
      expect(shown).toBeLessThanOrEqual(p.size + 4096 + 0.05 * unit);
    }

    // The log ends with the published references.
    expect(r.stdout).toContain(`${repo}@${digest}`);

    // Our own validator, over the registry client, with the registry's credentials.
    const client = new Registry(registry.host, {
      credentials: async () => ({ username: registry.username, password: registry.password }),
      logger: new MemoryLogger(),
    });
    const report = await validateStored(client.repository(OWNER_REPO), digest);
    expect(report).toEqual({ digest, manifests: 2, layers: expect.any(Number) });

    // skopeo copies the amd64 image out; umoci unpacks it; the binary prints the kodata greeting.
    const dir = await mkdtemp(join(tmpdir(), 'ko-annotate-e2e-'));
    try {
      const policy = join(dir, 'policy.json');
      const authfile = join(dir, 'auth.json');
      await writeFile(policy, JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
      const auth = Buffer.from(`${registry.username}:${registry.password}`).toString('base64');
      await writeFile(authfile, JSON.stringify({ auths: { [registry.host]: { auth } } }), { mode: 0o600 });
      const amd64 = platforms.find((p) => p.platform === 'linux/amd64')!;
      await exec('skopeo', ['copy', '--quiet', '--policy', policy, '--src-tls-verify=false', '--src-authfile', authfile, `docker://${repo}@${amd64.digest}`, `oci:${join(dir, 'layout')}:amd64`], { timeout: 120_000 });
      const rootfs = join(dir, 'rootfs');
      const runtime = (await umociUnpack(join(dir, 'layout'), 'amd64', rootfs)) as { process: { args: string[]; env: string[] } };
      expect(runtime.process.args).toEqual(['/ko-app/hello']);
      expect(runtime.process.env).toContain('KO_DATA_PATH=/var/run/ko');
      const { stdout } = await exec(join(rootfs, 'ko-app', 'hello'), [], { env: { KO_DATA_PATH: join(rootfs, 'var', 'run', 'ko') } });
      expect(stdout).toBe('Hello from kodata, world! (hello dev)\nbuilt for linux/amd64\n');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('then v1.3.0, then v1.2.4: floating tags only move forward', async () => {
    const v130 = await run(tagPush('v1.3.0', '2026-02-01T12:00:00Z'));
    expectSuccess(v130);
    expect(v130.outputs.version).toBe('1.3.0');
    expect(v130.outputs.tags.split('\n')).toEqual(['1.3.0', '1.3', '1', 'latest'].map((t) => `${repo}:${t}`));
    published['1.3.0'] = v130.outputs.digest;
    await expectMetadata(v130.outputs.digest, {
      revision: fakeSha('v1.3.0'),
      created: '2026-02-01T12:00:00Z',
      version: '1.3.0',
      description: DESCRIPTION,
      licenses: LICENSE,
    });

    const v124 = await run(tagPush('v1.2.4', '2026-02-02T12:00:00+05:30'));
    expectSuccess(v124);
    expect(v124.outputs.version).toBe('1.2.4');
    expect(v124.outputs.tags.split('\n')).toEqual(['1.2.4', '1.2'].map((t) => `${repo}:${t}`));
    published['1.2.4'] = v124.outputs.digest;
    await expectMetadata(v124.outputs.digest, {
      revision: fakeSha('v1.2.4'),
      created: '2026-02-02T06:30:00Z',
      version: '1.2.4',
      description: DESCRIPTION,
      licenses: LICENSE,
    });

    expect(new Set(Object.values(published)).size).toBe(3);
    expect(await resolveTags(['1', 'latest', '1.3', '1.3.0', '1.2', '1.2.4', '1.2.3'])).toEqual({
      '1': published['1.3.0'],
      latest: published['1.3.0'],
      '1.3': published['1.3.0'],
      '1.3.0': published['1.3.0'],
      '1.2': published['1.2.4'],
      '1.2.4': published['1.2.4'],
      '1.2.3': published['1.2.3'],
    });
  });

  test('re-running the v1.2.3 push: the same digest, nothing sent again; only 1.2.3 is re-tagged (1.2 is at 1.2.4)', async () => {
    const r = await run('push-tag-v1.2.3');
    expectSuccess(r);
    expect(r.outputs.digest).toBe(published['1.2.3']);
    expect(r.outputs.tags).toBe(`${repo}:1.2.3`);
    // Every blob and manifest is already there (docs/publishing.md: a re-run pushes nothing new).
    expect(r.stdout).not.toMatch(/^(uploaded|mounted|pushed) /m);
    expect(await resolveTags(['1.2.3', '1.2', '1', 'latest'])).toEqual({
      '1.2.3': published['1.2.3'],
      '1.2': published['1.2.4'],
      '1': published['1.3.0'],
      latest: published['1.3.0'],
    });
  });

  test('a non-semver tag and a branch with a slash and capitals: sanitized tags', async () => {
    const nightly = loadEvent('push-tag-nightly-7');
    await expectPublished(await run('push-tag-nightly-7'), {
      tags: ['nightly-7'],
      revision: nightly.env.GITHUB_SHA,
      created: utc((nightly.payload as any).head_commit.timestamp),
      version: 'nightly-7',
      description: DESCRIPTION,
      licenses: LICENSE,
    });
    const feature = loadEvent('push-branch-feature-Foo_bar');
    await expectPublished(await run('push-branch-feature-Foo_bar'), {
      tags: ['feature-foo_bar', `sha-${feature.env.GITHUB_SHA.slice(0, 7)}`],
      revision: feature.env.GITHUB_SHA,
      created: utc((feature.payload as any).head_commit.timestamp),
      version: 'feature-foo_bar',
      description: DESCRIPTION,
      licenses: LICENSE,
    });
  });

  test('tag v0.4.1 in a repository without releases: 0.4.1, 0.4 and latest, never 0', async () => {
    const repository = `zero/${OWNER_REPO}`;
    const event = loadEvent('push-tag-v0.4.1');
    const r = await run('push-tag-v0.4.1', { repository: `${registry.host}/${repository}` });
    await expectPublished(r, {
      repository,
      tags: ['0.4.1', '0.4', 'latest'],
      revision: event.env.GITHUB_SHA,
      created: '2025-11-20T14:15:00Z',
      version: '0.4.1',
      description: DESCRIPTION,
      licenses: LICENSE,
    });
    expect(await tagsOf(repository)).toEqual(['0.4', '0.4.1', 'latest']);
  });

  test('prerelease v2.0.0-rc.1: only its own tag; 2, 2.0 and latest are not touched', async () => {
    const event = loadEvent('push-tag-v2.0.0-rc.1');
    const before = await tagsOf();
    const r = await run('push-tag-v2.0.0-rc.1');
    await expectPublished(r, {
      tags: ['2.0.0-rc.1'],
      revision: event.env.GITHUB_SHA,
      created: '2026-01-10T12:00:30Z',
      version: '2.0.0-rc.1',
      description: DESCRIPTION,
      licenses: LICENSE,
    });
    expect(await tagsOf()).toEqual([...before, '2.0.0-rc.1'].sort());
    expect(await resolveTags(['latest', '1'])).toEqual({ latest: published['1.3.0'], '1': published['1.3.0'] });
  });

  test('branch push to main: main and sha-<7 hex>, no latest', async () => {
    const event = loadEvent('push-branch-main');
    const r = await run('push-branch-main');
    await expectPublished(r, {
      tags: ['main', `sha-${event.env.GITHUB_SHA.slice(0, 7)}`],
      revision: event.env.GITHUB_SHA,
      created: '2026-01-02T03:04:05Z',
      version: 'main',
      description: DESCRIPTION,
      licenses: LICENSE,
    });
    expect((await resolveTags(['latest'])).latest).toBe(published['1.3.0']);
    expect(r.apiRequests).toEqual([]);
  });

  test('release v1.2.3 in a repository without releases: 1.2.3, 1.2, 1, latest; created from git', async () => {
    const repository = `releases/${OWNER_REPO}`;
    const event = loadEvent('release-published-v1.2.3');
    const r = await run('release-published-v1.2.3', { repository: `${registry.host}/${repository}` });
    // No head_commit in a release payload: the time is git's, of the commit at GITHUB_SHA.
    await expectPublished(r, {
      repository,
      tags: ['1.2.3', '1.2', '1', 'latest'],
      revision: event.env.GITHUB_SHA,
      created: utc(workspace.commitTime),
      version: '1.2.3',
      description: DESCRIPTION,
      licenses: LICENSE,
    });
  });

  test('workflow_dispatch on main, then on tag v1.4.0 (a tag push: 1 and latest move forward)', async () => {
    const main = loadEvent('workflow-dispatch-main');
    const onMain = await run('workflow-dispatch-main');
    await expectPublished(onMain, {
      tags: ['main', `sha-${main.env.GITHUB_SHA.slice(0, 7)}`],
      revision: main.env.GITHUB_SHA,
      created: utc(workspace.commitTime),
      version: 'main',
      description: DESCRIPTION,
      licenses: LICENSE,
    });

    const tag = loadEvent('workflow-dispatch-tag-v1.4.0');
    const onTag = await run('workflow-dispatch-tag-v1.4.0');
    const digest = await expectPublished(onTag, {
      tags: ['1.4.0', '1.4', '1', 'latest'],
      revision: tag.env.GITHUB_SHA,
      created: utc(workspace.commitTime),
      version: '1.4.0',
      description: DESCRIPTION,
      licenses: LICENSE,
    });
    expect(await resolveTags(['1.3', '1.2'])).toEqual({ '1.3': published['1.3.0'], '1.2': published['1.2.4'] });
    published['1.4.0'] = digest;
  });

  test('schedule on main: description and license from the GitHub API with the github-token (masked, never the registry\'s token), created from git', async () => {
    const event = loadEvent('schedule-main');
    const apiToken = 'ghs_e2e-token-for-the-api-only';
    const r = await run('schedule-main', { 'github-token': apiToken }, {
      api: (path) =>
        path === '/repos/Octo-Org/Hello-World'
          ? { status: 200, body: { full_name: 'Octo-Org/Hello-World', description: 'Said hello, via the API', license: { spdx_id: 'MIT' } } }
          : undefined,
    });
    await expectPublished(r, {
      tags: ['main', `sha-${event.env.GITHUB_SHA.slice(0, 7)}`],
      revision: event.env.GITHUB_SHA,
      created: utc(workspace.commitTime),
      version: 'main',
      description: 'Said hello, via the API',
      licenses: 'MIT',
    });
    expect(r.apiRequests.map((q) => `${q.method} ${q.path}`)).toEqual(['GET /repos/Octo-Org/Hello-World']);
    // The registry's `token` stays with its host; the API gets `github-token` (docs/publishing.md#credentials).
    expect(r.apiRequests[0].headers.authorization).toBe(`token ${apiToken}`);
    expectTokenKeptSecret(r, apiToken);
  });

  test('pull_request #42: built and digested, nothing pushed; revision is the PR head', async () => {
    const event = loadEvent('pull-request-42');
    const head = (event.payload as { pull_request: { head: { sha: string } } }).pull_request.head.sha;
    const reposBefore = await catalog();
    const tagsBefore = await Promise.all(reposBefore.map(async (name) => [name, await resolveTags(await tagsOf(name), name)]));

    const requestsBefore = registry.tokenRequests.length;
    const r = await run('pull-request-42');
    expectSuccess(r);
    // With push off the target is not even read (docs/tags.md: its tag list is not consulted); only
    // the base is pulled.
    expect(registry.tokenRequests.slice(requestsBefore).flatMap((q) => q.scopes)).not.toContainEqual(expect.stringContaining(OWNER_REPO));
    const { digest } = r.outputs;
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(r.outputs.image).toBe(`${repo}@${digest}`);
    expect(r.outputs.version).toBe('pr-42');
    expect(r.outputs.tags).toBe(`${repo}:pr-42`);
    const images = JSON.parse(r.outputs.images);
    expect(images).toEqual([
      {
        package: PACKAGE,
        repository: repo,
        digest,
        ref: `${repo}@${digest}`,
        tags: ['pr-42'],
        platforms: PLATFORMS.map((platform) => ({ platform, digest: expect.stringMatching(/^sha256:[0-9a-f]{64}$/) })),
      },
    ]);
    const expected = metadataKeys({ revision: head, created: utc(workspace.commitTime), version: 'pr-42', description: DESCRIPTION, licenses: LICENSE });
    expect(lineRecord(r.outputs.labels)).toEqual(expect.objectContaining(expected));
    expect(lineRecord(r.outputs.annotations)).toEqual(expect.objectContaining({ ...expected, [K.baseName]: base.reference, [K.baseDigest]: base.digest }));
    expect(JSON.parse(r.outputs.metadata)).toEqual(expect.objectContaining({ digest, pushed: false }));
    expect(r.summary).toContain(`${repo}@${digest}`);
    for (const p of images[0].platforms) expect(r.summary).toContain(p.digest);
    expect(r.summary).not.toContain('docker pull');

    // Nothing was written: the same repositories, the same tags on the same digests; the digest
    // is in no repository.
    const reposAfter = await catalog();
    expect(reposAfter).toEqual(reposBefore);
    const tagsAfter = await Promise.all(reposAfter.map(async (name) => [name, await resolveTags(await tagsOf(name), name)]));
    expect(tagsAfter).toEqual(tagsBefore);
    const res = await registryFetch(`/v2/${OWNER_REPO}/manifests/${digest}`, `repository:${OWNER_REPO}:pull`, { method: 'HEAD', headers: { Accept: ACCEPT } });
    expect(res.status).toBe(404);
  });

  test('a wrong token: exit 1, the registry and repository named, the 401 not retried', async () => {
    const wrong = 'wrong-' + registry.password.split('').reverse().join('');
    const tagsBefore = await resolveTags(await tagsOf());
    const before = registry.tokenRequests.length;
    // The base by another name of the same registry, so that it is pulled anonymously (the token
    // is for the repository's host only) and the run gets as far as the push.
    const r = await runAction({
      event: 'push-tag-v1.2.3',
      inputs: withInputs({ token: wrong, 'base-image': base.reference.replace(/^127\.0\.0\.1:/, 'localhost:') }),
      registry,
      workspace: workspace.dir,
    });
    expectTokenKeptSecret(r, wrong);
    expect(r.code).toBe(1);
    const errors = r.stdout.split('\n').filter((l) => l.startsWith('::error'));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain(`${registry.host}/${OWNER_REPO}`);
    expect(errors[0]).toMatch(/401|unauthorized|invalid credentials/i);
    // Each scope is refused once and never asked for again: the read-back of the tags' images
    // while Go builds asks for pull, the uploads for pull,push.
    const refused = registry.tokenRequests.slice(before).filter((q) => q.status === 401);
    expect(refused.map((q) => q.scopes.join(' ')).sort()).toEqual([`repository:${OWNER_REPO}:pull`, `repository:${OWNER_REPO}:pull,push`]);
    expect(r.outputsFile).toBe('');
    expect(await resolveTags(await tagsOf())).toEqual(tagsBefore);
  });

  test('bad input fails before any build or registry request, naming the input and the value', async () => {
    const before = registry.tokenRequests.length;
    const r = await run('push-tag-v1.2.3', { platforms: 'linux/amd65' });
    expect(r.code).toBe(1);
    const errors = r.stdout.split('\n').filter((l) => l.startsWith('::error'));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain('input "platforms"');
    expect(errors[0]).toContain('linux/amd65');
    expect(r.stdout).not.toContain('::group::Build');
    expect(registry.tokenRequests.length).toBe(before);
    expect(r.outputsFile).toBe('');
  });

  test('a compile error: exit 1 with the compiler output, and an error annotation on the file', async () => {
    const broken = await createWorkspace();
    try {
      const main = join(broken.dir, 'cmd', 'hello', 'main.go');
      await writeFile(main, (await readFile(main, 'utf8')).replace('fmt.Println(greet.Line(greeting, name, version))', 'fmt.Println(greet.Line(greeting, name, version, undefinedThing))'));
      const before = registry.tokenRequests.length;
      const r = await runAction({ event: 'push-tag-v1.2.3', inputs: withInputs(), registry, workspace: broken.dir });
      expectTokenKeptSecret(r, registry.password);
      expect(r.code).toBe(1);
      const line = (await readFile(main, 'utf8')).split('\n').findIndex((l) => l.includes('undefinedThing')) + 1;
      // `::error title=…,file=…,line=…,col=…::message`, the path relative to the workspace.
      const annotation = r.stdout
        .split('\n')
        .find((l) => /^::error [^:]*file=cmd\/hello\/main\.go/.test(l) && l.includes('undefinedThing'));
      expect(annotation).toBeDefined();
      const props = Object.fromEntries(/^::error ([^:]*)::/.exec(annotation!)![1].split(',').map((p) => p.split('=')));
      expect(props).toEqual(expect.objectContaining({ file: 'cmd/hello/main.go', line: String(line), col: expect.stringMatching(/^\d+$/) }));
      expect(r.stdout).toMatch(/::error::.*undefinedThing/);
      // Nothing was pushed: the registry saw no push-scoped request for the repository.
      expect(registry.tokenRequests.slice(before).flatMap((q) => q.scopes)).not.toContainEqual(`repository:${OWNER_REPO}:pull,push`);
    } finally {
      await broken.cleanup();
    }
  });

  test('with the default sbom: spdx, each platform image gets an SPDX referrer, listed in the images output', async () => {
    const sbomRepo = `${registry.host}/sboms/${OWNER_REPO}`;
    // Without the `sbom` input: action.yml's default applies.
    const inputs = { ...withInputs({ repository: sbomRepo }) } as Record<string, string>;
    delete inputs.sbom;
    const r = await runAction({ event: 'push-branch-main', inputs, registry, workspace: workspace.dir });
    expectTokenKeptSecret(r, registry.password);
    expectSuccess(r);
    const [image] = JSON.parse(r.outputs.images) as { platforms: { platform: string; digest: string }[]; sbom: { platform: string; digest: string }[] }[];
    expect(image.sbom.map((s) => s.platform)).toEqual(PLATFORMS);
    const repoPath = `sboms/${OWNER_REPO}`;
    for (const [i, p] of image.platforms.entries()) {
      // distribution 2.8 has no referrers API: the referrers tag schema names the subject.
      const referrers = await manifest(`sha256-${p.digest.slice('sha256:'.length)}`, repoPath);
      expect(referrers.json.manifests).toEqual([expect.objectContaining({ digest: image.sbom[i].digest, artifactType: 'application/spdx+json' })]);
      const referrer = await manifest(image.sbom[i].digest, repoPath);
      expect(referrer.json.subject.digest).toBe(p.digest);
      const doc = await blobJson(referrer.json.layers[0].digest, repoPath);
      expect(doc.spdxVersion).toBe('SPDX-2.3');
      expect(doc.packages.map((q: { name: string }) => q.name)).toEqual(expect.arrayContaining([MODULE, 'example.com/greet']));
    }
    // Never inside the image index (docs/image.md#sbom).
    const index = await manifest(r.outputs.digest, repoPath);
    expect(index.json.manifests.map((d: { digest: string }) => d.digest)).toEqual(image.platforms.map((p) => p.digest));
  });
});
