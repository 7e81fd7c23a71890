// Audit of docs/tags.md–§5 (tags, publishing, credentials, failures): each case here once failed.
import { afterEach, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
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

describe('the registry token goes to the repository host only, the github-token to the GitHub API only (docs/publishing.md#credentials)', () => {
  const SECRET = 'dckr_pat_meant-for-docker-hub-only';
  const API_TOKEN = 'ghs_meant-for-the-api-only';

  /** The requests prepareRun makes on a schedule run (no repository in the payload), at a loopback stand-in of GITHUB_API_URL. */
  async function apiRequests(raw: Record<string, string>, env: Record<string, string> = {}) {
    const calls: { url: string; authorization: string | undefined }[] = [];
    const api = createServer((req, res) => {
      calls.push({ url: req.url ?? '', authorization: req.headers.authorization });
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ description: 'hello', license: { spdx_id: 'MIT' } }));
    });
    await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
    try {
      const inputs = parseInputs({ push: 'false', sbom: 'none', token: SECRET, username: 'me', ...raw });
      const runnerEnv = {
        GITHUB_ACTIONS: 'true',
        GITHUB_REPOSITORY: 'octo-org/hello',
        GITHUB_SHA: 'a'.repeat(40),
        GITHUB_REF: 'refs/heads/main',
        GITHUB_EVENT_NAME: 'schedule',
        GITHUB_API_URL: `http://127.0.0.1:${(api.address() as AddressInfo).port}/api/v3`,
        SOURCE_DATE_EPOCH: '1767225600',
        ...env,
      };
      const prepared = await prepareRun(inputs, runnerEnv, {}, tmpdir(), { logger: new MemoryLogger(), run: async () => ({ code: 1, stdout: '' }) });
      return { calls, prepared };
    } finally {
      api.closeAllConnections();
      await new Promise((resolve) => api.close(resolve));
    }
  }

  it.each([
    ['docker.io/me/app'],
    ['registry.example.com/me/app'],
    ['ghcr.io/octo-org/hello'],
  ])('the API gets the github-token, never the registry token, when the repository is %s', async (repository) => {
    const { calls, prepared } = await apiRequests({ repository, 'github-token': API_TOKEN });
    expect(calls).toEqual([{ url: '/api/v3/repos/octo-org/hello', authorization: `token ${API_TOKEN}` }]);
    expect(prepared.provenance.description).toBe('hello');
  });

  it('without a github-token the lookup is anonymous, even with a ghcr.io registry token', async () => {
    const { calls, prepared } = await apiRequests({ repository: 'ghcr.io/octo-org/hello' });
    expect(calls).toEqual([{ url: '/api/v3/repos/octo-org/hello', authorization: undefined }]);
    expect(prepared.provenance.licenses).toBe('MIT');
  });

  it('the registry gets the registry token, never the github-token', async () => {
    const registry = await FakeRegistry.start({ auth: 'basic' });
    cleanups.push(() => registry.close());
    const deps = realDeps({
      logger: new MemoryLogger(),
      env: { DOCKER_CONFIG: await emptyDockerConfig() },
      username: 'me',
      token: SECRET,
      githubToken: API_TOKEN,
      targetRepository: `${registry.host}/me/app`,
    });
    // The fake knows no such user and refuses: what matters is what was sent.
    await deps.registryTarget(`${registry.host}/me/app`).listTags().catch(() => undefined);
    const sent = registry.requests.map((r) => r.headers.authorization ?? '').join('\n');
    expect(sent).toContain(`Basic ${Buffer.from(`me:${SECRET}`).toString('base64')}`);
    expect(sent).not.toContain(API_TOKEN);
    expect(sent).not.toContain(Buffer.from(`me:${API_TOKEN}`).toString('base64'));
  });
});
