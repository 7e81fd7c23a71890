// docs/image.md#layout and docs/image.md#metadata on real Go builds: what the image says about its binary must hold for
// every `go build` the inputs allow.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GoToolchain, parseBuildInfo } from '../src/gobuild/go.js';
import { runEngine } from '../src/engine.js';
import { imagesOf } from '../src/oci/image.js';
import { goEnv, parsePlatform } from '../src/oci/platform.js';
import { Key } from '../src/oci/spec.js';
import { exampleRequest, layoutOnlyDeps } from './support/engine.js';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'go-build-settings-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const buildScratch = (raw: Record<string, string>) =>
  runEngine(exampleRequest({ 'base-image': 'scratch', platforms: 'linux/amd64', ...raw }), layoutOnlyDeps());

describe('go.version (docs/image.md#metadata) of a binary built with a GOEXPERIMENT', () => {
  it('reads the toolchain from a `go version -m` header that lists experiments', () => {
    const info = parseBuildInfo('/tmp/app: go1.23.5 X:aliastypeparams\n\tpath\texample.com/app\n\tmod\texample.com/app\t(devel)\t\n');
    expect(info.goVersion).toBe('go1.23.5');
    expect(info.path).toBe('example.com/app');
  });

  it('builds, and labels and annotates the toolchain that built it', async () => {
    const result = await buildScratch({ env: 'GOEXPERIMENT=aliastypeparams' });
    const img = imagesOf(result.packages[0].artifact)[0];
    expect(img.config.config?.Labels?.[Key.GoVersion]).toMatch(/^go1\.\d+(\.\d+)?$/);
    expect(img.manifest.annotations?.[Key.GoVersion]).toBe(img.config.config?.Labels?.[Key.GoVersion]);
  });
});

describe('-trimpath (docs/image.md#layout)', () => {
  const go = new GoToolchain(async () => ({ code: 0, stdout: '', stderr: '' }), {});
  const command = (flags: string[]) =>
    go.buildCommand({ target: './cmd/app', output: '/o/app', cwd: '/src', flags, ldflags: [], env: {}, platformEnv: { GOOS: 'linux', GOARCH: 'amd64' } });

  it.each([['-trimpath=false'], ['--trimpath=false'], ['-trimpath=0'], ['--trimpath']])('is not turned off or repeated by flags %j', (flag) => {
    expect(command(['-v', flag]).args).toEqual(['build', '-trimpath', '-o', '/o/app', '-v', './cmd/app']);
  });

  it('stays on in the binary when the flags input says -trimpath=false', async () => {
    const result = await buildScratch({ flags: '-buildvcs=false -trimpath=false' });
    expect(result.packages[0].built.platforms[0].buildInfo.settings['-trimpath']).toBe('true');
  });
});

describe('arm64 variants (docs/image.md#layout: the Go environment follows the platform)', () => {
  it('linux/arm64/v9 sets GOARM64=v9.0, a value Go accepts (it refuses v9)', () => {
    expect(goEnv(parsePlatform('linux/arm64/v9')).GOARM64).toBe('v9.0');
  });

  it('passes a variant with its minor version (a base index may list arm64 v8.2) as it is', () => {
    expect(goEnv({ os: 'linux', architecture: 'arm64', variant: 'v8.2' }).GOARM64).toBe('v8.2');
  });

  it('builds linux/arm64/v9 on scratch', async () => {
    const result = await buildScratch({ platforms: 'linux/arm64/v9' });
    const built = result.packages[0].built.platforms[0];
    expect(built.buildInfo.settings.GOARM64).toBe('v9.0');
    expect(built.image.platform).toEqual({ os: 'linux', architecture: 'arm64', variant: 'v9' });
  });
});
