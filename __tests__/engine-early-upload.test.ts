// Layers upload while other builds still run (issue 7), through the engine with real Go and the
// real publisher against the in-process registry fake: blobs go early, nothing else does; a
// failed build or upload leaves no manifest and no tag; every upload settles before the engine
// removes its work directory; push off contacts nothing.
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GoToolchain, childEnv, type BuildOptions } from '../src/build/go.js';
import { runEngine, type EngineDeps, type RegistryTarget } from '../src/engine.js';
import { execRun } from '../src/exec.js';
import { MemoryLogger } from '../src/log.js';
import { imagesOf } from '../src/oci/image.js';
import type { Layer } from '../src/oci/layer.js';
import { RegistryPublisher } from '../src/publish/registry.js';
import { Registry } from '../src/registry/client.js';
import { targetCredentials } from '../src/registry/credentials.js';
import { RetryPolicy } from '../src/registry/retry.js';
import { exampleRequest, layoutOnlyDeps } from './support/engine.js';
import { FakeRegistry } from './support/fake-registry.js';

process.env.PATH = `/usr/lib/go-1.23/bin:${process.env.PATH}`;

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'engine-early-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});
const servers: FakeRegistry[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Go whose arm64 build waits until `gate` resolves, then does `arm64` (build or fail). */
class GatedGo extends GoToolchain {
  constructor(
    private readonly gate: Promise<unknown>,
    private readonly arm64: 'build' | 'fail',
    private readonly built: (arch: string) => void = () => {},
  ) {
    super(execRun, childEnv(process.env, []));
  }
  override async build(opts: BuildOptions): Promise<void> {
    if (opts.platformEnv.GOARCH !== 'arm64') return super.build(opts).then(() => this.built(opts.platformEnv.GOARCH));
    await this.gate;
    if (this.arm64 === 'fail') throw new Error('arm64: the compiler fell over');
    return super.build(opts);
  }
}

type Call = { what: 'built' | 'target' | 'putLayer' | 'putContent' | 'putTags' | 'listTags'; digest?: string };

/**
 * The real publisher on the fake, with each call recorded; `slowOpen` delays every layer read
 * by that long (the read then really happens: if the file were gone, the upload would fail).
 */
async function setup(opts: { slowOpen?: number; arm64?: 'build' | 'fail' } = {}) {
  const fake = await FakeRegistry.start({ auth: 'none' });
  servers.push(fake);
  const registry = new Registry(fake.host, { credentials: targetCredentials(fake.host, undefined, undefined), logger: new MemoryLogger(), retry: new RetryPolicy({ sleep: async () => {}, random: () => 0 }) });
  const calls: Call[] = [];
  const uploads: { layer: string; settled?: 'ok' | 'failed'; error?: unknown; handledInTime?: boolean }[] = [];
  let firstLayer!: () => void;
  const layerReady = new Promise<void>((r) => (firstLayer = r));
  const record = (what: Call['what'], digest?: string) => calls.push({ what, digest });
  const tmpRoot = await mkdtemp(join(tmp, 'work-'));
  const logger = new MemoryLogger();
  const deps: EngineDeps = {
    ...layoutOnlyDeps(logger),
    go: new GatedGo(layerReady, opts.arm64 ?? 'build', () => record('built')),
    tmpRoot,
    registryTarget(): RegistryTarget {
      record('target');
      const real = new RegistryPublisher(registry.repository('acme/hello', { access: 'push' }), { logger });
      return {
        name: real.name,
        listTags: () => (record('listTags'), real.listTags()),
        putLayer(layer: Layer) {
          record('putLayer', layer.digest);
          const slow: Layer = { ...layer, open: async () => (opts.slowOpen && (await delay(opts.slowOpen)), layer.open()) };
          const u: (typeof uploads)[number] = { layer: layer.digest };
          uploads.push(u);
          firstLayer();
          // A new promise that rejects as the upload does, and notes whether the engine had
          // handled it by then (jest's sandbox hides process 'unhandledRejection' events; the
          // engine's catch and allSettled both go through `then`).
          let handled = false;
          const q = real.putLayer(slow).then(
            () => void (u.settled = 'ok'),
            (error: unknown) => {
              Object.assign(u, { settled: 'failed', error, handledInTime: handled });
              throw error;
            },
          );
          const then = q.then.bind(q);
          q.then = ((...args: Parameters<typeof then>) => ((handled = true), then(...args))) as typeof q.then;
          return q;
        },
        putContent: (a) => (record('putContent', a.digest), real.putContent(a)),
        putTags: (a, tags) => (record('putTags', a.digest), real.putTags(a, tags)),
      };
    },
  };
  const request = exampleRequest(
    { repository: `${fake.host}/acme/hello`, 'base-image': 'scratch', platforms: 'linux/amd64,linux/arm64', sbom: 'none', push: 'true' },
    { push: true },
  );
  return { fake, deps, request, calls, uploads, tmpRoot, logger };
}

describe('with push, layers upload while other builds still run', () => {
  it('the first layer goes up before the last build is done; putContent sends it no second time; tags come last', async () => {
    const s = await setup();
    const result = await runEngine(s.request, s.deps);
    const [amd, arm] = imagesOf(result.packages[0].artifact);
    const [kodata, amdBinary] = amd.layers;
    const armBinary = arm.layers[1];

    // One target for the package, asked for when its first binary layer was written (the
    // kodata layer, written at the start, waited for it): that starts the publish budget.
    expect(s.calls.filter((c) => c.what === 'target')).toHaveLength(1);
    expect(s.calls.slice(0, 2).map((c) => c.what)).toEqual(['built', 'target']);
    // amd64's layers (kodata with it) went before arm64 was even built: the gate was that upload.
    const early = s.calls.filter((c) => c.what === 'putLayer').map((c) => c.digest);
    expect(early).toEqual([kodata.digest, amdBinary.digest, armBinary.digest]);
    // Every layer before putContent, tags after it.
    const order = s.calls.map((c) => c.what).filter((w) => w !== 'built' && w !== 'target' && w !== 'listTags');
    expect(order).toEqual(['putLayer', 'putLayer', 'putLayer', 'putContent', 'putTags']);
    // Each blob went up once: 3 layers + 2 configs.
    expect(s.fake.seen('POST')).toHaveLength(5);
    for (const l of [kodata, amdBinary, armBinary]) expect(s.fake.seen('PUT', new RegExp(`digest=${l.digest.replace(':', '(:|%3A)')}`))).toHaveLength(1);
    expect(Object.fromEntries(s.fake.tags.get('acme/hello') ?? [])).toEqual({ '1.2.3': result.packages[0].digest });
    // The upload lines are in the package's publish group, not amid the builds.
    const group = s.logger.lines.indexOf(`::group::Publish ${s.request.inputs.repository}@${result.packages[0].digest}`);
    expect(group).toBeGreaterThan(-1);
    const uploaded = s.logger.lines.findIndex((l) => l.startsWith('uploaded layer'));
    expect(uploaded).toBeGreaterThan(group);
    expect(await readdir(s.tmpRoot)).toEqual([]);
  }, 120_000);

  it('a build that fails while a layer uploads: the upload settles before the work directory goes; no manifest, no tag', async () => {
    const s = await setup({ slowOpen: 500, arm64: 'fail' });
    const err = (await runEngine(s.request, s.deps).catch((e: unknown) => e)) as Error;
    expect(err.message).toContain('arm64: the compiler fell over');
    // The amd64 layers were read in full after the build failed, before the directory went.
    expect(s.uploads.length).toBeGreaterThanOrEqual(1);
    for (const u of s.uploads) expect(u).toMatchObject({ settled: 'ok' });
    expect(s.calls.map((c) => c.what)).not.toContain('putContent');
    expect(s.fake.seen('PUT', /manifests/)).toEqual([]);
    expect(s.fake.tags.get('acme/hello')?.size ?? 0).toBe(0);
    expect(await readdir(s.tmpRoot)).toEqual([]);
  }, 120_000);

  it('a failed early upload fails the run with its error once the builds are done, before anything else; no manifest, no tag', async () => {
    const s = await setup();
    s.fake.inject({ method: 'PUT', path: /blobs\/uploads/, respond: { status: 400, body: '{"errors":[{"code":"DIGEST_INVALID","message":"nope"}]}' } });
    const err = (await runEngine(s.request, s.deps).catch((e: unknown) => e)) as Error;
    expect(err.message).toMatch(/^upload blob sha256:[a-f0-9]{64} to .*acme\/hello: 400 DIGEST_INVALID: nope$/);
    // That upload failed during the builds; the engine had handled it then (no unhandled rejection).
    expect(s.uploads.filter((u) => u.settled === 'failed')).toEqual([expect.objectContaining({ error: err, handledInTime: true })]);
    // Nothing else was asked of the registry once the builds were done.
    expect(s.calls.map((c) => c.what).filter((w) => w !== 'built' && w !== 'putLayer')).toEqual(['target']);
    expect(s.fake.seen('PUT', /manifests/)).toEqual([]);
    expect(s.fake.tags.get('acme/hello')?.size ?? 0).toBe(0);
    expect(await readdir(s.tmpRoot)).toEqual([]);
  }, 120_000);

  it('without push, no target is asked for (nothing is contacted)', async () => {
    const s = await setup();
    const result = await runEngine({ ...s.request, push: false }, { ...s.deps, go: new GatedGo(Promise.resolve(), 'build') });
    expect(result.pushed).toBe(false);
    expect(s.calls).toEqual([]);
    expect(s.fake.requests).toEqual([]);
  }, 120_000);
});
