import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { BuildOptions } from '../src/gobuild/go.js';
import { realRun } from '../src/config/git.js';
import { runEngine, type RunResult } from '../src/engine.js';
import { parseInputs } from '../src/inputs.js';
import { loadKoSettings } from '../src/kosettings.js';
import { scratch } from '../src/oci/image.js';
import { LayoutWriter } from '../src/oci/layout.js';
import { prepareRun } from '../src/prepare.js';
import { layoutOnlyDeps } from './support/engine.js';

// What a project moving from ko brings along, checked against what ko does with it
// (ko-build/ko pkg/build/gobuild.go, pkg/commands/config.go).

const run = promisify(execFile);
let tmp: string;

const MAIN_GO = 'package main\n\nvar flavour = "unset"\n\nfunc main() { println(flavour) }\n';

/** A git repository holding `files`, committed, at a fresh directory. */
async function project(name: string, files: Record<string, string>): Promise<string> {
  const ws = join(tmp, name);
  for (const [path, text] of Object.entries(files)) {
    await mkdir(join(ws, path, '..'), { recursive: true });
    await writeFile(join(ws, path), text);
  }
  const git = (...args: string[]) =>
    run('git', ['-c', 'user.email=t@example.invalid', '-c', 'user.name=t', ...args], {
      cwd: ws,
      env: { ...process.env, GIT_AUTHOR_DATE: '2026-01-02T03:04:05Z', GIT_COMMITTER_DATE: '2026-01-02T03:04:05Z' },
    });
  await git('init', '-q', '-b', 'main');
  await git('add', '.');
  await git('commit', '-q', '-m', 'init');
  return ws;
}

/** The action's path from raw inputs: prepare (context, templates), .ko.yaml, engine; no push. */
async function build(ws: string, raw: Record<string, string>, env: Record<string, string> = {}, deps = layoutOnlyDeps()): Promise<RunResult> {
  const logger = deps.logger;
  const inputs = parseInputs({ repository: 'registry.example/acme', push: 'false', sbom: 'none', ...raw });
  const environment = { PATH: process.env.PATH, HOME: process.env.HOME, ...env };
  const prepared = await prepareRun(inputs, environment, {}, ws, { logger, run: realRun });
  const ko = await loadKoSettings(inputs, environment, ws, prepared.render!);
  return runEngine({ ...prepared, ko }, deps);
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'ko-migration-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('{{.Env.NAME}} in .ko.yaml ldflags', () => {
  // ko renders flags and ldflags with the build's own environment: the process environment
  // with the entry's `env` (or `defaultEnv`) on top (createTemplateData over buildEnv).
  let ws: string;
  beforeAll(async () => {
    ws = await project('env-template', {
      'go.mod': 'module example.com/envtpl\n\ngo 1.23\n',
      'cmd/app/main.go': MAIN_GO,
      'cmd/other/main.go': MAIN_GO,
      '.ko.yaml': `defaultBaseImage: scratch
defaultPlatforms: [linux/amd64]
defaultEnv: [FLAVOUR=from-default-env]
defaultLdflags: ["-X main.flavour={{.Env.FLAVOUR}}"]
builds:
  - id: app
    main: ./cmd/app
    env: [FLAVOUR=from-build-env]
    ldflags: ["-X main.flavour={{.Env.FLAVOUR}}"]
`,
    });
  });

  it("sees the build entry's env", async () => {
    const result = await build(ws, { packages: './cmd/app' });
    // plan.args are what go build is given (GoToolchain.buildCommand).
    expect(result.packages[0].built.plan.args[0].ldflags).toEqual(['-X main.flavour=from-build-env']);
  });

  it('sees defaultEnv for a package without an entry', async () => {
    const result = await build(ws, { packages: './cmd/other' });
    expect(result.packages[0].built.plan.args[0].ldflags).toEqual(['-X main.flavour=from-default-env']);
  });

  it("the build's env wins over the process environment, as in the go build itself", async () => {
    const result = await build(ws, { packages: './cmd/app' }, { FLAVOUR: 'from-process' });
    expect(result.packages[0].built.plan.args[0].ldflags).toEqual(['-X main.flavour=from-build-env']);
  });
});

describe('baseImageOverrides', () => {
  // Viper lower-cases the keys of .ko.yaml's maps, and ko looks overrides up by the lower-cased
  // import path, so an override matches an import path whatever the case of either.
  it('applies to a mixed-case import path whatever the case of its key', async () => {
    const base = join(tmp, 'base-layout');
    const writer = new LayoutWriter(base);
    const image = scratch({ os: 'linux', architecture: 'amd64' });
    await writer.putContent(image);
    await writer.putName(image, 'v1');
    const ws = await project('override-case', {
      'go.mod': 'module example.com/Acme/Shop\n\ngo 1.23\n',
      'cmd/api/main.go': MAIN_GO,
      'cmd/web/main.go': MAIN_GO,
      '.ko.yaml': `defaultBaseImage: oci:${base}:v1
defaultPlatforms: [linux/amd64]
baseImageOverrides:
  example.com/acme/shop/cmd/api: scratch
  example.com/Acme/Shop/cmd/web: scratch
`,
    });
    const result = await build(ws, { packages: './cmd/api,./cmd/web' });
    expect(result.packages.map((p) => [p.package, p.built.plan.base === 'scratch' ? 'scratch' : p.built.plan.base.name])).toEqual([
      ['example.com/Acme/Shop/cmd/api', 'scratch'],
      ['example.com/Acme/Shop/cmd/web', 'scratch'],
    ]);
  });
});

describe('{{.Env.GOOS}} and {{.Env.GOARCH}} in ldflags', () => {
  // ko's template Env is the environment of that platform's go build, which starts with
  // CGO_ENABLED=0, GOOS, GOARCH (and GOARM or GOAMD64 for a variant): `-X main.arch={{.Env.GOARCH}}`
  // gives each platform's binary its own architecture.
  it("render each platform's build with that platform's values", async () => {
    const ws = await project('platform-template', {
      'go.mod': 'module example.com/plat\n\ngo 1.23\n',
      'cmd/app/main.go': MAIN_GO,
      '.ko.yaml': `defaultBaseImage: scratch
builds:
  - main: ./cmd/app
    ldflags: ["-X main.flavour={{.Env.GOOS}}/{{.Env.GOARCH}}/cgo={{.Env.CGO_ENABLED}}"]
`,
    });
    const seen: Record<string, string[]> = {};
    const deps = layoutOnlyDeps();
    const go = deps.go;
    deps.go = Object.assign(Object.create(go) as typeof go, {
      build: (o: BuildOptions) => {
        seen[`${o.platformEnv.GOARCH}${o.platformEnv.GOARM ?? ''}`] = o.ldflags;
        return go.build(o);
      },
    });
    const result = await build(ws, { packages: './cmd/app', platforms: 'linux/amd64,linux/arm/v7', ldflags: '-X main.arch={{.Env.GOARCH}}' }, {}, deps);
    expect(result.packages[0].platforms.map((p) => p.platform)).toEqual(['linux/amd64', 'linux/arm/v7']);
    expect(seen).toEqual({
      amd64: ['-X main.flavour=linux/amd64/cgo=0', '-X main.arch=amd64'],
      arm7: ['-X main.flavour=linux/arm/cgo=0', '-X main.arch=arm'],
    });
  });
});
