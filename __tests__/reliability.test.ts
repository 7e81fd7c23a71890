// Issue 6, "must show" 1–3 (docs/publishing.md, §5.2): publishing through a proxy that injects faults
// into a real distribution registry. Figures go to the console and .tmp/reliability-figures.json.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { runEngine } from '../src/engine.js';
import { MemoryLogger } from '../src/log.js';
import { makeIndex, mutate, scratch, type ImageIndex } from '../src/oci/image.js';
import { writeLayer, type Layer } from '../src/oci/layer.js';
import { MediaType } from '../src/oci/spec.js';
import { validateStored } from '../src/oci/validate.js';
import { RegistryPublisher } from '../src/publish/registry.js';
import { Registry } from '../src/registry/client.js';
import { targetCredentials } from '../src/registry/credentials.js';
import { RetryPolicy } from '../src/registry/retry.js';
import { SMALL_BLOB } from '../src/registry/upload.js';
import { realDeps } from '../src/wiring.js';
import { exampleRequest, repoRoot } from './support/engine.js';
import { FAULT_KINDS, FaultProxy, type ProxyRecord } from './support/fault-proxy.js';
import { startRegistry, type TestRegistry } from './support/registry.js';

const SEED = 20260102;
const RATE = 0.2;
const PUBLISHES = 50;
/** Per-request stall limit of the client under test; the proxy holds stalled responses longer. */
const REQUEST_TIMEOUT_MS = 300;
const FIGURES = join(repoRoot, '.tmp', 'reliability-figures.json');

const figures: Record<string, unknown> = {};
let registry: TestRegistry;
let dir: string;
const proxies: FaultProxy[] = [];

beforeAll(async () => {
  registry = await startRegistry({ auth: 'token' });
  dir = await mkdtemp(join(tmpdir(), 'ko-annotate-reliability-'));
});
afterAll(async () => {
  await Promise.all(proxies.splice(0).map((p) => p.close()));
  await registry?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
  await mkdir(join(repoRoot, '.tmp'), { recursive: true });
  const previous = await readFile(FIGURES, 'utf8').then((t) => JSON.parse(t) as Record<string, unknown>, () => ({}));
  await writeFile(FIGURES, JSON.stringify({ ...previous, ...figures }, null, 2) + '\n');
});

async function proxy(opts: Omit<Parameters<typeof FaultProxy.start>[0], 'upstream'>) {
  const p = await FaultProxy.start({ upstream: registry.host, ...opts });
  proxies.push(p);
  return p;
}

/** A client straight to the registry, no faults: the judge of what was stored. */
function direct(repository: string) {
  const r = new Registry(registry.host, { credentials: targetCredentials(registry.host, registry.username, registry.password), logger: new MemoryLogger() });
  return r.repository(repository);
}

/** A gzip layer holding one file of `size` random (incompressible) bytes. */
async function randomLayer(name: string, size: number): Promise<Layer> {
  const bytes = randomBytes(size);
  return writeLayer([{ type: 'file', path: `ko-app/${name}`, mode: 0o555, size, open: () => Readable.from([bytes]) }], join(dir, `${name}.tar.gz`), MediaType.OciLayerGzip);
}

const uploadSession = (path: string) => /\/blobs\/uploads\/([^/?]+)/.exec(path)?.[1];

/**
 * Requests to an upload session after one of them failed, other than its cancellation:
 * docs/reliability.md says a failed upload restarts with a new session, never re-PATCHes the old URL.
 */
function reusedSessions(records: readonly ProxyRecord[]): { failed: number; reused: ProxyRecord[] } {
  const failedAt = new Map<string, number>();
  const reused: ProxyRecord[] = [];
  for (const r of records) {
    const session = uploadSession(r.path);
    if (!session || r.method === 'POST') continue;
    if (failedAt.has(session) && r.method !== 'DELETE') reused.push(r);
    const failed = r.fault !== undefined || r.status === 'reset' || (typeof r.status === 'number' && r.status >= 400);
    if (failed && (r.method === 'PATCH' || r.method === 'PUT') && !failedAt.has(session)) failedAt.set(session, r.seq);
  }
  return { failed: failedAt.size, reused };
}

describe('50 publishes through 20 % injected faults (docs/reliability.md)', () => {
  it('all succeed; every tag is a complete, valid image; no dangling tag; failed uploads use new sessions', async () => {
    // 50 distinct two-platform indexes sharing one layer: each publish uploads two new
    // layers (two PATCH chunks each), two configs, three manifests and a tag.
    const shared = await randomLayer('shared', 3000);
    const artifacts: ImageIndex[] = [];
    for (let i = 0; i < PUBLISHES; i++) {
      const amd = mutate(scratch({ os: 'linux', architecture: 'amd64' }), { layers: [shared, await randomLayer(`amd-${i}`, 6000)] });
      const arm = mutate(scratch({ os: 'linux', architecture: 'arm64' }), { layers: [shared, await randomLayer(`arm-${i}`, 6000)] });
      artifacts.push(makeIndex('oci', [amd, arm]));
    }

    const p = await proxy({ seed: SEED, rate: RATE, stallMs: 3 * REQUEST_TIMEOUT_MS, retryAfterSeconds: 1 });
    const sleeps: number[] = [];
    // Backoff is real but short; a Retry-After is recorded as asked and slept for 20 ms.
    const retry = new RetryPolicy({
      maxAttempts: 20,
      baseDelayMs: 5,
      maxDelayMs: 40,
      deadline: Date.now() + 240_000,
      sleep: (ms) => {
        sleeps.push(ms);
        return new Promise((r) => setTimeout(r, Math.min(ms, 20)));
      },
    });
    const logger = new MemoryLogger();
    const client = new Registry(p.host, {
      credentials: targetCredentials(p.host, registry.username, registry.password),
      logger,
      retry,
      requestTimeoutMs: REQUEST_TIMEOUT_MS,
    });
    const repo = 'acme/reliable';
    const started = Date.now();
    const failures: string[] = [];
    for (const [i, a] of artifacts.entries()) {
      // One blob at a time keeps the request order, and so the faults, the same for a seed.
      const publisher = new RegistryPublisher(client.repository(repo, { access: 'push' }), { logger, concurrency: 1 });
      try {
        await publisher.listTags();
        await publisher.putContent(a);
        await publisher.putTags(a, [`v${i}`]);
      } catch (err) {
        failures.push(`v${i}: ${(err as Error).message}`);
      }
    }
    const elapsedMs = Date.now() - started;

    // What the registry holds, read directly.
    const stored = direct(repo);
    const tags = (await stored.listTags()).sort();
    let valid = 0;
    const dangling: string[] = [];
    for (const tag of tags) {
      try {
        const report = await validateStored(stored, tag);
        const i = Number(tag.slice(1));
        expect(report.digest).toBe(artifacts[i].digest);
        expect(report).toMatchObject({ manifests: 2, layers: 4 });
        valid++;
      } catch (err) {
        dangling.push(`${tag}: ${(err as Error).message}`);
      }
    }

    const faults = p.faultCounts();
    const injected = Object.values(faults).reduce((a, b) => a + b, 0);
    const retryAfterFaults = p.records.filter((r) => r.fault === '429-retry-after' && r.method !== 'DELETE').length;
    const maxAttempt = Math.max(1, ...logger.lines.map((l) => Number(/\(attempt (\d+) of/.exec(l)?.[1] ?? 1)));
    const sessions = reusedSessions(p.records);
    Object.assign(figures, {
      publishes: { seed: SEED, faultRate: RATE, attempted: PUBLISHES, succeeded: PUBLISHES - failures.length, validTags: valid, danglingTags: dangling.length },
      requests: p.records.length,
      faultsInjected: injected,
      faultsByKind: faults,
      retries: sleeps.length,
      retryAfterHonoured: sleeps.filter((ms) => ms === 1000).length,
      maxAttemptsUsed: maxAttempt,
      failedUploadSessions: sessions.failed,
      reusedFailedSessions: sessions.reused.length,
      seconds: Math.round(elapsedMs / 100) / 10,
    });
    console.log(
      [
        'reliability: 50 publishes through injected faults',
        `  publishes  ${PUBLISHES - failures.length}/${PUBLISHES} succeeded, ${valid} valid tags, ${dangling.length} dangling`,
        `  requests   ${p.records.length}, faults injected ${injected} (${((100 * injected) / p.records.length).toFixed(1)} %)`,
        `  by kind    ${FAULT_KINDS.map((k) => `${k}:${faults[k] ?? 0}`).join('  ')}`,
        `  retries    ${sleeps.length} (Retry-After honoured ${sleeps.filter((ms) => ms === 1000).length}×, most attempts for one operation ${maxAttempt})`,
        `  uploads    ${sessions.failed} failed sessions, ${sessions.reused.length} reused`,
        `  time       ${(elapsedMs / 1000).toFixed(1)} s`,
      ].join('\n'),
    );

    expect(failures).toEqual([]);
    expect(tags).toEqual(artifacts.map((_, i) => `v${i}`).sort());
    expect(dangling).toEqual([]);
    expect(valid).toBe(PUBLISHES);
    // The faults really happened, of every kind, at about the asked rate.
    for (const k of FAULT_KINDS) expect(faults[k] ?? 0).toBeGreaterThan(0);
    expect(injected / p.records.length).toBeGreaterThan(RATE * 0.75);
    expect(injected / p.records.length).toBeLessThan(RATE * 1.25);
    // Every injected 429 with Retry-After: 1 was waited for exactly 1 s; no other wait was that long.
    expect(sleeps.filter((ms) => ms === 1000)).toHaveLength(retryAfterFaults);
    expect(sleeps.filter((ms) => ms !== 1000).every((ms) => ms < 40)).toBe(true);
    // About one retry per fault: cancellations (DELETE) are not retried, and a response cut
    // after its headers costs nothing when the client had no use for the body.
    expect(sleeps.length).toBeGreaterThanOrEqual(0.9 * (injected - p.records.filter((r) => r.fault && r.method === 'DELETE').length));
    expect(sleeps.length).toBeLessThanOrEqual(injected);
    // Must show 3, from the same log: failed uploads never touched their session again.
    expect(sessions.failed).toBeGreaterThan(10);
    expect(sessions.reused).toEqual([]);
  }, 300_000);
});

describe('a failed upload restarts with a new session (docs/reliability.md)', () => {
  it('a PATCH cut mid-body is followed by DELETE of that session and a new POST; the old URL is never PATCHed again', async () => {
    let patches = 0;
    // Exactly one fault: the upload's streamed PATCH, cut after half its body.
    const p = await proxy({ seed: 1, rate: 1, kinds: ['reset-request'], eligible: (m) => m === 'PATCH' && ++patches === 1 });
    const client = new Registry(p.host, {
      credentials: targetCredentials(p.host, registry.username, registry.password),
      logger: new MemoryLogger(),
      retry: new RetryPolicy({ baseDelayMs: 1, maxDelayMs: 5 }),
    });
    // Above SMALL_BLOB, so that it goes up in a PATCH rather than with its commit.
    const layer = await randomLayer('session', SMALL_BLOB + 200_000);
    const repo = client.repository('acme/session', { access: 'push' });
    await repo.uploadBlob(layer.digest, layer.size, () => layer.open());

    const log = p.records.filter((r) => r.path.includes('/blobs/uploads/')).map((r) => ({ ...r, session: uploadSession(r.path) }));
    const cut = log.find((r) => r.fault === 'reset-request');
    expect(cut).toMatchObject({ method: 'PATCH', status: 'reset' });
    const first = cut!.session!;
    const after = log.filter((r) => r.seq > cut!.seq);
    // The old session is only cancelled; everything else goes to a new one.
    const oldAfter = after.filter((r) => r.session === first);
    console.log(`old session after the cut: ${oldAfter.map((r) => `${r.method} ${r.status}`).join(', ')}`);
    expect(oldAfter.length).toBeGreaterThan(0);
    expect(oldAfter.filter((r) => r.method !== 'DELETE')).toEqual([]);
    // Two sessions were opened (a first POST may also meet the 401 that starts authentication).
    expect(log.filter((r) => r.method === 'POST' && r.status === 202)).toHaveLength(2);
    const second = after.find((r) => r.method === 'PATCH')!.session!;
    expect(second).not.toBe(first);
    // The new session sends the whole blob again in one PATCH, then the commit.
    expect(after.filter((r) => r.session === second).map((r) => r.method)).toEqual(['PATCH', 'PUT']);
    expect(await direct('acme/session').hasBlob(layer.digest)).toBe(true);
    Object.assign(figures, { newSessionAfterCut: { oldSessionRequestsAfterCut: oldAfter.map((r) => r.method), newSessionRequests: 2 } });
  }, 60_000);
});

describe('a connection cut in the middle of a response body (docs/reliability.md)', () => {
  it('is retried for the tag list and for manifests, whose bodies are read whole', async () => {
    const stored = direct('acme/cut');
    const layer = await randomLayer('cut', 100);
    const image = mutate(scratch({ os: 'linux', architecture: 'amd64' }), { layers: [layer] });
    const seed = new RegistryPublisher(stored, { logger: new MemoryLogger() });
    await seed.putContent(image);
    await seed.putTags(image, ['one', 'two']);

    let gets = 0;
    // The first GET of each kind gets half its body, then a reset.
    const p = await proxy({ seed: 1, rate: 1, kinds: ['reset-response'], eligible: (m, path) => m === 'GET' && /\/(tags\/list|manifests\/)/.test(path) && ++gets <= 2 });
    const client = new Registry(p.host, {
      credentials: targetCredentials(p.host, registry.username, registry.password),
      logger: new MemoryLogger(),
      retry: new RetryPolicy({ baseDelayMs: 1, maxDelayMs: 5 }),
    });
    const repo = client.repository('acme/cut');
    expect((await repo.listTags()).sort()).toEqual(['one', 'two']);
    expect((await repo.getManifest('one')).digest).toBe(image.digest);
    const cut = p.records.filter((r) => r.fault === 'reset-response');
    expect(cut.map((r) => r.method)).toEqual(['GET', 'GET']);
    expect(cut.every((r) => r.status === 'reset')).toBe(true);
  });
});

describe('the registry goes away mid-push (docs/publishing.md, §5.2)', () => {
  it('fails within the time budget with one clear message; no tag is created or moved', async () => {
    process.env.PATH = `/usr/lib/go-1.23/bin:${process.env.PATH}`;
    const p = await proxy({ seed: 7, rate: 0 });
    const repository = `${p.host}/acme/hello`;
    const run = (version: string, tags: string[], timeout: string, ldflags = '') => {
      const logger = new MemoryLogger();
      const env = { ...process.env };
      const deps = realDeps({ logger, env, username: registry.username, token: registry.password, targetRepository: repository, timeoutMs: Number.parseInt(timeout, 10) * 1000 });
      const req = exampleRequest(
        { repository, 'base-image': 'scratch', platforms: 'linux/amd64,linux/arm64', sbom: 'none', push: 'true', timeout, ldflags },
        { push: true, env, tagsFor: () => tags, provenance: { ...PROVENANCE_BASE, version } },
      );
      return { logger, result: runEngine(req, deps) };
    };
    // A first, complete release.
    const first = run('1.0.0', ['1.0.0', 'latest'], '60s');
    const released = await first.result;
    const stored = direct('acme/hello');
    const before = await tagDigests(stored);
    expect(before).toEqual({ '1.0.0': released.packages[0].digest, latest: released.packages[0].digest });

    // The next release (another binary: its layers are not in the repository yet) loses the
    // registry in the middle of its uploads: after it has read the images its tags name
    // (about ten requests, see publish/previous.ts) and a dozen more.
    const seen = p.records.length;
    p.goDownAfter(seen + 22);
    const budgetS = 4;
    const second = run('1.0.1', ['1.0.1', 'latest'], `${budgetS}s`, '-s -w');
    const t0 = Date.now();
    const err = await second.result.then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    const elapsedMs = Date.now() - t0;
    expect(err).toBeInstanceOf(Error);
    const message = err!.message;
    console.log(`registry down mid-push: failed after ${(elapsedMs / 1000).toFixed(1)} s with: ${message}`);

    // It really was mid-push: content requests went through before the registry went away.
    const during = p.records.slice(seen);
    expect(during.filter((r) => r.fault === undefined && typeof r.status === 'number').length).toBeGreaterThanOrEqual(6);
    expect(during.some((r) => r.method === 'PATCH' && r.fault === undefined)).toBe(true);
    expect(during.some((r) => r.fault === 'down')).toBe(true);
    // No manifest was PUT by tag after the registry went down, and none before it either.
    expect(during.filter((r) => r.method === 'PUT' && /\/manifests\/(?!sha256:)/.test(r.path))).toEqual([]);
    // Within the budget (plus the cached go builds, which come before it starts).
    expect(elapsedMs).toBeLessThan(budgetS * 1000 + 10_000);
    // One clear message: one line, saying what failed, where, and why it stopped.
    expect(message.split('\n')).toHaveLength(1);
    expect(message).toContain(`${p.host}/acme/hello`);
    expect(message).toMatch(/time budget ran out|gave up after \d+ attempts/);
    expect(await tagDigests(stored)).toEqual(before);
    Object.assign(figures, { registryDown: { budgetSeconds: budgetS, failedAfterSeconds: Math.round(elapsedMs / 100) / 10, message, tagsBefore: before, tagsAfterUnchanged: true } });
  }, 180_000);
});

const PROVENANCE_BASE = {
  source: 'https://github.com/acme/hello',
  revision: '0123456789abcdef0123456789abcdef01234567',
  created: '2026-01-02T03:04:05Z',
  builder: 'ko-annotate/test',
};

async function tagDigests(repo: ReturnType<typeof direct>): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const t of (await repo.listTags()).sort()) out[t] = (await repo.headManifest(t))!.digest;
  return out;
}
