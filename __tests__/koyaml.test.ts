import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadKoConfig, parseKoConfig, refuseToolexec, refuseToolexecInEnv, resolveBuild, type KoConfig } from '../src/config/koyaml.js';

/** A .ko.yaml as ko users write them: a multi-module repo with three builds. */
const FIXTURE = `# ko configuration of example.com/shop
defaultBaseImage: cgr.dev/chainguard/static:latest
baseImageOverrides:
  example.com/shop/cmd/worker: gcr.io/distroless/base-debian12:nonroot
defaultPlatforms:
  - linux/amd64
  - linux/arm64
defaultEnv:
  - GOPRIVATE=git.example.com
defaultFlags:
  - -tags=netgo
defaultLdflags: -s -w

builds:
  - id: api
    main: ./cmd/api
    flags: -v -v
    ldflags:
      - -s -w
      - -X main.commit={{.Git.FullCommit}}
      - -X main.version={{.Env.VERSION}}
  - id: worker
    dir: .
    main: ./cmd/worker/main.go
    env:
      - CGO_ENABLED=0
      - GOFLAGS=-mod=vendor
    flags:
      - -tags
      - netgo osusergo
    ldflags: -X main.commit={{.Git.FullCommit}}
  - id: tool
    dir: ./tools
    main: ./cmd/tool
`;

let tmp: string;
let wd: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'ko-yaml-'));
  wd = path.join(tmp, 'shop');
  for (const d of ['cmd/api', 'cmd/worker', 'cmd/other', 'tools/cmd/tool']) {
    await mkdir(path.join(wd, d), { recursive: true });
    await writeFile(path.join(wd, d, 'main.go'), 'package main\n\nfunc main() {}\n');
  }
  await writeFile(path.join(wd, '.ko.yaml'), FIXTURE);
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('parseKoConfig', () => {
  it('parses the fixture into typed settings', () => {
    const c = parseKoConfig(FIXTURE, '.ko.yaml');
    const want: KoConfig = {
      file: '.ko.yaml',
      defaultBaseImage: 'cgr.dev/chainguard/static:latest',
      baseImageOverrides: { 'example.com/shop/cmd/worker': 'gcr.io/distroless/base-debian12:nonroot' },
      defaultPlatforms: ['linux/amd64', 'linux/arm64'],
      defaultEnv: ['GOPRIVATE=git.example.com'],
      defaultFlags: ['-tags=netgo'],
      defaultLdflags: ['-s', '-w'],
      builds: [
        {
          index: 0,
          id: 'api',
          dir: '.',
          main: './cmd/api',
          packageDir: 'cmd/api',
          flags: ['-v', '-v'],
          ldflags: ['-s -w', '-X main.commit={{.Git.FullCommit}}', '-X main.version={{.Env.VERSION}}'],
        },
        {
          index: 1,
          id: 'worker',
          dir: '.',
          main: './cmd/worker/main.go',
          packageDir: 'cmd/worker',
          env: ['CGO_ENABLED=0', 'GOFLAGS=-mod=vendor'],
          flags: ['-tags', 'netgo osusergo'],
          ldflags: ['-X main.commit={{.Git.FullCommit}}'],
        },
        { index: 2, id: 'tool', dir: './tools', main: './cmd/tool', packageDir: 'tools/cmd/tool' },
      ],
    };
    expect(c).toEqual(want);
  });

  it('accepts an empty file, nulls, and keys in any case (viper ignores case)', () => {
    expect(parseKoConfig('', 'k.yaml')).toEqual({ file: 'k.yaml', baseImageOverrides: {}, builds: [] });
    expect(parseKoConfig('# nothing\n', 'k.yaml').builds).toEqual([]);
    const c = parseKoConfig('defaultbaseimage: alpine\ndefaultEnv:\nbuilds:\n  - ID: x\n    Main: ./cmd/x\n', 'k.yaml');
    expect(c.defaultBaseImage).toBe('alpine');
    expect(c.defaultEnv).toBeUndefined();
    expect(c.builds[0]).toMatchObject({ id: 'x', packageDir: 'cmd/x' });
  });

  it('reads a single env string as one line (mapstructure lifts it) and resolves YAML aliases', () => {
    const c = parseKoConfig('builds:\n  - env: A=1 2\n    ldflags: &l -s -w\n  - main: ./b\n    ldflags: *l\n', 'k.yaml');
    expect(c.builds[0]!.env).toEqual(['A=1 2']);
    expect(c.builds[1]!.ldflags).toEqual(['-s -w']);
  });

  it.each([
    ['defaultBaseImg: alpine\n', 'k.yaml:1:1: unknown key "defaultBaseImg" (did you mean "defaultBaseImage"?)'],
    ['builds:\n  - id: a\n    mian: ./cmd\n', 'k.yaml:3:5: unknown key "builds[0].mian" (did you mean "main"?)'],
    ['builds:\n  - goos: [linux]\n', 'k.yaml:2:5: unknown key "builds[0].goos"'],
    ['builds:\n  - linux_capabilities: bpf\n', 'k.yaml:2:5: key "builds[0].linux_capabilities" is not supported: file capabilities'],
    ['builds:\n  main: ./cmd\n', 'k.yaml:2:3: builds: expected a list, found a mapping'],
    ['builds:\n  - main: 12\n', 'k.yaml:2:11: builds[0].main: expected a string, found number 12 (quote it)'],
    ['defaultPlatforms:\n  - linux/amd64\n  - [x]\n', 'k.yaml:3:5: defaultPlatforms[1]: expected a string, found a list'],
    ['baseImageOverrides: alpine\n', 'k.yaml:1:21: baseImageOverrides: expected a mapping, found string "alpine"'],
    ['baseImageOverrides:\n  example.com/a: ""\n', 'baseImageOverrides.example.com/a: "" is not an image reference'],
    ['defaultEnv: [NOEQUALS]\n', 'defaultEnv[0]: "NOEQUALS" is not KEY=VALUE'],
    ['- a\n- b\n', 'k.yaml:1:1: expected a mapping, found a list'],
    ['a: [\n', 'k.yaml:2:1: invalid YAML'],
    ['defaultEnv: [A=1]\ndefaultenv: [B=2]\n', 'k.yaml:2:1: key "defaultenv" repeats "defaultEnv"'],
  ])('refuses %j', (text, message) => {
    expect(() => parseKoConfig(text, 'k.yaml')).toThrow(message);
  });

  it.each([
    ['defaultFlags: -v -toolexec=/bin/evil\n', 'k.yaml defaultFlags: "-toolexec=/bin/evil" is not allowed'],
    ['builds:\n  - flags: [--toolexec, /bin/evil]\n', 'k.yaml builds[0].flags: "--toolexec" is not allowed'],
    ['builds:\n  - env: ["GOFLAGS=-mod=mod -toolexec=x"]\n', 'k.yaml builds[0].env (GOFLAGS): "-toolexec=x" is not allowed'],
  ])('refuses -toolexec like ko, saying why: %j', (text, message) => {
    expect(() => parseKoConfig(text, 'k.yaml')).toThrow(message);
    expect(() => parseKoConfig(text, 'k.yaml')).toThrow('run an arbitrary program');
  });

  it('lets flags that only mention toolexec through', () => {
    expect(() => refuseToolexec(['-ldflags=-X main.x=-toolexec'], 'input "flags"')).not.toThrow();
    expect(() => refuseToolexec(['-toolexec'], 'input "flags"')).toThrow('input "flags": "-toolexec" is not allowed');
    expect(() => refuseToolexecInEnv(['GOFLAGS_X=-toolexec', 'A=-toolexec'], 'input "env"')).not.toThrow();
  });
});

describe('resolveBuild', () => {
  const config = parseKoConfig(FIXTURE, '.ko.yaml');

  it('picks the entry whose dir/main is the package, with its own flags and ldflags', () => {
    expect(resolveBuild(config, 'example.com/shop/cmd/api', './cmd/api')).toEqual({
      id: 'api',
      dir: '.',
      baseImage: 'cgr.dev/chainguard/static:latest',
      platforms: ['linux/amd64', 'linux/arm64'],
      env: ['GOPRIVATE=git.example.com'],
      flags: ['-v', '-v'],
      ldflags: ['-s -w', '-X main.commit={{.Git.FullCommit}}', '-X main.version={{.Env.VERSION}}'],
      where: { env: '.ko.yaml defaultEnv', flags: '.ko.yaml builds[0].flags', ldflags: '.ko.yaml builds[0].ldflags' },
    });
  });

  it('matches a main that names a .go file by its directory, and applies baseImageOverrides', () => {
    expect(resolveBuild(config, 'example.com/shop/cmd/worker', 'cmd/worker')).toMatchObject({
      id: 'worker',
      baseImage: 'gcr.io/distroless/base-debian12:nonroot',
      env: ['CGO_ENABLED=0', 'GOFLAGS=-mod=vendor'],
      flags: ['-tags', 'netgo osusergo'],
      ldflags: ['-X main.commit={{.Git.FullCommit}}'],
      where: { env: '.ko.yaml builds[1].env' },
    });
  });

  it('matches baseImageOverrides keys to import paths whatever the case, as ko (through viper) does', () => {
    const c = parseKoConfig('baseImageOverrides:\n  example.com/shop/cmd/API: alpine\n', '.ko.yaml');
    expect(resolveBuild(c, 'example.com/Shop/cmd/api', 'cmd/api').baseImage).toBe('alpine');
  });

  it('joins dir and main, and runs go in dir (a second module)', () => {
    expect(resolveBuild(config, 'example.com/tools/cmd/tool', './tools/cmd/tool/')).toMatchObject({
      id: 'tool',
      dir: 'tools',
      flags: ['-tags=netgo'],
      ldflags: ['-s', '-w'],
      where: { flags: '.ko.yaml defaultFlags', ldflags: '.ko.yaml defaultLdflags' },
    });
  });

  it('accepts Windows separators in the package directory', () => {
    expect(resolveBuild(config, 'example.com/tools/cmd/tool', '.\\tools\\cmd\\tool').id).toBe('tool');
  });

  it('falls back to the defaults for a package without an entry', () => {
    const r = resolveBuild(config, 'example.com/shop/cmd/other', './cmd/other');
    expect(r.id).toBeUndefined();
    expect(r).toMatchObject({ dir: '.', flags: ['-tags=netgo'], ldflags: ['-s', '-w'], env: ['GOPRIVATE=git.example.com'] });
  });

  it('gives empty settings without a configuration', () => {
    expect(resolveBuild(undefined, 'example.com/x', '.')).toEqual({
      dir: '.',
      env: [],
      flags: [],
      ldflags: [],
      where: { env: '.ko.yaml defaultEnv', flags: '.ko.yaml defaultFlags', ldflags: '.ko.yaml defaultLdflags' },
    });
  });

  it('refuses two entries for one package', () => {
    const c = parseKoConfig('builds:\n  - id: a\n    main: ./cmd/x\n  - dir: cmd\n    main: x\n', 'k.yaml');
    expect(() => resolveBuild(c, 'example.com/cmd/x', './cmd/x')).toThrow('k.yaml: builds[0] (id "a") and builds[1] both select package "./cmd/x"');
  });
});

describe('loadKoConfig', () => {
  it('reads .ko.yaml from the working directory and checks each main on disk', async () => {
    const c = await loadKoConfig({ workingDirectory: wd, env: {} });
    expect(c?.file).toBe(path.join(wd, '.ko.yaml'));
    expect(c?.builds.map((b) => b.packageDir)).toEqual(['cmd/api', 'cmd/worker', 'tools/cmd/tool']);
    expect(resolveBuild(c, 'example.com/shop/cmd/api', './cmd/api').ldflags).toContain('-X main.commit={{.Git.FullCommit}}');
  });

  it('returns undefined without a file or KO_ variables', async () => {
    expect(await loadKoConfig({ workingDirectory: path.join(wd, 'cmd'), env: {} })).toBeUndefined();
  });

  it('reads .ko.yml, and prefers .ko.yaml when both exist', async () => {
    const dir = path.join(tmp, 'yml');
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, '.ko.yml'), 'defaultBaseImage: from-yml\n');
    expect((await loadKoConfig({ workingDirectory: dir, env: {} }))?.defaultBaseImage).toBe('from-yml');
    await writeFile(path.join(dir, '.ko.yaml'), 'defaultBaseImage: from-yaml\n');
    expect((await loadKoConfig({ workingDirectory: dir, env: {} }))?.defaultBaseImage).toBe('from-yaml');
  });

  it('follows KO_CONFIG_PATH to a file or to a directory holding .ko.yaml', async () => {
    const other = path.join(tmp, 'elsewhere');
    await mkdir(other, { recursive: true });
    await writeFile(path.join(other, 'my-ko.yaml'), 'defaultBaseImage: from-file\n');
    await writeFile(path.join(other, '.ko.yaml'), 'defaultBaseImage: from-dir\n');
    const viaFile = await loadKoConfig({ workingDirectory: wd, env: { KO_CONFIG_PATH: path.join(other, 'my-ko.yaml') } });
    expect(viaFile?.defaultBaseImage).toBe('from-file');
    const viaDir = await loadKoConfig({ workingDirectory: wd, env: { KO_CONFIG_PATH: other } });
    expect(viaDir?.defaultBaseImage).toBe('from-dir');
    await expect(loadKoConfig({ workingDirectory: wd, env: { KO_CONFIG_PATH: path.join(other, 'missing.yaml') } })).rejects.toThrow(
      `KO_CONFIG_PATH ${JSON.stringify(path.join(other, 'missing.yaml'))}`,
    );
    await expect(loadKoConfig({ workingDirectory: wd, env: { KO_CONFIG_PATH: path.join(wd, 'cmd') } })).rejects.toThrow(
      'is a directory without a .ko.yaml file',
    );
  });

  it('lets KO_DEFAULTBASEIMAGE and KO_DEFAULTPLATFORMS override the file, or stand alone', async () => {
    const c = await loadKoConfig({ workingDirectory: wd, env: { KO_DEFAULTBASEIMAGE: 'alpine:3', KO_DEFAULTPLATFORMS: 'linux/arm64,linux/amd64' } });
    expect(c).toMatchObject({ defaultBaseImage: 'alpine:3', defaultPlatforms: ['linux/arm64', 'linux/amd64'] });
    expect(c?.builds).toHaveLength(3);
    const alone = await loadKoConfig({ workingDirectory: path.join(wd, 'cmd'), env: { KO_DEFAULTBASEIMAGE: 'alpine:3' } });
    expect(alone).toEqual({ baseImageOverrides: {}, builds: [], defaultBaseImage: 'alpine:3' });
  });

  it('fails on a main that does not exist, naming the file and entry', async () => {
    const dir = path.join(tmp, 'missing-main');
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, '.ko.yaml'), 'builds:\n  - id: gone\n    main: ./cmd/gone\n');
    await expect(loadKoConfig({ workingDirectory: dir, env: {} })).rejects.toThrow(
      `${path.join(dir, '.ko.yaml')} builds[0]: main "./cmd/gone" in dir "." does not exist`,
    );
  });

  it('uses the directory of a main that is a file without a .go suffix check', async () => {
    const dir = path.join(tmp, 'main-file');
    await mkdir(path.join(dir, 'cmd', 'x'), { recursive: true });
    await writeFile(path.join(dir, 'cmd', 'x', 'app.go'), 'package main\n');
    await writeFile(path.join(dir, '.ko.yaml'), 'builds:\n  - main: cmd/x/app.go\n  - main: cmd\n');
    const c = await loadKoConfig({ workingDirectory: dir, env: {} });
    expect(c?.builds.map((b) => b.packageDir)).toEqual(['cmd/x', 'cmd']);
  });
});
