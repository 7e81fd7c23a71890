import { describe, expect, it } from '@jest/globals';
import { Readable } from 'node:stream';
import { assembleImage, inheritedLabels, metadataKeys } from '../src/gobuild/assemble.js';
import { childEnv, GoBuildError, GoToolchain, parseBuildInfo, parseDiagnostics, type Command } from '../src/gobuild/go.js';
import { scratch } from '../src/oci/image.js';
import { bestPlatformMatch, compatiblePlatforms, formatPlatform, goEnv, parsePlatform, platformMatches } from '../src/oci/platform.js';
import { Key } from '../src/oci/spec.js';

describe('platforms', () => {
  it.each([
    ['linux/amd64', { os: 'linux', architecture: 'amd64' }, { GOOS: 'linux', GOARCH: 'amd64' }],
    ['linux/arm64', { os: 'linux', architecture: 'arm64' }, { GOOS: 'linux', GOARCH: 'arm64' }],
    ['linux/arm/v7', { os: 'linux', architecture: 'arm', variant: 'v7' }, { GOOS: 'linux', GOARCH: 'arm', GOARM: '7' }],
    ['linux/arm/v6', { os: 'linux', architecture: 'arm', variant: 'v6' }, { GOOS: 'linux', GOARCH: 'arm', GOARM: '6' }],
    ['linux/amd64/v3', { os: 'linux', architecture: 'amd64', variant: 'v3' }, { GOOS: 'linux', GOARCH: 'amd64', GOAMD64: 'v3' }],
    ['linux/arm64/v8.2', { os: 'linux', architecture: 'arm64', variant: 'v8.2' }, { GOOS: 'linux', GOARCH: 'arm64', GOARM64: 'v8.2' }],
  ])('%s parses, formats back and sets the Go environment', (s, platform, env) => {
    expect(parsePlatform(s)).toEqual(platform);
    expect(formatPlatform(parsePlatform(s))).toBe(s);
    expect(goEnv(parsePlatform(s))).toEqual(env);
  });

  it.each(['linux', 'linux/amd65', 'linux/arm64/v8.', 'linux/amd64/v3.1', 'linux.x/amd64', 'linux/arm/v9', 'Linux/amd64', 'linux/amd64/v3/x', 'linux//amd64', ''])('rejects %j', (s) => {
    expect(() => parsePlatform(s)).toThrow(JSON.stringify(s));
  });

  it('matches arm64 with or without the implied v8 variant, and never v7 for v6', () => {
    expect(platformMatches({ os: 'linux', architecture: 'arm64' }, { os: 'linux', architecture: 'arm64', variant: 'v8' })).toBe(true);
    expect(platformMatches({ os: 'linux', architecture: 'arm', variant: 'v6' }, { os: 'linux', architecture: 'arm', variant: 'v7' })).toBe(false);
    expect(platformMatches({ os: 'linux', architecture: 'amd64' }, undefined)).toBe(false);
  });

  // containerd/platforms' compare.go (platformVector), less its other-architecture fallbacks.
  it.each([
    ['linux/amd64', ['linux/amd64']],
    ['linux/amd64/v1', ['linux/amd64']],
    ['linux/amd64/v2', ['linux/amd64/v2', 'linux/amd64']],
    ['linux/amd64/v3', ['linux/amd64/v3', 'linux/amd64/v2', 'linux/amd64']],
    ['linux/amd64/v4', ['linux/amd64/v4', 'linux/amd64/v3', 'linux/amd64/v2', 'linux/amd64']],
    ['linux/arm/v7', ['linux/arm/v7', 'linux/arm/v6', 'linux/arm/v5']],
    ['linux/arm', ['linux/arm/v7', 'linux/arm/v6', 'linux/arm/v5']],
    ['linux/arm/v6', ['linux/arm/v6', 'linux/arm/v5']],
    ['linux/arm/v5', ['linux/arm/v5']],
    ['linux/arm64', ['linux/arm64']],
    ['linux/arm64/v8', ['linux/arm64']],
    ['linux/arm64/v8.2', ['linux/arm64/v8.2', 'linux/arm64/v8.1', 'linux/arm64']],
    ['linux/arm64/v9', ['linux/arm64/v9', 'linux/arm64/v8.5', 'linux/arm64/v8.4', 'linux/arm64/v8.3', 'linux/arm64/v8.2', 'linux/arm64/v8.1', 'linux/arm64']],
    ['linux/arm64/v9.2', ['linux/arm64/v9.2', 'linux/arm64/v9.1', 'linux/arm64/v9', 'linux/arm64/v8.7', 'linux/arm64/v8.6', 'linux/arm64/v8.5', 'linux/arm64/v8.4', 'linux/arm64/v8.3', 'linux/arm64/v8.2', 'linux/arm64/v8.1', 'linux/arm64']],
    ['linux/arm64/v9.5', ['linux/arm64/v9.5', 'linux/arm64/v9.4', 'linux/arm64/v9.3', 'linux/arm64/v9.2', 'linux/arm64/v9.1', 'linux/arm64/v9', 'linux/arm64/v8.9', 'linux/arm64/v8.8', 'linux/arm64/v8.7', 'linux/arm64/v8.6', 'linux/arm64/v8.5', 'linux/arm64/v8.4', 'linux/arm64/v8.3', 'linux/arm64/v8.2', 'linux/arm64/v8.1', 'linux/arm64']],
    ['linux/riscv64', ['linux/riscv64']],
  ])('%s runs code for, best first, %j', (want, order) => {
    expect(compatiblePlatforms(parsePlatform(want)).map(formatPlatform)).toEqual(order);
  });

  const entries = (...ps: string[]) => ps.map((p) => (p === 'attestation' ? undefined : parsePlatform(p)));
  it.each([
    // [requested, the base's entries, the entry used (-1: none)]
    ['linux/amd64/v3', ['linux/amd64'], 0],
    ['linux/amd64/v3', ['linux/amd64', 'linux/amd64/v2'], 1],
    ['linux/amd64/v3', ['linux/amd64', 'linux/amd64/v2', 'linux/amd64/v3'], 2],
    ['linux/amd64/v3', ['linux/amd64/v4'], -1],
    ['linux/amd64', ['linux/amd64/v2'], -1],
    ['linux/amd64', ['linux/amd64/v1'], 0],
    ['linux/amd64', ['linux/386'], -1],
    ['linux/amd64/v2', ['linux/arm64', 'attestation', 'linux/amd64'], 2],
    ['linux/arm/v7', ['linux/arm/v5', 'linux/arm/v6'], 1],
    ['linux/arm/v7', ['linux/arm'], 0],
    ['linux/arm/v6', ['linux/arm/v7'], -1],
    ['linux/arm/v6', ['linux/arm'], -1],
    ['linux/arm64/v8.2', ['linux/arm64/v8'], 0],
    ['linux/arm64/v8.2', ['linux/arm64/v8.1', 'linux/arm64'], 0],
    ['linux/arm64', ['linux/arm64/v8.1'], -1],
    ['linux/arm64', ['linux/arm/v7'], -1],
    ['linux/arm64/v9', ['linux/arm64/v8.5', 'linux/arm64/v8.6'], 0],
    ['linux/amd64', ['windows/amd64'], -1],
  ] as const)('%s on a base of %j uses entry %d', (want, have, i) => {
    expect(bestPlatformMatch(parsePlatform(want), entries(...have))).toBe(i);
  });
});

describe('the go command line', () => {
  const go = new GoToolchain(async () => ({ code: 0, stdout: '', stderr: '' }), { PATH: '/usr/bin', HOME: '/home/u' });

  it('is data: -trimpath and the platform env always win; CGO_ENABLED is 0 unless the user env says 1', () => {
    const c: Command = go.buildCommand({
      target: 'example.com/app/cmd/app',
      output: '/tmp/out/app',
      cwd: '/src',
      flags: ['-v', '-trimpath', '-tags=netgo'],
      ldflags: ['-s -w', '-X main.version=1.2.3'],
      env: { CGO_ENABLED: '1', GOOS: 'windows', GOFLAGS: '-mod=vendor' },
      platformEnv: { GOOS: 'linux', GOARCH: 'arm', GOARM: '7' },
    });
    expect(c).toEqual({
      cmd: 'go',
      args: ['build', '-trimpath', '-o', '/tmp/out/app', '-v', '-tags=netgo', '-ldflags=-s -w -X main.version=1.2.3', 'example.com/app/cmd/app'],
      cwd: '/src',
      env: { PATH: '/usr/bin', HOME: '/home/u', GOFLAGS: '-mod=vendor', CGO_ENABLED: '1', GOOS: 'linux', GOARCH: 'arm', GOARM: '7' },
    });
    const plain = go.buildCommand({ target: '.', output: '/tmp/out/app', cwd: '/src', flags: [], ldflags: [], env: {}, platformEnv: { GOOS: 'linux', GOARCH: 'amd64' } });
    expect(plain.env.CGO_ENABLED).toBe('0');
    // The runner's own CGO_ENABLED is not an input: the default stays off (docs/cgo.md).
    const runner = new GoToolchain(async () => ({ code: 0, stdout: '', stderr: '' }), { PATH: '/usr/bin', CGO_ENABLED: '1' });
    expect(runner.buildCommand({ target: '.', output: '/o', cwd: '/src', flags: [], ldflags: [], env: {}, platformEnv: {} }).env.CGO_ENABLED).toBe('0');
  });

  it('says plainly when go is not on PATH', async () => {
    const missing = new GoToolchain(async () => {
      throw Object.assign(new Error('spawn go ENOENT'), { code: 'ENOENT' });
    }, {});
    await expect(missing.list(['.'], '/src')).rejects.toThrow(/Go was not found on PATH.*actions\/setup-go/);
  });

  it('rejects a package that is not main, naming the input', async () => {
    const lib = new GoToolchain(async () => ({
      code: 0,
      stderr: '',
      stdout: JSON.stringify({ ImportPath: 'example.com/app/lib', Name: 'lib', Dir: '/src/lib', Module: { Path: 'example.com/app', Dir: '/src' } }),
    }), {});
    await expect(lib.list(['./lib'], '/src')).rejects.toThrow('input "packages": "./lib" is package lib, not a main package');
  });
});

describe('child environment', () => {
  it("drops the runner's Go microarchitecture variables: the platform's variant chooses (docs/image.md#layout)", () => {
    expect(childEnv({ PATH: '/bin', GOAMD64: 'v3', GOARM: '6', GOARM64: 'v9.0', GO386: 'sse2', GOFLAGS: '-mod=mod' }, [])).toEqual({ PATH: '/bin', GOFLAGS: '-mod=mod' });
  });

  it('drops inputs (INPUT_TOKEN), runner credentials and any variable holding the secret', () => {
    const env = childEnv(
      {
        PATH: '/bin',
        INPUT_TOKEN: 's3cret',
        'INPUT_BASE-IMAGE': 'scratch',
        GITHUB_TOKEN: 'x',
        ACTIONS_RUNTIME_TOKEN: 'y',
        MY_COPY: 'prefix-s3cret',
        GOFLAGS: '-mod=mod',
        UNSET: undefined,
      },
      ['s3cret'],
    );
    expect(env).toEqual({ PATH: '/bin', GOFLAGS: '-mod=mod' });
  });
});

describe('go version -m', () => {
  const text = [
    '/tmp/app: go1.23.5',
    '\tpath\texample.com/hello/cmd/hello',
    '\tmod\texample.com/hello\t(devel)\t',
    '\tdep\texample.com/greet\tv0.1.0',
    '\t=>\t./greet\t(devel)\t',
    '\tdep\tgolang.org/x/text\tv0.14.0\th1:ScX5w1eTa3QqT8oi6+ziP7dTV1S2+ALU0bI+0zXKWiQ=',
    '\tbuild\t-trimpath=true',
    '\tbuild\tGOARCH=arm',
    '\tbuild\tGOARM=7',
    '',
  ].join('\n');

  it('gives the toolchain, main module, deps with replacements and sums, and settings', () => {
    expect(parseBuildInfo(text)).toEqual({
      goVersion: 'go1.23.5',
      path: 'example.com/hello/cmd/hello',
      main: { path: 'example.com/hello', version: '(devel)' },
      deps: [
        { path: 'example.com/greet', version: 'v0.1.0', replace: { path: './greet', version: '(devel)' } },
        { path: 'golang.org/x/text', version: 'v0.14.0', sum: 'h1:ScX5w1eTa3QqT8oi6+ziP7dTV1S2+ALU0bI+0zXKWiQ=' },
      ],
      settings: { '-trimpath': 'true', GOARCH: 'arm', GOARM: '7' },
    });
  });

  it('refuses output that is not build info', () => {
    expect(() => parseBuildInfo('not a binary')).toThrow('unexpected go version -m output');
  });
});

describe('compile errors', () => {
  it('become annotations on workspace-relative files', () => {
    const out = '# example.com/app/cmd/app\ncmd/app/main.go:7:2: undefined: nope\n./util.go:3: syntax error\nnote: module requires Go 1.99\n';
    expect(parseDiagnostics(out, '/ws/mod', '/ws')).toEqual([
      { message: 'undefined: nope', where: { file: 'mod/cmd/app/main.go', startLine: 7, startColumn: 2, title: 'go build' } },
      { message: 'syntax error', where: { file: 'mod/util.go', startLine: 3, startColumn: undefined, title: 'go build' } },
    ]);
    const err = new GoBuildError('./cmd/app', out, '/ws/mod', '/ws');
    expect(err.message).toContain('undefined: nope');
    expect(err.diagnostics).toHaveLength(2);
  });
});

describe('metadata and config', () => {
  const provenance = {
    source: 'https://github.example.com/acme/app',
    revision: 'abc',
    created: '2026-01-02T03:04:05Z',
    version: '1.2.3',
    licenses: 'NOASSERTION',
    builder: 'ko-annotate/0.1.0',
  };

  it('omits licenses for NOASSERTION and description when absent', () => {
    const keys = metadataKeys(provenance, { title: 'app', goVersion: 'go1.23.5', importPath: 'example.com/app/cmd/app', modulePath: 'example.com/app' });
    expect(keys[Key.Licenses]).toBeUndefined();
    expect(keys[Key.Description]).toBeUndefined();
    expect(keys[Key.Url]).toBe(provenance.source);
  });

  it('keeps only base labels outside org.opencontainers.image.*', () => {
    expect(inheritedLabels({ [Key.Title]: 'base', [Key.Version]: '9', 'com.example': 'x', 'org.opencontainers.imagex': 'y' })).toEqual({
      'com.example': 'x',
      'org.opencontainers.imagex': 'y',
    });
  });

  it('assembles without touching its base, and sets user, entrypoint, env and variant', () => {
    const base = scratch({ os: 'linux', architecture: 'arm', variant: 'v7' });
    const before = JSON.stringify(base.config);
    const layer = Object.freeze({
      mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
      digest: `sha256:${'a'.repeat(64)}`,
      size: 10,
      diffId: `sha256:${'b'.repeat(64)}`,
      open: async () => Readable.from([]),
    });
    const img = assembleImage({
      base,
      platform: { os: 'linux', architecture: 'arm', variant: 'v7' },
      layers: [{ layer, comment: 'go binary' }],
      appName: 'app',
      importPath: 'example.com/app/cmd/app',
      created: provenance.created,
      user: '65532:65532',
      labels: { b: '2', a: '1' },
      annotations: { z: '1', y: '2' },
    });
    expect(JSON.stringify(base.config)).toBe(before);
    expect(img.config).toMatchObject({ os: 'linux', architecture: 'arm', variant: 'v7', created: provenance.created });
    expect(img.config.config).toEqual({ Entrypoint: ['/ko-app/app'], Env: ['PATH=/ko-app', 'KO_DATA_PATH=/var/run/ko'], User: '65532:65532', Labels: { a: '1', b: '2' } });
    expect(img.config.rootfs.diff_ids).toEqual([layer.diffId]);
    expect(Object.keys(img.manifest.annotations!)).toEqual(['y', 'z']);
    expect(img.config.history).toEqual([{ created: provenance.created, created_by: 'ko-annotate build example.com/app/cmd/app', comment: 'go binary' }]);
  });
});
