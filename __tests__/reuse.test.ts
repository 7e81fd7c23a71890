// A re-run names the layers its repository already holds instead of compressing them again
// (src/publish/previous.ts, builder.ts layerFor): the example app pushed twice to a real
// distribution 2.8 registry with token auth, and the pieces on their own.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { runEngine, type EngineDeps, type RunResult } from '../src/engine.js';
import { MemoryLogger } from '../src/log.js';
import { imagesOf } from '../src/oci/image.js';
import { fromBuffer, reusedLayer, tarDigest, writeLayer, type TarEntry } from '../src/oci/layer.js';
import { LayoutSource } from '../src/oci/layout.js';
import { MediaType } from '../src/oci/spec.js';
import { readAll } from '../src/oci/store.js';
import { previousImages } from '../src/publish/previous.js';
import type { RegistryPublisher } from '../src/publish/registry.js';
import { realDeps } from '../src/wiring.js';
import { exampleRequest, layoutOnlyDeps, PROVENANCE } from './support/engine.js';
import { FakeRegistry } from './support/fake-registry.js';
import { startRegistry, type TestRegistry } from './support/registry.js';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'reuse-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const RAW = { 'base-image': 'scratch', platforms: 'linux/amd64,linux/arm64' };
const reusedLines = (l: MemoryLogger) => l.lines.filter((x) => /^layer sha256:[a-f0-9]{64} \(.* compressed, already in the repository\)$/.test(x));
const layerLines = (l: MemoryLogger) => l.lines.filter((x) => /^layer sha256:[a-f0-9]{64} \(/.test(x));

describe('layers', () => {
  const entries = (text: string): TarEntry[] => [
    { type: 'directory', path: 'ko-app/', mode: 0o755 },
    { type: 'file', path: 'ko-app/x', mode: 0o555, size: Buffer.byteLength(text), open: () => fromBuffer(Buffer.from(text)) },
  ];

  it('tarDigest is the diff ID writeLayer gives the same entries', async () => {
    const written = await writeLayer(entries('hello '.repeat(5000)), join(tmp, 'a.tar.gz'), MediaType.OciLayerGzip);
    expect(await tarDigest(entries('hello '.repeat(5000)))).toBe(written.diffId);
    expect(await tarDigest(entries('hello '.repeat(4999)))).not.toBe(written.diffId);
  });

  it('writeLayer copies exactly the compressed bytes to a sink, and a failing sink does not fail the layer', async () => {
    const text = 'kodata '.repeat(200_000);
    const got: Buffer[] = [];
    const sink = new Writable({ highWaterMark: 1024, write: (c: Buffer, _e, cb) => void setTimeout(() => (got.push(c), cb()), 1) });
    const ended = new Promise((r) => sink.on('finish', r));
    const layer = await writeLayer(entries(text), join(tmp, 'copy.tar.gz'), MediaType.OciLayerGzip, sink);
    await ended;
    const copied = Buffer.concat(got);
    expect(copied.length).toBe(layer.size);
    expect(`sha256:${createHash('sha256').update(copied).digest('hex')}`).toBe(layer.digest);

    let writes = 0;
    const broken = new Writable({ write: (_c, _e, cb) => cb(++writes > 1 ? new Error('upload cut') : null) });
    broken.on('error', () => undefined);
    const again = await writeLayer(entries(text), join(tmp, 'copy2.tar.gz'), MediaType.OciLayerGzip, broken);
    expect(again.digest).toBe(layer.digest);
    expect(writes).toBeGreaterThan(1);
  });

  it('a reused layer makes its bytes only when opened, and they must hash to the reused digest', async () => {
    const real = await writeLayer(entries('data'), join(tmp, 'b.tar.gz'), MediaType.OciLayerGzip);
    const good = reusedLayer(entries('data'), join(tmp, 'c.tar.gz'), { mediaType: real.mediaType, digest: real.digest, size: real.size, diffId: real.diffId });
    const bytes = await readAll(await good.open());
    expect(`sha256:${createHash('sha256').update(bytes).digest('hex')}`).toBe(real.digest);

    const other = `sha256:${'0'.repeat(64)}`;
    const bad = reusedLayer(entries('data'), join(tmp, 'd.tar.gz'), { mediaType: real.mediaType, digest: other, size: real.size, diffId: real.diffId });
    await expect(bad.open()).rejects.toThrow(`was reused as ${other}`);
  });
});

describe('previousImages', () => {
  let layout: string;
  let result: RunResult;
  beforeAll(async () => {
    layout = join(tmp, 'layout');
    result = await runEngine(exampleRequest({ ...RAW, 'oci-layout-path': layout }), layoutOnlyDeps());
  }, 240_000);

  it('maps every layer of every platform image a tag names, by diff ID, for the same builder, and says what each tag names', async () => {
    const { layers: found, tags } = await previousImages(new LayoutSource(layout), ['1.2.3', 'nope'], PROVENANCE.builder);
    expect(tags).toEqual(new Map([['1.2.3', result.packages[0].digest]]));
    const images = imagesOf(result.packages[0].artifact);
    const layers = images.flatMap((i) => i.layers);
    expect(layers.length).toBe(4); // kodata and the binary, for two platforms
    expect(found.size).toBe(new Set(layers.map((l) => l.diffId)).size);
    for (const l of layers) expect(found.get(l.diffId)).toEqual({ mediaType: l.mediaType, digest: l.digest, size: l.size });
  });

  it("ignores the layers of images another builder (or version) made, but not what their tags name; and tags that are not there", async () => {
    const other = await previousImages(new LayoutSource(layout), ['1.2.3'], 'ko-annotate/0.0.1');
    expect(other.layers.size).toBe(0);
    expect(other.tags).toEqual(new Map([['1.2.3', result.packages[0].digest]]));
    const none = await previousImages(new LayoutSource(layout), ['nope'], PROVENANCE.builder);
    expect(none.layers.size).toBe(0);
    expect(none.tags.size).toBe(0);
  });

  it('stops reading at the descriptor\'s size and uses nothing of that image', async () => {
    const real = new LayoutSource(layout);
    let sent = 0;
    // The layout's own manifests, but every config read is an endless stream of bytes.
    const flooding = {
      name: real.name,
      getManifest: (ref: string) => real.getManifest(ref),
      getBlob: async () =>
        new Readable({
          read() {
            sent += 1 << 20;
            this.push(Buffer.alloc(1 << 20, 0x20));
          },
        }),
    } as unknown as LayoutSource;
    const { layers } = await previousImages(flooding, ['1.2.3'], PROVENANCE.builder);
    expect(layers.size).toBe(0);
    // One chunk per config read, each past its few hundred bytes: not the whole stream.
    expect(sent).toBeGreaterThan(0);
    expect(sent).toBeLessThanOrEqual(4 << 20);
  });
});

describe('a re-run against a real registry', () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry({ auth: 'token' });
  });
  afterAll(async () => {
    await reg?.stop();
  });

  /** One push of the example; returns the run, its log and the publisher's counters. */
  async function push(repo: string, builder = PROVENANCE.builder, over: Partial<EngineDeps> = {}) {
    const logger = new MemoryLogger();
    const publishers: RegistryPublisher[] = [];
    const deps = realDeps({ logger, env: { ...process.env, DOCKER_CONFIG: tmp }, username: reg.username, token: reg.password, targetRepository: repo });
    const watched: EngineDeps = {
      ...deps,
      ...over,
      registryTarget: (r) => {
        const p = deps.registryTarget(r) as RegistryPublisher;
        publishers.push(p);
        return p;
      },
    };
    const result = await runEngine(exampleRequest({ ...RAW, repository: repo, push: 'true' }, { push: true, provenance: { ...PROVENANCE, builder } }), watched);
    return { result, logger, counters: publishers[0].counters };
  }

  it('names the layers the repository holds instead of compressing them, and gives the same image', async () => {
    const repo = `${reg.host}/acme/again`;
    const first = await push(repo);
    expect(reusedLines(first.logger)).toEqual([]);
    // The binaries' layers went up while they were compressed; publishing knew them there and
    // uploaded the kodata layer (one for both platforms, written before any build succeeded)
    // and the two configs.
    expect(layerLines(first.logger).filter((l) => l.endsWith(', uploaded as it was written)'))).toHaveLength(2);
    expect(first.counters).toMatchObject({ blobsUploaded: 3, blobsSkipped: 0, blobsUploadedInBuild: 2 });

    const second = await push(repo);
    expect(second.result.packages[0].digest).toBe(first.result.packages[0].digest);
    expect(reusedLines(second.logger)).toHaveLength(2);
    expect(second.counters).toMatchObject({ blobsUploaded: 0, manifestsPushed: 0, manifestsSkipped: 1, tagsWritten: 0, tagsUnchanged: 1 });
    expect(second.logger.lines).toContain(`${repo}:1.2.3 already names ${first.result.packages[0].digest}`);
  }, 240_000);

  it('uploads when publishing what could not go up while it was written', async () => {
    const repo = `${reg.host}/acme/cut`;
    let calls = 0;
    // Each upload during the build takes a little and then fails, as a dropped connection would.
    const failing = async (_repository: string, bytes: import('node:stream').Readable) => {
      calls++;
      await new Promise((r) => bytes.once('data', r));
      bytes.destroy();
      throw new Error('connection reset');
    };
    const run = await push(repo, PROVENANCE.builder, { uploadWhileWritten: failing });
    expect(calls).toBe(2); // the two binaries' layers
    expect(layerLines(run.logger).filter((l) => l.includes('uploaded as it was written'))).toEqual([]);
    expect(run.counters).toMatchObject({ blobsUploaded: 5, blobsSkipped: 0, blobsUploadedInBuild: 0 });
    expect(run.logger.lines.filter((l) => l.startsWith('debug: uploading ') && l.includes('connection reset'))).toHaveLength(2);
  }, 240_000);

  it('compresses again when the image there was made by another builder', async () => {
    const repo = `${reg.host}/acme/other`;
    await push(repo, 'ko-annotate/0.0.1');
    const second = await push(repo);
    expect(layerLines(second.logger)).toHaveLength(2);
    expect(reusedLines(second.logger)).toEqual([]);
    // Same layer bytes (same tar and gzip), so the blobs were there (the binaries' went up again
    // as they were written); the configs were not.
    expect(second.counters).toMatchObject({ blobsUploaded: 2, blobsSkipped: 1, blobsUploadedInBuild: 2 });
  }, 240_000);
});

describe('a registry that does not answer the read-back', () => {
  let fake: FakeRegistry;
  beforeAll(async () => {
    fake = await FakeRegistry.start({ auth: 'none' });
  });
  afterAll(async () => {
    await fake?.close();
  });

  it('holds the layers back at most a few seconds; they are then compressed and pushed as usual', async () => {
    const repo = `${fake.host}/acme/slow`;
    fake.inject({ method: 'GET', path: /\/manifests\/1\.2\.3$/, times: 10, respond: 'hang' });
    const logger = new MemoryLogger();
    const deps = realDeps({ logger, env: { ...process.env, DOCKER_CONFIG: tmp }, targetRepository: repo });
    const started = Date.now();
    const result = await runEngine(exampleRequest({ ...RAW, repository: repo, push: 'true' }, { push: true }), deps);
    expect(Date.now() - started).toBeLessThan(60_000);
    expect(logger.lines.filter((l) => l.startsWith(`debug: not reusing layers from ${repo}: no answer within`))).toHaveLength(1);
    expect(reusedLines(logger)).toEqual([]);
    expect(fake.seen('PUT', /\/manifests\/1\.2\.3$/)).toHaveLength(1);
    expect(fake.seen('GET', /\/manifests\/1\.2\.3$/)).toHaveLength(1);
    expect(result.packages[0].digest).toMatch(/^sha256:[a-f0-9]{64}$/);
  }, 120_000);
});

describe('the end of a push, request by request', () => {
  let fake: FakeRegistry;
  beforeAll(async () => {
    fake = await FakeRegistry.start({ auth: 'none' });
  });
  afterAll(async () => {
    await fake?.close();
  });

  it('checks each digest once, never the layers uploaded during the build, and puts content before names', async () => {
    const repo = `${fake.host}/acme/tail`;
    // No SBOM: its referrers are pushed on their own (sbom/referrer.ts), not by the publisher.
    const push = () => runEngine(exampleRequest({ ...RAW, repository: repo, push: 'true', sbom: 'none' }, { push: true }), realDeps({ logger: new MemoryLogger(), env: { ...process.env, DOCKER_CONFIG: tmp }, targetRepository: repo }));
    const result = await push();
    const { artifact, digest } = result.packages[0];
    const images = imagesOf(artifact);
    const layers = [...new Map(images.flatMap((i) => i.layers).map((l) => [l.digest, l])).values()];
    // The binaries' layers, uploaded while they were written, say where; kodata's was not.
    const stored = layers.filter((l) => l.stored);
    expect(stored).toHaveLength(2);
    for (const l of stored) expect(l.stored).toEqual({ registry: fake.host, repository: 'acme/tail' });

    const rel = (r: { method: string; path: string }) => `${r.method} ${r.path.replace(/^\/v2\/acme\/tail\//, '')}`;
    const requests = fake.requests.map(rel);
    // One HEAD of the index, one of each platform manifest and of each blob not uploaded during the build.
    expect(fake.seen('HEAD').map(rel).sort()).toEqual(
      [digest, ...images.map((i) => i.digest)].map((d) => `HEAD manifests/${d}`).concat(
        [...layers.filter((l) => !l.stored).map((l) => l.digest), ...new Set(images.map((i) => i.configDigest))].map((d) => `HEAD blobs/${d}`),
      ).sort(),
    );
    // Publishing starts with the index's HEAD; every other HEAD comes before its first upload.
    const start = requests.indexOf(`HEAD manifests/${digest}`);
    const firstUpload = requests.findIndex((r, i) => i > start && r.startsWith('POST '));
    expect(requests.slice(firstUpload).filter((r) => r.startsWith('HEAD '))).toEqual([]);
    // Content first: blob commits, then the platform manifests, then the index, then the tag.
    // (A blob is stored by the request that names its digest: the PUT ending a session, or a one-request POST.)
    const stores = requests
      .slice(start)
      .filter((r) => r.startsWith('PUT ') || (r.startsWith('POST blobs/uploads/') && r.includes('digest=')))
      .map((r) => (r.includes(' blobs/uploads/') ? 'blob' : r.slice('PUT manifests/'.length)));
    expect(stores.slice(0, 3)).toEqual(['blob', 'blob', 'blob']); // kodata and the two configs
    expect(new Set(stores.slice(3, 5))).toEqual(new Set(images.map((i) => i.digest)));
    expect(stores.slice(5)).toEqual([digest, '1.2.3']);
    // The tags do not follow the repository's (tagsFollowExisting: false): no tag list.
    expect(requests.filter((r) => r.startsWith('GET tags/list'))).toEqual([]);

    // A re-run: the tag read back while Go built names the index, so not even a HEAD.
    const before = fake.requests.length;
    expect((await push()).packages[0].digest).toBe(digest);
    const again = fake.requests.slice(before).map(rel);
    expect(again.filter((r) => r.startsWith('HEAD '))).toEqual([]);
    expect(again.filter((r) => r.startsWith('GET manifests/'))).toContain('GET manifests/1.2.3');
    expect(again.filter((r) => r.startsWith('POST ') || r.startsWith('PATCH '))).toEqual([]);
    // Nor a tag: 1.2.3 already names the index (read back while Go built).
    expect(again.filter((r) => r.startsWith('PUT '))).toEqual([]);
  }, 240_000);
});
