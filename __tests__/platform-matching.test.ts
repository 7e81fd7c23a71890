// docs/cgo.md#platform-matching: a requested variant that the base lacks is built on the base's
// best lower one (containerd's order), and published as the platform requested.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { runEngine, type RunResult } from '../src/engine.js';
import { imagesOf, type ImageIndex } from '../src/oci/image.js';
import { LayoutSource, LayoutWriter } from '../src/oci/layout.js';
import { Key } from '../src/oci/spec.js';
import { validateStored } from '../src/oci/validate.js';
import { buildBaseLayout, umociUnpack, type BaseLayout } from './support/base-images.js';
import { exampleRequest, layoutOnlyDeps } from './support/engine.js';

const run = promisify(execFile);
let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'platform-matching-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** `go version -m` of the binary in the image `digest` of `layout` (unpacked by umoci, not by us). */
async function buildSettings(layout: string, result: RunResult, i: number): Promise<string> {
  const image = imagesOf(result.packages[0].artifact)[i];
  await new LayoutWriter(layout).putName(image, `image-${i}`);
  const rootfs = join(tmp, `rootfs-${i}-${image.digest.slice(7, 19)}`);
  await umociUnpack(layout, `image-${i}`, rootfs);
  const { stdout } = await run('go', ['version', '-m', join(rootfs, 'ko-app', 'hello')]);
  return stdout;
}

describe('linux/amd64/v3 on a base index that has only linux/amd64 (and linux/arm64)', () => {
  let base: BaseLayout;
  let layout: string;
  let result: RunResult;
  let log: string[];
  beforeAll(async () => {
    base = await buildBaseLayout('oci-index', join(tmp, 'base'), 'v1');
    layout = join(tmp, 'out');
    const deps = layoutOnlyDeps();
    result = await runEngine(
      exampleRequest({ 'base-image': `oci:${base.dir}:v1`, platforms: 'linux/amd64/v3,linux/arm64', 'oci-layout-path': layout }),
      deps,
    );
    log = deps.logger.lines;
  });

  it('publishes an index whose entries are the platforms requested, amd64 as v3', async () => {
    const index = (result.packages[0].artifact as ImageIndex).index;
    expect(index.manifests.map((d) => d.platform)).toEqual([
      { os: 'linux', architecture: 'amd64', variant: 'v3' },
      { os: 'linux', architecture: 'arm64' },
    ]);
    const [amd64, arm64] = imagesOf(result.packages[0].artifact);
    expect([amd64.config.architecture, amd64.config.variant]).toEqual(['amd64', 'v3']);
    expect(arm64.config.variant).toBeUndefined();
    expect(result.packages[0].platforms.map((p) => p.platform)).toEqual(['linux/amd64/v3', 'linux/arm64']);
    // The validator checks each index entry's platform against its config, variant included.
    await expect(validateStored(new LayoutSource(layout), result.packages[0].digest)).resolves.toMatchObject({ manifests: 2 });
  });

  it('builds amd64/v3 on the base entry linux/amd64, and says so', () => {
    const [amd64, arm64] = imagesOf(result.packages[0].artifact);
    const entry = (p: string) => base.platforms.find((b) => b.platform === p)!.digest;
    expect(amd64.manifest.annotations?.[Key.BaseDigest]).toBe(entry('linux/amd64'));
    expect(arm64.manifest.annotations?.[Key.BaseDigest]).toBe(entry('linux/arm64'));
    expect(log).toContainEqual(
      `linux/amd64/v3: base oci:${base.dir}:v1 has no linux/amd64/v3 entry; building on its linux/amd64 entry (${entry('linux/amd64')})`,
    );
    // An exact match is not worth a line.
    expect(log.filter((l) => l.includes('building on its'))).toHaveLength(1);
  });

  it('compiles the amd64 binary with GOAMD64=v3 and the arm64 one with no GOAMD64', async () => {
    const amd64 = await buildSettings(layout, result, 0);
    expect(amd64).toMatch(/\tbuild\tGOARCH=amd64\n/);
    expect(amd64).toMatch(/\tbuild\tGOAMD64=v3\n/);
    const arm64 = await buildSettings(layout, result, 1);
    expect(arm64).toMatch(/\tbuild\tGOARCH=arm64\n/);
    expect(arm64).not.toMatch(/GOAMD64/);
  });
});

describe('a single-manifest linux/amd64 base', () => {
  let base: BaseLayout;
  beforeAll(async () => {
    base = await buildBaseLayout('oci-image', join(tmp, 'single'), 'v1');
  });

  it('serves linux/amd64/v3: the image is amd64/v3, built with GOAMD64=v3, on that manifest', async () => {
    const layout = join(tmp, 'single-out');
    const result = await runEngine(
      exampleRequest({ 'base-image': `oci:${base.dir}:v1`, platforms: 'linux/amd64/v3', 'oci-layout-path': layout }),
      layoutOnlyDeps(),
    );
    const [image] = imagesOf(result.packages[0].artifact);
    expect(result.packages[0].artifact.kind).toBe('image');
    expect(image.platform).toEqual({ os: 'linux', architecture: 'amd64', variant: 'v3' });
    expect(image.config.variant).toBe('v3');
    expect(image.manifest.annotations?.[Key.BaseDigest]).toBe(base.digest);
    expect(await buildSettings(layout, result, 0)).toMatch(/\tbuild\tGOAMD64=v3\n/);
  });

  it('does not serve linux/arm64, naming both', async () => {
    await expect(
      runEngine(exampleRequest({ 'base-image': `oci:${base.dir}:v1`, platforms: 'linux/arm64' }), layoutOnlyDeps()),
    ).rejects.toThrow(`is a single linux/amd64 image; it cannot serve linux/arm64`);
  });
});
