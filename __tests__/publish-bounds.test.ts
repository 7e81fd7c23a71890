// Audit of docs/tags.md–§5 (tags, publishing, credentials, failures): each case here once failed.
import { afterEach, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseInputs } from '../src/inputs.js';
import { MemoryLogger } from '../src/log.js';
import { resolveBase } from '../src/oci/base.js';
import { MediaType } from '../src/oci/spec.js';
import { prepareRun } from '../src/prepare.js';
import { realDeps } from '../src/wiring.js';
import { FakeRegistry, sha256 } from './support/fake-registry.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((c) => c()));
});

async function start() {
  const fake = await FakeRegistry.start();
  cleanups.push(() => fake.close());
  return fake;
}

/** An empty Docker config, so that the developer's own logins play no part. */
async function emptyDockerConfig() {
  const dir = await mkdtemp(join(tmpdir(), 'publish-bounds-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A one-layer linux/amd64 image in `fake`'s `repo`, tagged `v1`; returns the layer's digest. */
function addBaseImage(fake: FakeRegistry, repo: string): string {
  const layer = Buffer.from('not really a tar, but bytes with a digest');
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256(layer)] }, config: {} }));
  const layerDigest = fake.addBlob(repo, layer);
  const configDigest = fake.addBlob(repo, config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, digest: configDigest, size: config.length },
      layers: [{ mediaType: MediaType.OciLayerGzip, digest: layerDigest, size: layer.length }],
    }),
  );
  fake.addManifest(repo, manifest, MediaType.OciManifest, 'v1');
  return layerDigest;
}

describe('the publish time budget (README.md#inputs `timeout`, docs/reliability.md)', () => {
  it('also bounds reading a base layer from its registry while it is uploaded', async () => {
    const base = await start();
    const target = await start();
    const layerDigest = addBaseImage(base, 'library/base');
    const deps = realDeps({
      logger: new MemoryLogger(),
      env: { DOCKER_CONFIG: await emptyDockerConfig() },
      targetRepository: `${target.host}/app`,
      timeoutMs: 1000,
    });
    const opened = await deps.openBase(`${base.host}/library/base:v1`);
    const { images } = await resolveBase(opened.source, `${base.host}/library/base:v1`, opened.reference, 'all');
    // The base registry takes the layer's GET and never answers it.
    base.inject({ method: 'GET', path: new RegExp(`/blobs/${layerDigest}$`), respond: 'hang', times: 100 });

    const started = Date.now();
    const push = deps.registryTarget(`${target.host}/app`).putContent(images[0]);
    const outcome = await Promise.race([
      push.then(
        () => 'pushed',
        (err: Error) => err.message,
      ),
      new Promise<string>((resolve) => setTimeout(() => resolve('still running'), 8000).unref()),
    ]);
    expect(outcome).toMatch(/time budget ran out/);
    expect(Date.now() - started).toBeLessThan(8000);
    // Nothing names incomplete content.
    expect(target.seen('PUT', /\/manifests\//)).toEqual([]);
  }, 20_000);
});

describe('the token goes to the repository host only (docs/publishing.md#credentials)', () => {
  const SECRET = 'dckr_pat_meant-for-docker-hub-only';

  /** The GitHub API requests prepareRun makes on a schedule run (no repository in the payload). */
  async function apiRequests(repository: string | undefined, env: Record<string, string> = {}) {
    const calls: { url: string; authorization: string | null }[] = [];
    const fetch = (async (url: string | URL | Request, init?: RequestInit) => {
      calls.push({ url: String(url), authorization: new Headers(init?.headers).get('authorization') });
      return new Response(JSON.stringify({ description: 'hello', license: { spdx_id: 'MIT' } }), { status: 200, headers: { 'Content-Type': 'application/json' } });
    }) as typeof globalThis.fetch;
    const inputs = parseInputs({ push: 'false', sbom: 'none', token: SECRET, username: 'me', ...(repository && { repository }) });
    const runnerEnv = {
      GITHUB_ACTIONS: 'true',
      GITHUB_REPOSITORY: 'octo-org/hello',
      GITHUB_SHA: 'a'.repeat(40),
      GITHUB_REF: 'refs/heads/main',
      GITHUB_EVENT_NAME: 'schedule',
      SOURCE_DATE_EPOCH: '1767225600',
      ...env,
    };
    const prepared = await prepareRun(inputs, runnerEnv, {}, tmpdir(), { logger: new MemoryLogger(), fetch, run: async () => ({ code: 1, stdout: '' }) });
    return { calls, prepared };
  }

  it.each([
    ['docker.io/me/app', {}],
    ['registry.example.com/me/app', {}],
    [undefined, { KO_DOCKER_REPO: 'quay.io/me/app' }],
    // A ghcr.io token is a GitHub.com one: a GHES API is another host.
    ['ghcr.io/octo-org/hello', { GITHUB_API_URL: 'https://ghes.example.com/api/v3', GITHUB_SERVER_URL: 'https://ghes.example.com' }],
  ])('not to the GitHub API when the repository is %s %j: the lookup is anonymous', async (repository, env) => {
    const { calls, prepared } = await apiRequests(repository, env);
    expect(calls).toHaveLength(1);
    expect(calls[0].authorization).toBeNull();
    expect(prepared.provenance.description).toBe('hello');
  });

  it('to GitHub.com’s API with a ghcr.io token, the registry’s own service (and by default)', async () => {
    for (const repository of ['ghcr.io/octo-org/hello', undefined]) {
      const { calls } = await apiRequests(repository);
      expect(calls).toEqual([{ url: 'https://api.github.com/repos/octo-org/hello', authorization: `Bearer ${SECRET}` }]);
    }
  });
});
