// docs/image.md#sbom end to end: the example app built for two platforms by the engine with the real
// dependencies, pushed to a real distribution 2.8 registry with token auth. distribution 2.8
// has no referrers API, so each SBOM must be findable through the referrers tag schema.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runEngine, type RunResult } from '../src/engine.js';
import { MemoryLogger } from '../src/log.js';
import { imagesOf } from '../src/oci/image.js';
import { MediaType, type Index, type Manifest } from '../src/oci/spec.js';
import { Registry } from '../src/registry/client.js';
import type { Repository } from '../src/registry/repository.js';
import { targetCredentials } from '../src/registry/credentials.js';
import { referrersTag } from '../src/publish/referrers.js';
import type { SpdxDocument } from '../src/sbom/spdx.js';
import { realDeps } from '../src/wiring.js';
import { exampleRequest } from './support/engine.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { spdxProblems } from './support/spdx.js';

let reg: TestRegistry;
let tmp: string;
let repoName: string;
let read: Repository;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'sbom-registry-'));
  reg = await startRegistry({ auth: 'token' });
  repoName = `${reg.host}/acme/hello`;
  read = new Registry(reg.host, { credentials: targetCredentials(reg.host, reg.username, reg.password), logger: new MemoryLogger() }).repository('acme/hello');
});
afterAll(async () => {
  await reg?.stop();
  await rm(tmp, { recursive: true, force: true });
});

// The example lives in this repository's work tree, so Go stamps its commit and dirty state
// into the binary; -buildvcs=false keeps the two runs below identical while that tree changes.
const RAW = { 'base-image': 'scratch', platforms: 'linux/amd64,linux/arm64', flags: '-buildvcs=false' };

const build = (logger: MemoryLogger, raw: Record<string, string> = {}): Promise<RunResult> =>
  runEngine(
    exampleRequest({ ...RAW, repository: repoName, push: 'true', ...raw }, { push: true }),
    // An empty Docker config, so that nothing but the given credentials is used.
    realDeps({ logger, env: { ...process.env, DOCKER_CONFIG: tmp }, username: reg.username, token: reg.password, targetRepository: repoName }),
  );

const json = <T>(b: Buffer): T => JSON.parse(b.toString('utf8')) as T;
const blobBytes = async (digest: string): Promise<Buffer> => {
  const chunks: Buffer[] = [];
  for await (const c of await read.getBlob(digest)) chunks.push(Buffer.from(c as Uint8Array));
  return Buffer.concat(chunks);
};

describe('SBOMs as referrers on a registry without the referrers API', () => {
  let first: RunResult;
  let logger: MemoryLogger;
  beforeAll(async () => {
    logger = new MemoryLogger();
    first = await build(logger);
  });

  it('returns one SBOM per platform image and logs one line each', () => {
    const pkg = first.packages[0];
    expect(pkg.sboms?.map((s) => s.platform)).toEqual(['linux/amd64', 'linux/arm64']);
    const lines = logger.lines.filter((l) => l.startsWith('SBOM '));
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^SBOM linux\/amd64: SPDX 2\.3, \d+ packages, .+@sha256:[a-f0-9]{64} refers to sha256:[a-f0-9]{64} \(in the referrers index sha256-[a-f0-9]{64}\)$/);
  });

  it('has no referrers API, so each image has a sha256-<hex> tag listing exactly its one SPDX referrer', async () => {
    const pkg = first.packages[0];
    for (const [i, image] of imagesOf(pkg.artifact).entries()) {
      const raw = await read.getManifest(referrersTag(image.digest));
      expect(raw.mediaType).toBe(MediaType.OciIndex);
      const index = json<Index>(raw.bytes);
      expect(index.manifests).toHaveLength(1);
      const entry = index.manifests[0];
      expect(entry).toMatchObject({ mediaType: MediaType.OciManifest, artifactType: MediaType.SpdxJson, digest: pkg.sboms![i].digest });
      expect(entry.annotations).toEqual({ 'org.opencontainers.image.created': '2026-01-02T03:04:05Z' });

      const referrer = json<Manifest>((await read.getManifest(entry.digest)).bytes);
      expect(referrer.subject).toEqual({ mediaType: image.mediaType, digest: image.digest, size: image.size });
      expect(referrer.artifactType).toBe(MediaType.SpdxJson);
      expect(referrer.config).toEqual({ mediaType: MediaType.OciEmpty, digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', size: 2 });
      expect((await blobBytes(referrer.config.digest)).toString()).toBe('{}');
      expect(referrer.layers.map((l) => l.mediaType)).toEqual([MediaType.SpdxJson]);

      const doc = json<SpdxDocument>(await blobBytes(referrer.layers[0].digest));
      expect(spdxProblems(doc)).toEqual([]);
      const names = doc.packages.map((p) => p.name);
      expect(names).toEqual(expect.arrayContaining(['example.com/hello', 'example.com/greet', 'stdlib']));
      const imagePkg = doc.packages.find((p) => p.SPDXID === 'SPDXRef-Image')!;
      expect(imagePkg.versionInfo).toBe(image.digest);
      expect(imagePkg.externalRefs[0].referenceLocator).toContain(`?arch=${image.platform.architecture}&repository_url=${repoName}`);
      expect(doc.creationInfo.created).toBe('2026-01-02T03:04:05Z');
    }
  });

  it('leaves the image index without any SBOM', async () => {
    const pkg = first.packages[0];
    const index = json<Index>((await read.getManifest(pkg.digest)).bytes);
    expect(index.manifests.map((d) => d.digest)).toEqual(imagesOf(pkg.artifact).map((i) => i.digest));
    expect(index.manifests.every((d) => d.mediaType === MediaType.OciManifest && d.artifactType === undefined)).toBe(true);
    const tagged = json<Index>((await read.getManifest('1.2.3')).bytes);
    expect(tagged.manifests).toHaveLength(2);
  });

  it('changes nothing on a second identical run: same SBOM digests, still one referrer per image', async () => {
    const again = new MemoryLogger();
    const second = await build(again);
    expect(second.packages[0].digest).toBe(first.packages[0].digest);
    expect(second.packages[0].sboms).toEqual(first.packages[0].sboms);
    const lines = again.lines.filter((l) => l.startsWith('SBOM '));
    expect(lines).toHaveLength(2);
    expect(lines.every((l) => l.endsWith('(already listed))'))).toBe(true);
    for (const image of imagesOf(first.packages[0].artifact)) {
      const index = json<Index>((await read.getManifest(referrersTag(image.digest))).bytes);
      expect(index.manifests).toHaveLength(1);
    }
  });

  it('with sbom: none, makes none', async () => {
    const result = await build(new MemoryLogger(), { sbom: 'none' });
    expect(result.packages[0].sboms).toBeUndefined();
  });
});

describe('SBOMs without push, into an OCI layout', () => {
  it('computes the referrer digests and writes their blobs into the layout', async () => {
    const layout = join(tmp, 'layout');
    const logger = new MemoryLogger();
    const result = await runEngine(
      exampleRequest({ ...RAW, repository: repoName, 'oci-layout-path': layout }),
      realDeps({ logger, env: { ...process.env, DOCKER_CONFIG: tmp } }),
    );
    const sboms = result.packages[0].sboms!;
    expect(sboms).toHaveLength(2);
    const lines = logger.lines.filter((l) => l.startsWith('SBOM '));
    expect(lines).toHaveLength(2);
    expect(lines.every((l) => l.endsWith('(not pushed)'))).toBe(true);
    for (const s of sboms) {
      const manifest = json<Manifest>(await readFile(join(layout, 'blobs', 'sha256', s.digest.slice('sha256:'.length))));
      expect(manifest.artifactType).toBe(MediaType.SpdxJson);
      for (const d of [manifest.config, ...manifest.layers]) {
        await expect(readFile(join(layout, 'blobs', 'sha256', d.digest.slice('sha256:'.length)))).resolves.toHaveLength(d.size);
      }
    }
  });
});
