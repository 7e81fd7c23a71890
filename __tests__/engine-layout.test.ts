import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { runEngine, type RunResult } from '../src/engine.js';
import { imagesOf, type Image, type ImageIndex } from '../src/oci/image.js';
import { LayoutSource, LayoutWriter } from '../src/oci/layout.js';
import { Key, MediaType, type Index } from '../src/oci/spec.js';
import { validateStored } from '../src/oci/validate.js';
import { BASE_LABELS, buildBaseLayout, umociUnpack } from './support/base-images.js';
import { exampleDir, exampleRequest, layoutOnlyDeps, PROVENANCE } from './support/engine.js';

const run = promisify(execFile);
let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'engine-layout-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const build = async (layout: string, raw: Record<string, string> = {}, over = {}): Promise<RunResult> =>
  runEngine(exampleRequest({ 'base-image': 'scratch', platforms: 'linux/amd64,linux/arm64', 'oci-layout-path': layout, ...raw }, over), layoutOnlyDeps());

/** Every docs/image.md#metadata key with the value this run must give it. */
const expectedKeys = (title: string) => ({
  [Key.Source]: PROVENANCE.source,
  [Key.Url]: PROVENANCE.source,
  [Key.Revision]: PROVENANCE.revision,
  [Key.Created]: PROVENANCE.created,
  [Key.Version]: PROVENANCE.version,
  [Key.Title]: title,
  [Key.Description]: PROVENANCE.description,
  [Key.Licenses]: PROVENANCE.licenses,
  [Key.GoVersion]: expect.stringMatching(/^go1\.\d+/),
  [Key.GoPackage]: 'example.com/hello/cmd/hello',
  [Key.GoModule]: 'example.com/hello',
  [Key.Builder]: PROVENANCE.builder,
});

describe('the example app on scratch, two platforms, into an OCI layout', () => {
  let layout: string;
  let result: RunResult;
  let log: string[];
  beforeAll(async () => {
    layout = join(tmp, 'scratch');
    const deps = layoutOnlyDeps();
    result = await runEngine(exampleRequest({ 'base-image': 'scratch', platforms: 'linux/amd64,linux/arm64', 'oci-layout-path': layout }), deps);
    log = deps.logger.lines;
  });

  it('logs each parallel build as one whole group, never nested or interleaved', () => {
    const groups: string[][] = [];
    let open: string[] | undefined;
    for (const line of log) {
      if (line.startsWith('group: ')) {
        expect(open).toBeUndefined();
        open = [line.slice('group: '.length)];
      } else if (line === 'endgroup') {
        groups.push(open!);
        open = undefined;
      } else open?.push(line);
    }
    const builds = groups.filter((g) => g[0].startsWith('Build '));
    expect(builds.map((g) => g[0]).sort()).toEqual([
      'Build example.com/hello/cmd/hello for linux/amd64',
      'Build example.com/hello/cmd/hello for linux/arm64',
    ]);
    for (const g of builds) expect(g.slice(1).join('\n')).toMatch(new RegExp(`GOARCH=${g[0].split('/').at(-1)}[\\s\\S]*built hello with go1`));
  });

  it('writes an index of the two platforms, in order, that validates', async () => {
    const pkg = result.packages[0];
    expect(pkg.artifact.kind).toBe('index');
    const index = (pkg.artifact as ImageIndex).index;
    expect(index.mediaType).toBe(MediaType.OciIndex);
    expect(index.manifests.map((d) => d.platform)).toEqual([
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64' },
    ]);
    const report = await validateStored(new LayoutSource(layout), pkg.digest);
    expect(report).toEqual({ digest: pkg.digest, manifests: 2, layers: 4 });
  });

  it('lays the binary out as ko does, with kodata and the config ko writes', async () => {
    const img = imagesOf(result.packages[0].artifact)[0];
    const cfg = img.config.config!;
    expect(cfg.Entrypoint).toEqual(['/ko-app/hello']);
    expect(cfg.Cmd).toBeUndefined();
    expect(cfg.Env).toEqual(['PATH=/ko-app', 'KO_DATA_PATH=/var/run/ko']);
    expect(img.config.history?.map((h) => h.created_by)).toEqual([
      'ko-annotate build example.com/hello/cmd/hello',
      'ko-annotate build example.com/hello/cmd/hello',
    ]);
    expect(img.config.created).toBe(PROVENANCE.created);
  });

  it('is read by skopeo, and umoci unpacks an amd64 rootfs whose binary runs', async () => {
    const { stdout } = await run('skopeo', ['inspect', `oci:${layout}`]);
    const inspected = JSON.parse(stdout) as { Digest: string; Labels: Record<string, string>; Architecture: string };
    expect(inspected.Labels[Key.Revision]).toBe(PROVENANCE.revision);
    const { stdout: raw } = await run('skopeo', ['inspect', '--raw', `oci:${layout}`]);
    expect((JSON.parse(raw) as Index).manifests).toHaveLength(2);

    // umoci takes a name that resolves to one manifest: name the amd64 image in the layout.
    const amd64 = imagesOf(result.packages[0].artifact)[0];
    await new LayoutWriter(layout).putName(amd64, 'amd64');
    const rootfs = join(tmp, 'rootfs-amd64');
    const runtime = await umociUnpack(layout, 'amd64', rootfs);
    expect((runtime.process as { args: string[] }).args).toEqual(['/ko-app/hello']);
    const { stdout: out } = await run(join(rootfs, 'ko-app', 'hello'), ['tester'], {
      env: { KO_DATA_PATH: join(rootfs, 'var', 'run', 'ko') },
    });
    expect(out).toBe('Hello from kodata, tester! (hello dev)\nbuilt for linux/amd64\n');
  });

  it('is byte-identical when built again with the same inputs', async () => {
    const again = await build(join(tmp, 'scratch-again'));
    expect(again.packages[0].digest).toBe(result.packages[0].digest);
    const a = await readFile(join(layout, 'blobs', 'sha256', result.packages[0].digest.slice(7)));
    const b = await readFile(join(tmp, 'scratch-again', 'blobs', 'sha256', again.packages[0].digest.slice(7)));
    expect(b.equals(a)).toBe(true);
  });

  it('changes only the time-bearing parts when SOURCE_DATE_EPOCH (created) changes', async () => {
    const later = await build(join(tmp, 'scratch-later'), {}, { provenance: { ...PROVENANCE, created: '2027-05-06T07:08:09Z' } });
    const before = imagesOf(result.packages[0].artifact);
    const after = imagesOf(later.packages[0].artifact);
    expect(later.packages[0].digest).not.toBe(result.packages[0].digest);
    for (const [i, img] of after.entries()) {
      // The layers do not carry the time at all...
      expect(img.layers.map((l) => l.digest)).toEqual(before[i].layers.map((l) => l.digest));
      // ...the config differs in `created`, its label and history times, and nothing else.
      const strip = (im: Image) =>
        JSON.stringify(im.config).replaceAll(PROVENANCE.created, 'T').replaceAll('2027-05-06T07:08:09Z', 'T');
      expect(strip(img)).toBe(strip(before[i]));
      expect(img.config.created).toBe('2027-05-06T07:08:09Z');
    }
  });
});

describe('metadata on a base that carries its own labels', () => {
  let result: RunResult;
  let baseDigest: string;
  let platformDigests: string[];
  beforeAll(async () => {
    const base = await buildBaseLayout('oci-index', join(tmp, 'base'), 'v1');
    baseDigest = base.digest;
    platformDigests = base.platforms.map((p) => p.digest);
    result = await runEngine(
      exampleRequest({
        'base-image': `oci:${base.dir}:v1`,
        platforms: 'linux/amd64,linux/arm/v7',
        'oci-layout-path': join(tmp, 'on-base'),
        labels: 'com.example.team=core\norg.opencontainers.image.title=custom title',
        annotations: 'index:com.example.only-index=yes\nmanifest:com.example.only-manifest=yes\ncom.example.both=1,2=3',
      }),
      layoutOnlyDeps(),
    );
  });

  it('drops the base org.opencontainers.image.* labels, keeps its others, and lets user labels win', () => {
    const want = { ...expectedKeys('hello'), 'com.example.base': BASE_LABELS['com.example.base'], 'com.example.team': 'core', [Key.Title]: 'custom title' };
    for (const img of imagesOf(result.packages[0].artifact)) {
      expect(img.config.config?.Labels).toEqual(want);
      expect(Object.keys(img.config.config!.Labels!)).toEqual(Object.keys(want).sort());
    }
  });

  it('annotates each manifest with the keys, its base platform digest and the user manifest annotations', () => {
    const images = imagesOf(result.packages[0].artifact);
    expect(images.map((i) => i.platform)).toEqual([
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm', variant: 'v7' },
    ]);
    for (const [i, img] of images.entries()) {
      expect(img.manifest.annotations).toEqual({
        ...expectedKeys('hello'),
        [Key.BaseName]: expect.stringMatching(/^oci:.*:v1$/),
        // amd64 is the base's first platform and arm/v7 its third.
        [Key.BaseDigest]: platformDigests[i === 0 ? 0 : 2],
        'com.example.only-manifest': 'yes',
        'com.example.both': '1,2=3',
      });
    }
  });

  it('puts the index-level annotations on the manifest when one platform makes no index', async () => {
    const single = await runEngine(
      exampleRequest({
        'base-image': 'scratch',
        platforms: 'linux/amd64',
        annotations: 'index:com.example.only-index=yes\nindex:com.example.level=index\nmanifest:com.example.level=manifest',
      }),
      layoutOnlyDeps(),
    );
    const [img] = imagesOf(single.packages[0].artifact);
    expect(single.packages[0].artifact).toBe(img);
    expect(img.manifest.annotations).toMatchObject({ 'com.example.only-index': 'yes', 'com.example.level': 'manifest' });
  });

  it('annotates the index with the keys, the base index digest and the user index annotations', () => {
    const index = (result.packages[0].artifact as ImageIndex).index;
    expect(index.annotations).toEqual({
      ...expectedKeys('hello'),
      [Key.BaseName]: expect.stringMatching(/^oci:.*:v1$/),
      [Key.BaseDigest]: baseDigest,
      'com.example.only-index': 'yes',
      'com.example.both': '1,2=3',
    });
    expect(Object.keys(index.annotations!)).toEqual(Object.keys(index.annotations!).sort());
  });

  it('keeps the base config (user, env) and appends /ko-app to its PATH', () => {
    const cfg = imagesOf(result.packages[0].artifact)[0].config.config!;
    expect(cfg.User).toBe('65532');
    expect(cfg.Env).toContain('PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/ko-app');
    expect(cfg.Cmd).toBeUndefined();
  });

  it('builds arm/v7 with GOARM=7', () => {
    const arm = result.packages[0].built.platforms[1];
    expect(arm.buildInfo.settings.GOARCH).toBe('arm');
    expect(arm.buildInfo.settings.GOARM).toBe('7');
  });
});

describe('a package that does not compile', () => {
  it('fails with the compiler output and one annotation per error, on workspace-relative paths', async () => {
    const { cp, writeFile } = await import('node:fs/promises');
    const { GoBuildError } = await import('../src/gobuild/go.js');
    const ws = join(tmp, 'broken');
    await cp(join(exampleDir, '..', 'hello'), ws, { recursive: true });
    await writeFile(join(ws, 'cmd', 'hello', 'broken.go'), 'package main\n\nfunc broken() int {\n\treturn nope\n}\n');
    const err = await runEngine(
      { ...exampleRequest({ 'base-image': 'scratch', platforms: 'linux/amd64' }), workspace: ws },
      layoutOnlyDeps(),
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GoBuildError);
    expect((err as Error).message).toContain('undefined: nope');
    expect((err as InstanceType<typeof GoBuildError>).diagnostics).toEqual([
      { message: 'undefined: nope', where: { file: 'cmd/hello/broken.go', startLine: 4, startColumn: 9, title: 'go build' } },
    ]);
  });
});
