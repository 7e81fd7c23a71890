// Audit of SPEC §4–§5 (tags, publishing, credentials, failures): each case here once failed.
import { afterEach, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryLogger } from '../src/log.js';
import { resolveBase } from '../src/oci/base.js';
import { MediaType } from '../src/oci/spec.js';
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
  const dir = await mkdtemp(join(tmpdir(), 'audit-publish-'));
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

describe('the publish time budget (SPEC §1 timeout, §5.2)', () => {
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
