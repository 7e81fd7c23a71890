import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { MemoryLogger } from '../src/log.js';
import { resolveBase } from '../src/oci/base.js';
import { makeIndex, mutate, scratch } from '../src/oci/image.js';
import { writeLayer, type Layer } from '../src/oci/layer.js';
import { LayoutSource, LayoutWriter } from '../src/oci/layout.js';
import { MediaType } from '../src/oci/spec.js';
import { readAll } from '../src/oci/store.js';
import { validateStored } from '../src/oci/validate.js';
import { progress, RegistryPublisher } from '../src/publish/registry.js';
import { formatBytes, mapLimit } from '../src/util.js';
import { Registry, type RegistryOptions } from '../src/registry/client.js';
import { targetCredentials } from '../src/registry/credentials.js';
import { RegistryError } from '../src/registry/errors.js';
import { RetryPolicy } from '../src/registry/retry.js';
import { FakeRegistry, type FakeRegistryOptions } from './support/fake-registry.js';

const AMD64 = { os: 'linux', architecture: 'amd64' };
const ARM64 = { os: 'linux', architecture: 'arm64' };

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ko-annotate-publish-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const servers: FakeRegistry[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function start(opts: FakeRegistryOptions = {}) {
  const fake = await FakeRegistry.start({ users: { u: 'p' }, ...opts });
  servers.push(fake);
  return fake;
}

function registryFor(fake: FakeRegistry, opts: Partial<RegistryOptions> = {}) {
  const logger = new MemoryLogger();
  const registry = new Registry(fake.host, {
    credentials: targetCredentials(fake.host, 'u', 'p'),
    logger,
    retry: new RetryPolicy({ sleep: async () => {}, random: () => 0 }),
    ...opts,
  });
  return { registry, logger };
}

let layerCount = 0;
/** A gzip layer of one file with `size` random (incompressible) bytes. */
async function randomLayer(size: number): Promise<Layer> {
  const bytes = randomBytes(size);
  const name = `l${layerCount++}`;
  return writeLayer([{ type: 'file', path: `ko-app/${name}`, mode: 0o555, size, open: () => Readable.from([bytes]) }], join(dir, `${name}.tar.gz`), MediaType.OciLayerGzip);
}

/** Two platform images sharing one layer, each with its own, under an index. */
async function multiPlatform() {
  const shared = await randomLayer(3000);
  const images = [AMD64, ARM64].map(async (p) => mutate(scratch(p), { layers: [shared, await randomLayer(2000)] }));
  const [amd, arm] = await Promise.all(images);
  return { shared, amd, arm, index: makeIndex('oci', [amd, arm]) };
}

describe('RegistryPublisher.putContent', () => {
  it('pushes blobs, then platform manifests, then the index, all by digest; no tags', async () => {
    const fake = await start({ auth: 'bearer' });
    const { registry } = registryFor(fake);
    const { amd, arm, index } = await multiPlatform();
    const publisher = new RegistryPublisher(registry.repository('o/app'), { logger: new MemoryLogger() });
    await publisher.putContent(index);

    // 3 distinct layers (the shared one once) + 2 configs.
    expect(publisher.counters).toMatchObject({ blobsUploaded: 5, blobsMounted: 0, blobsSkipped: 0, manifestsPushed: 3, manifestsSkipped: 0 });
    expect(fake.seen('POST')).toHaveLength(5);
    const puts = fake.requests.filter((r) => r.method === 'PUT' && r.headers.authorization);
    const kinds = puts.map((r) => (r.path.includes('/blobs/uploads/') ? 'blob' : r.path.replace(/^.*\/manifests\//, '')));
    expect(kinds).toEqual(['blob', 'blob', 'blob', 'blob', 'blob', amd.digest, arm.digest, index.digest]);
    expect(fake.tags.get('o/app')?.size ?? 0).toBe(0);
    await validateStored(registry.repository('o/app'), index.digest);
  });

  it('checks the index once, then its platform manifests and blobs in one pass, before any upload', async () => {
    const fake = await start();
    const { registry } = registryFor(fake);
    const { amd, arm, index } = await multiPlatform();
    const publisher = new RegistryPublisher(registry.repository('o/app'), { logger: new MemoryLogger() });
    await publisher.putContent(index);

    const requests = fake.requests.map((r) => `${r.method} ${r.path}`);
    // The index's HEAD said it is missing; its PUT needs no second HEAD.
    expect(fake.seen('HEAD', new RegExp(`/manifests/${index.digest}$`))).toHaveLength(1);
    expect(requests[0]).toBe(`HEAD /v2/o/app/manifests/${index.digest}`);
    // Each platform manifest and each of the 5 blobs is checked once, all before the first upload.
    const heads = fake.seen('HEAD').map((r) => r.path.replace(/^\/v2\/o\/app\//, ''));
    expect(heads.slice(1).sort()).toEqual(
      [`manifests/${amd.digest}`, `manifests/${arm.digest}`, ...new Set([...amd.layers, ...arm.layers].map((l) => `blobs/${l.digest}`)), `blobs/${amd.configDigest}`, `blobs/${arm.configDigest}`].sort(),
    );
    const firstUpload = requests.findIndex((r) => r.startsWith('POST '));
    expect(firstUpload).toBeGreaterThan(0);
    expect(requests.slice(firstUpload).filter((r) => r.startsWith('HEAD '))).toEqual([]);
  });

  it('neither checks nor uploads the layers this run stored in the repository during the build', async () => {
    const fake = await start();
    const { registry } = registryFor(fake);
    const { shared, amd, arm } = await multiPlatform();
    // What Repository.uploadWhileWritten leaves behind: the blob in the repository, the layer saying so.
    const storedIn = async (l: Layer, where: { registry: string; repository: string }): Promise<Layer> => {
      fake.addBlob(where.repository, await readAll(await l.open()));
      return { ...l, stored: where };
    };
    const here = { registry: fake.host, repository: 'o/app' };
    const amdOwn = await storedIn(amd.layers[1], here);
    const armOwn = await storedIn(arm.layers[1], here);
    // Stored by this run, but elsewhere: still checked here, and uploaded.
    const elsewhere = await storedIn(shared, { registry: fake.host, repository: 'o/other' });
    const images = [mutate(scratch(AMD64), { layers: [elsewhere, amdOwn] }), mutate(scratch(ARM64), { layers: [elsewhere, armOwn] })];
    const index = makeIndex('oci', images);
    const publisher = new RegistryPublisher(registry.repository('o/app'), { logger: new MemoryLogger() });
    await publisher.putContent(index);

    for (const l of [amdOwn, armOwn]) expect(fake.seen(undefined, new RegExp(l.digest))).toEqual([]);
    expect(fake.seen('HEAD', new RegExp(`/blobs/${shared.digest}$`))).toHaveLength(1);
    expect(publisher.counters).toMatchObject({ blobsUploadedInBuild: 2, blobsUploaded: 3, blobsSkipped: 0, bytesUploaded: shared.size + images[0].configBytes.length + images[1].configBytes.length, manifestsPushed: 3 });
    await validateStored(registry.repository('o/app'), index.digest);
  });

  /** A fresh fake with the multi-platform index pushed to o/app; `before`: the requests so far. */
  async function pushedIndex() {
    const fake = await start();
    const { registry, logger } = registryFor(fake);
    const { index } = await multiPlatform();
    const publisher = new RegistryPublisher(registry.repository('o/app'), { logger });
    await publisher.putContent(index);
    return { fake, logger, index, publisher, before: fake.requests.length };
  }

  it('tags last, pointing at the index, and lists them', async () => {
    const { fake, logger, index, publisher } = await pushedIndex();
    await publisher.putTags(index, ['1.2.3', 'latest']);
    expect(Object.fromEntries(fake.tags.get('o/app') ?? [])).toEqual({ '1.2.3': index.digest, latest: index.digest });
    expect((await publisher.listTags()).sort()).toEqual(['1.2.3', 'latest']);
    expect(fake.manifests.get('o/app')?.get(index.digest)?.mediaType).toBe(MediaType.OciIndex);
    expect(logger.lines).toContain(`tagged ${fake.host}/o/app:latest → ${index.digest}`);
    await expect(publisher.putTags(index, ['-bad'])).rejects.toThrow('"-bad" is not a valid tag');
  });

  it('sends nothing for content a tag was read naming, and HEADs it when a tag named something else', async () => {
    const { fake, logger, index, publisher, before } = await pushedIndex();
    await publisher.putContent(index, new Map([['1.2.3', index.digest]]));
    expect(fake.requests.length).toBe(before);
    expect(logger.lines).toContain(`${fake.host}/o/app@${index.digest} is already there, with all its content (1.2.3 names it)`);
    await publisher.putContent(index, new Map([['1.2.3', `sha256:${'0'.repeat(64)}`]]));
    const checked = fake.requests.slice(before).map((r) => `${r.method} ${r.path}`);
    expect(checked[0]).toBe(`HEAD /v2/o/app/manifests/${index.digest}`);
    expect(checked.filter((r) => !r.startsWith('HEAD '))).toEqual([]);
  });

  it('leaves a tag that already names the artifact as it is, and writes one that names something else', async () => {
    const { fake, logger, index, publisher, before } = await pushedIndex();
    const other = `sha256:${'0'.repeat(64)}`;
    await publisher.putTags(index, ['1.2.3', 'latest', 'main'], new Map([['1.2.3', index.digest], ['latest', other]]));
    expect(fake.requests.slice(before).map((r) => `${r.method} ${r.path}`).sort()).toEqual(['PUT /v2/o/app/manifests/latest', 'PUT /v2/o/app/manifests/main']);
    expect(publisher.counters).toMatchObject({ tagsWritten: 2, tagsUnchanged: 1 });
    expect(logger.lines).toContain(`${fake.host}/o/app:1.2.3 already names ${index.digest}`);
  });

  it("checks the artifact's digest in the same round trip as its platform manifests and blobs", async () => {
    const fake = await start();
    const { registry } = registryFor(fake);
    const { index } = await multiPlatform();
    // The index's HEAD is answered only once another check has arrived (or after 2 s).
    let together = false;
    fake.inject({
      method: 'HEAD',
      path: new RegExp(`/manifests/${index.digest}$`),
      respond: async () => {
        for (let waited = 0; waited < 2000 && !together; waited += 10) {
          together = fake.seen('HEAD').length > 1;
          if (!together) await new Promise((r) => setTimeout(r, 10));
        }
        return { status: 404 };
      },
    });
    await new RegistryPublisher(registry.repository('o/app'), { logger: new MemoryLogger() }).putContent(index);
    expect(together).toBe(true);
    await validateStored(registry.repository('o/app'), index.digest);
  });

  it('uploads nothing the second time', async () => {
    const fake = await start();
    const { registry } = registryFor(fake);
    const { index } = await multiPlatform();
    await new RegistryPublisher(registry.repository('o/app'), { logger: new MemoryLogger() }).putContent(index);
    const before = fake.requests.length;

    const again = new RegistryPublisher(registry.repository('o/app'), { logger: new MemoryLogger() });
    await again.putContent(index);
    expect(again.counters).toMatchObject({ blobsUploaded: 0, blobsSkipped: 0, bytesUploaded: 0, manifestsPushed: 0, manifestsSkipped: 1 });
    // The index is there by digest, so all it references is. Its HEAD goes out first, with the
    // other checks of the first round trip (the publisher's concurrency, 4); nothing follows.
    const second = fake.requests.slice(before).map((r) => `${r.method} ${r.path}`);
    expect(second[0]).toBe(`HEAD /v2/o/app/manifests/${index.digest}`);
    expect(second.length).toBeLessThanOrEqual(4);
    expect(second.filter((r) => !r.startsWith('HEAD '))).toEqual([]);
  });

  it('pushes only the index when its platform manifests are there, without checking their blobs', async () => {
    const fake = await start();
    const { registry } = registryFor(fake);
    const { index } = await multiPlatform();
    const first = new RegistryPublisher(registry.repository('o/app'), { logger: new MemoryLogger() });
    for (const img of index.images) await first.putContent(img);
    const before = fake.requests.length;
    // One at a time, so that every manifest's HEAD has answered before any blob's turn.
    const again = new RegistryPublisher(registry.repository('o/app'), { logger: new MemoryLogger(), concurrency: 1 });
    await again.putContent(index);
    expect(again.counters).toMatchObject({ blobsUploaded: 0, blobsSkipped: 5, manifestsPushed: 1, manifestsSkipped: 2 });
    expect(fake.requests.slice(before).map((r) => `${r.method} ${r.path.replace(/^\/v2\/o\/app\//, '')}`)).toEqual([
      `HEAD manifests/${index.digest}`,
      ...index.images.map((img) => `HEAD manifests/${img.digest}`),
      `PUT manifests/${index.digest}`,
    ]);
  });

  it('when one platform manifest is there, checks and uploads only what the missing one needs', async () => {
    const fake = await start();
    const { registry } = registryFor(fake);
    const { shared, amd, arm, index } = await multiPlatform();
    await new RegistryPublisher(registry.repository('o/app'), { logger: new MemoryLogger() }).putContent(amd);
    const before = fake.requests.length;
    const again = new RegistryPublisher(registry.repository('o/app'), { logger: new MemoryLogger(), concurrency: 1 });
    await again.putContent(index);
    const second = fake.requests.slice(before);
    // amd64's own layer and config: neither checked nor uploaded; its manifest not put again.
    for (const digest of [amd.layers[1].digest, amd.configDigest, amd.digest]) {
      expect(second.filter((r) => r.path.includes(digest) && !(r.method === 'HEAD' && r.path.endsWith(`/manifests/${amd.digest}`)))).toEqual([]);
    }
    // The shared layer is checked (arm64 needs it) and found there; arm64's own blobs go up.
    expect(second.filter((r) => r.method === 'HEAD' && r.path.endsWith(`/blobs/${shared.digest}`))).toHaveLength(1);
    expect(again.counters).toMatchObject({ blobsUploaded: 2, blobsSkipped: 3, manifestsPushed: 2, manifestsSkipped: 1 });
    const puts = second.filter((r) => r.method === 'PUT').map((r) => (r.path.includes('/blobs/uploads/') ? 'blob' : r.path.replace(/^.*\/manifests\//, '')));
    expect(puts).toEqual(['blob', 'blob', arm.digest, index.digest]);
    await validateStored(registry.repository('o/app'), index.digest);
  });

  it('pushes a single image (no index)', async () => {
    const fake = await start();
    const { registry } = registryFor(fake);
    const image = mutate(scratch(AMD64), { layers: [await randomLayer(100)] });
    const publisher = new RegistryPublisher(registry.repository('app'), { logger: new MemoryLogger() });
    await publisher.putContent(image);
    await publisher.putTags(image, ['v1']);
    expect(publisher.counters).toMatchObject({ blobsUploaded: 2, manifestsPushed: 1 });
    expect(fake.tags.get('app')?.get('v1')).toBe(image.digest);
    await validateStored(registry.repository('app'), 'v1');
  });

  it('mounts base layers from another repository on the same registry, and streams the rest', async () => {
    const fake = await start({ auth: 'bearer' });
    const { registry } = registryFor(fake);
    const baseImages = await Promise.all([AMD64, ARM64].map(async (p) => mutate(scratch(p), { layers: [await randomLayer(4000), await randomLayer(1000)] })));
    const baseIndex = makeIndex('oci', baseImages);
    const basePublisher = new RegistryPublisher(registry.repository('base/static'), { logger: new MemoryLogger() });
    await basePublisher.putContent(baseIndex);
    await basePublisher.putTags(baseIndex, ['latest']);

    // Read the base back through the registry: its layers carry their origin.
    const base = await resolveBase(registry.repository('base/static'), `${fake.host}/base/static:latest`, 'latest', [AMD64, ARM64]);
    const app = await Promise.all(base.images.map(async (img) => mutate(img, { layers: [await randomLayer(500)] })));
    const appIndex = makeIndex(base.family, app);
    const logger = new MemoryLogger();
    const publisher = new RegistryPublisher(registry.repository('o/app'), { logger });
    await publisher.putContent(appIndex);
    expect(publisher.counters).toMatchObject({ blobsMounted: 4, blobsUploaded: 4 }); // 2 app layers + 2 configs
    expect(logger.lines.filter((l) => l.startsWith('mounted layer'))).toHaveLength(4);
    await validateStored(registry.repository('o/app'), appIndex.digest);

    // From a registry on another host, base layers are streamed from there, not mounted.
    const other = await start();
    const otherPublisher = new RegistryPublisher(registryFor(other).registry.repository('o/app'), { logger: new MemoryLogger() });
    await otherPublisher.putContent(appIndex);
    expect(otherPublisher.counters).toMatchObject({ blobsMounted: 0, blobsUploaded: 8 });
    expect(other.seen('POST').filter((r) => r.path.includes('mount='))).toEqual([]);
  });

  it('never uploads foreign layers', async () => {
    const fake = await start();
    const { registry } = registryFor(fake);
    const foreign: Layer = Object.freeze({
      mediaType: MediaType.DockerForeignLayerGzip,
      digest: `sha256:${'f'.repeat(64)}`,
      size: 1234,
      diffId: `sha256:${'e'.repeat(64)}`,
      urls: ['https://mcr.microsoft.com/layer'],
      open: async () => {
        throw new Error('a foreign layer must not be opened');
      },
    });
    const image = mutate(scratch({ os: 'windows', architecture: 'amd64' }), { layers: [foreign, await randomLayer(100)] });
    const publisher = new RegistryPublisher(registry.repository('win'), { logger: new MemoryLogger() });
    await publisher.putContent(image);
    expect(publisher.counters.blobsUploaded).toBe(2);
    expect(fake.seen('HEAD', /f{64}/)).toEqual([]);
  });

  it('keeps at most `concurrency` uploads in flight', async () => {
    const fake = await start();
    const { registry } = registryFor(fake);
    const layers = await Promise.all(Array.from({ length: 8 }, () => randomLayer(3000)));
    const image = mutate(scratch(AMD64), { layers });
    const publisher = new RegistryPublisher(registry.repository('app'), { logger: new MemoryLogger(), concurrency: 3 });
    await publisher.putContent(image);
    expect(publisher.counters.blobsUploaded).toBe(9);
    expect(fake.maxOpenSessions).toBeGreaterThan(1);
    expect(fake.maxOpenSessions).toBeLessThanOrEqual(3);
  });

  it('pushes no manifest when a blob fails', async () => {
    const fake = await start();
    const { registry } = registryFor(fake);
    const { index } = await multiPlatform();
    fake.inject({ method: 'PUT', path: /blobs\/uploads/, respond: { status: 400, body: '{"errors":[{"code":"DIGEST_INVALID","message":"nope"}]}' } });
    const publisher = new RegistryPublisher(registry.repository('o/app'), { logger: new MemoryLogger() });
    const err = (await publisher.putContent(index).catch((e) => e)) as RegistryError;
    expect(err).toBeInstanceOf(RegistryError);
    expect(err.message).toMatch(new RegExp(`^upload blob sha256:[a-f0-9]{64} to ${fake.host}/o/app: 400 DIGEST_INVALID: nope$`));
    expect(fake.seen('PUT', /manifests/)).toEqual([]);
  });

  it('reports progress of slow uploads every few seconds', async () => {
    const fake = await start();
    const { registry } = registryFor(fake);
    const written = await randomLayer(40_000);
    // A source that delivers 4 KiB at a time: progress follows the bytes read from it.
    const bytes = await readAll(await written.open());
    const pieces = Array.from({ length: Math.ceil(bytes.length / 4096) }, (_, i) => bytes.subarray(i * 4096, (i + 1) * 4096));
    const layer: Layer = { ...written, open: async () => Readable.from(pieces) };
    const image = mutate(scratch(AMD64), { layers: [layer] });
    let now = 0;
    const logger = new MemoryLogger();
    // Each look at the clock is two seconds later: a report every other piece after the first 5 s.
    const publisher = new RegistryPublisher(registry.repository('app'), { logger, now: () => (now += 2000), progressEveryMs: 5000 });
    await publisher.putContent(image);
    const short = layer.digest.slice(7, 19);
    const reports = logger.lines.filter((l) => l.startsWith(`uploading layer ${short}`));
    expect(reports.length).toBeGreaterThanOrEqual(2);
    expect(reports.length).toBeLessThanOrEqual(Math.ceil(layer.size / 4096) / 2);
    for (const r of reports) expect(r).toMatch(/: \d+\.\d KiB \/ \d+\.\d KiB \(\d+%\)$/);
    expect(logger.lines).toContain(`uploaded layer ${short} (${formatBytes(layer.size)})`);
  });
});

describe('helpers', () => {
  it('formats progress', () => {
    expect(progress(12 * 1024 * 1024, 48 * 1024 * 1024)).toBe('12.0 MiB / 48.0 MiB (25%)');
    expect(formatBytes(999)).toBe('999 B');
    expect(formatBytes(3 * 1024 ** 3)).toBe('3.0 GiB');
  });

  it('mapLimit stops starting work after a failure and throws the first error', async () => {
    const started: number[] = [];
    const err = await mapLimit([1, 2, 3, 4, 5, 6], 2, async (n) => {
      started.push(n);
      await new Promise((r) => setTimeout(r, 5));
      if (n === 2) throw new Error(`failed ${n}`);
    }).catch((e) => e);
    expect((err as Error).message).toBe('failed 2');
    expect(started.length).toBeLessThan(6);
  });
});

describe('an OCI layout written twice at once (packages published together share blobs)', () => {
  it('ends with every blob whole, and neither write fails', async () => {
    const { index } = await multiPlatform();
    const layout = join(dir, 'shared-layout');
    const writer = new LayoutWriter(layout);
    await Promise.all([writer.putContent(index), new LayoutWriter(layout).putContent(index)]);
    await writer.putName(index, 'v1');
    await validateStored(new LayoutSource(layout), index.digest);
  });
});
