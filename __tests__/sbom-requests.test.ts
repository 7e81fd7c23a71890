// docs/image.md#sbom with §5's order, request by request: the example app built for two platforms with
// the real dependencies and pushed to the in-process fake registry (no referrers API, so the
// referrers tag schema). The referrers go up alongside the images and each other, yet each
// referrer manifest only after its blobs and its subject, and every tag last.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runEngine, type RunResult } from '../src/engine.js';
import { MemoryLogger } from '../src/log.js';
import { MediaType, type Manifest } from '../src/oci/spec.js';
import { EMPTY_JSON, referrersTag } from '../src/publish/referrers.js';
import { realDeps } from '../src/wiring.js';
import { exampleRequest } from './support/engine.js';
import { FakeRegistry, sha256, type Canned, type Recorded } from './support/fake-registry.js';

let tmp: string;
let fake: FakeRegistry;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'sbom-requests-'));
  fake = await FakeRegistry.start({ auth: 'none' });
});
afterAll(async () => {
  await fake?.close();
  await rm(tmp, { recursive: true, force: true });
});

const RAW = { 'base-image': 'scratch', platforms: 'linux/amd64,linux/arm64' };
const EMPTY = sha256(EMPTY_JSON);

function push(path: string, logger = new MemoryLogger()): Promise<RunResult> {
  const repo = `${fake.host}/${path}`;
  return runEngine(exampleRequest({ ...RAW, repository: repo, push: 'true' }, { push: true }), realDeps({ logger, env: { ...process.env, DOCKER_CONFIG: tmp }, targetRepository: repo }));
}

/** Positions in `requests` of what a test asks about; -1 when there is none. */
function positions(requests: Recorded[], path: string) {
  const at = (f: (r: Recorded) => boolean) => requests.findIndex(f);
  return {
    // A blob is stored by the request that names its digest: the PUT ending a session, or a one-request POST.
    blobStored: (d: string) => at((r) => r.path.startsWith(`/v2/${path}/blobs/uploads/`) && new URL(r.path, fake.url).searchParams.get('digest') === d),
    manifestPut: (ref: string) => at((r) => r.method === 'PUT' && r.path === `/v2/${path}/manifests/${ref}`),
    firstNaming: (d: string) => at((r) => r.path.includes(d)),
  };
}

describe('SBOM referrers on the way up', () => {
  it('go up with the images and each other; each manifest after its blobs and its subject; tags last; a re-run adds nothing', async () => {
    const path = 'acme/sbom-order';
    const result = await push(path);
    const pkg = result.packages[0];
    expect(pkg.sboms?.map((s) => s.platform)).toEqual(['linux/amd64', 'linux/arm64']);
    const requests = [...fake.requests];
    const at = positions(requests, path);
    const referrers = pkg.sboms!.map((s, i) => {
      const m = JSON.parse(fake.manifests.get(path)!.get(s.digest)!.bytes.toString('utf8')) as Manifest;
      return { digest: s.digest, config: m.config.digest, layer: m.layers[0].digest, subject: pkg.platforms[i].digest };
    });

    for (const r of referrers) {
      expect(r.config).toBe(EMPTY);
      const put = at.manifestPut(r.digest);
      expect(put).toBeGreaterThan(at.blobStored(r.config));
      expect(put).toBeGreaterThan(at.blobStored(r.layer));
      expect(at.blobStored(r.layer)).toBeGreaterThan(-1);
      expect(put).toBeGreaterThan(at.manifestPut(r.subject));
      expect(at.manifestPut(r.subject)).toBeGreaterThan(-1);
    }
    // The platforms' referrers overlap: the second's first request before the first's manifest.
    expect(at.firstNaming(referrers[1].layer)).toBeLessThan(at.manifestPut(referrers[0].digest));
    // And they start with the image's content: the SBOMs' first request before the index's PUT.
    expect(Math.min(...referrers.map((r) => at.firstNaming(r.layer)))).toBeLessThan(at.manifestPut(pkg.digest));
    // The empty config both share is checked and stored once.
    expect(requests.filter((r) => r.method === 'HEAD' && r.path.endsWith(`/blobs/${EMPTY}`))).toHaveLength(1);
    expect(requests.filter((r) => new URL(r.path, fake.url).searchParams.get('digest') === EMPTY)).toHaveLength(1);
    // Names last: the tag after every referrer manifest and referrers index.
    const tag = at.manifestPut('1.2.3');
    const content = [pkg.digest, ...referrers.flatMap((r) => [r.digest, referrersTag(r.subject)])].map(at.manifestPut);
    expect(content.every((i) => i > -1 && i < tag)).toBe(true);

    // A re-run: the same SBOMs, already listed; no upload, and no PUT at all.
    const before = fake.requests.length;
    const logger = new MemoryLogger();
    const again = await push(path, logger);
    expect(again.packages[0].sboms).toEqual(pkg.sboms);
    const lines = logger.lines.filter((l) => l.startsWith('SBOM '));
    expect(lines).toHaveLength(2);
    expect(lines.every((l) => l.endsWith('(already listed))'))).toBe(true);
    const rerun = fake.requests.slice(before);
    expect(rerun.filter((r) => r.method === 'POST' || r.method === 'PATCH')).toEqual([]);
    // Not even the tag: it already names the index.
    expect(rerun.filter((r) => r.method === 'PUT').map((r) => r.path)).toEqual([]);
  }, 240_000);

  it('pushes each referrer manifest once its platform image is up, not waiting for the index', async () => {
    const path = 'acme/sbom-early';
    // A referrer manifest, stored: one with a subject.
    const isReferrerPut = (r: Recorded) => {
      if (r.method !== 'PUT' || !r.path.startsWith(`/v2/${path}/manifests/sha256:`)) return false;
      const stored = fake.manifests.get(path)?.get(r.path.slice(`/v2/${path}/manifests/`.length));
      return stored !== undefined && (JSON.parse(stored.bytes.toString('utf8')) as Manifest).subject !== undefined;
    };
    // The index's PUT is answered only once a referrer manifest's PUT has arrived (or after 2 s).
    let referrerFirst = false;
    fake.inject({
      method: 'PUT',
      path: new RegExp(`^/v2/${path}/manifests/sha256:`),
      times: 100,
      respond: async (r): Promise<Canned> => {
        if (r.headers['content-type'] !== MediaType.OciIndex) return 'pass';
        for (let waited = 0; waited < 2000 && !referrerFirst; waited += 10) {
          referrerFirst = fake.requests.some(isReferrerPut);
          if (!referrerFirst) await new Promise((resolve) => setTimeout(resolve, 10));
        }
        return 'pass';
      },
    });
    const pkg = (await push(path)).packages[0];
    expect(referrerFirst).toBe(true);
    expect(pkg.sboms).toHaveLength(2);
  }, 240_000);

  it('a failing SBOM push fails the run with no tag written, once the image content is all up', async () => {
    const path = 'acme/sbom-fails';
    fake.inject({ method: 'HEAD', path: new RegExp(`^/v2/${path}/blobs/${EMPTY}$`), respond: { status: 400 } });
    // A slow registry: every manifest HEAD (all missing: 404) takes a while, so the image's
    // content is still going up well after the SBOM failed.
    const slowly = async () => (await new Promise((r) => setTimeout(r, 300)), { status: 404 });
    fake.inject({ method: 'HEAD', path: new RegExp(`^/v2/${path}/manifests/sha256:`), times: 10, respond: slowly });
    await expect(push(path)).rejects.toThrow(`check blob ${EMPTY}`);
    const requests = fake.requests.filter((r) => r.path.startsWith(`/v2/${path}/`));
    // The run failed only once the image was up whole (its index is its last content); no referrer, no tag.
    const index = requests.filter((r) => r.method === 'PUT' && /\/manifests\/sha256:/.test(r.path));
    expect(index.length).toBe(3);
    expect(requests.filter((r) => r.method === 'PUT' && !/\/manifests\/sha256:|\/blobs\/uploads\//.test(r.path))).toEqual([]);
  }, 240_000);

  it("a failing image push fails the run with the image's error, with no referrer manifest or tag written", async () => {
    const path = 'acme/image-fails';
    fake.inject({ method: 'PUT', path: new RegExp(`^/v2/${path}/manifests/sha256:`), respond: { status: 400, body: '{"errors":[{"code":"MANIFEST_INVALID","message":"not this image"}]}' } });
    await expect(push(path)).rejects.toThrow(/push manifest sha256:[a-f0-9]{64} to .*not this image/);
    // No referrer manifest (one with a subject) and no tag; the SBOMs' blobs went up meanwhile.
    const stored = [...(fake.manifests.get(path)?.values() ?? [])].map((m) => JSON.parse(m.bytes.toString('utf8')) as Manifest);
    expect(stored.filter((m) => m.subject)).toEqual([]);
    expect(fake.tags.get(path)?.size ?? 0).toBe(0);
    expect(fake.repoBlobs.get(path)?.has(EMPTY)).toBe(true);
  }, 240_000);
});
