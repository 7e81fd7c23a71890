import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { realRun } from '../src/config/git.js';
import { runEngine, type RunResult } from '../src/engine.js';
import { parseInputs } from '../src/inputs.js';
import { loadKoSettings } from '../src/kosettings.js';
import { resolveBase } from '../src/oci/base.js';
import { makeIndex, scratch } from '../src/oci/image.js';
import { LayoutSource, LayoutWriter } from '../src/oci/layout.js';
import { validateStored } from '../src/oci/validate.js';
import { prepareRun } from '../src/prepare.js';
import { MemoryLogger } from '../src/log.js';
import { buildBaseLayout, umociUnpack } from './support/base-images.js';
import { layoutOnlyDeps } from './support/engine.js';

const run = promisify(execFile);
let tmp: string;
let ws: string;
let commit: string;

/** A main package that prints the values injected with -X and a kodata file if there is one. */
const mainGo = (name: string) => `package main

import (
	"fmt"
	"os"
	"path/filepath"
)

var commit = "unset"
var flavour = "unset"

func main() {
	fmt.Printf("${name} commit=%s flavour=%s\\n", commit, flavour)
	if b, err := os.ReadFile(filepath.Join(os.Getenv("KO_DATA_PATH"), "motd.txt")); err == nil {
		fmt.Printf("motd=%s", b)
	}
}
`;

// ko's own build-config shape: several builds, `dir`/`main` pairs (one in a nested module
// directory), `flags` both as a string and as a list, ldflags with a template.
const KO_YAML = `defaultBaseImage: scratch
defaultPlatforms:
  - linux/amd64
builds:
  - id: api
    dir: .
    main: ./cmd/api
    flags: -v -v
    ldflags:
      - -X main.commit={{.Git.FullCommit}}
      - -X main.flavour=api-{{.Env.FLAVOUR}}
  - id: worker
    dir: ./services
    main: ./cmd/worker
    flags:
      - -tags
      - netgo
    ldflags:
      - -X main.commit={{.Git.ShortCommit}} -X main.flavour=worker
  - id: cli
    main: ./cmd/cli/main.go
    ldflags: -X main.flavour=cli-{{.Git.TreeState}}
`;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'ko-compat-'));
  ws = join(tmp, 'repo');
  const files: Record<string, string> = {
    'go.mod': 'module example.com/multi\n\ngo 1.23\n',
    'cmd/api/main.go': mainGo('api'),
    'cmd/cli/main.go': mainGo('cli'),
    'services/go.mod': 'module example.com/services\n\ngo 1.23\n',
    'services/cmd/worker/main.go': mainGo('worker'),
    '.ko.yaml': KO_YAML,
    'cmd/api/kodata/real/motd.txt': 'hello from a linked file\n',
    'shared/motd-source.txt': 'shared motd\n',
  };
  for (const [path, text] of Object.entries(files)) {
    await mkdir(join(ws, path, '..'), { recursive: true });
    await writeFile(join(ws, path), text);
  }
  // kodata/motd.txt is a symlink to a file elsewhere in the repository: it is followed.
  await symlink('../../../shared/motd-source.txt', join(ws, 'cmd', 'api', 'kodata', 'motd.txt'));
  const git = (...args: string[]) => run('git', args, { cwd: ws, env: { ...process.env, GIT_AUTHOR_DATE: '2026-01-02T03:04:05Z', GIT_COMMITTER_DATE: '2026-01-02T03:04:05Z' } });
  await git('init', '-q', '-b', 'main');
  await git('-c', 'user.email=t@example.invalid', '-c', 'user.name=t', 'add', '.');
  await git('-c', 'user.email=t@example.invalid', '-c', 'user.name=t', 'commit', '-q', '-m', 'init');
  commit = (await git('rev-parse', 'HEAD')).stdout.trim();
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** The action's path from raw inputs: prepare (context, templates), .ko.yaml, engine. */
async function build(raw: Record<string, string>, env: Record<string, string> = {}, logger = new MemoryLogger()): Promise<RunResult> {
  const inputs = parseInputs({ repository: 'registry.example/acme', push: 'false', sbom: 'none', ...raw });
  const environment = { PATH: process.env.PATH, HOME: process.env.HOME, ...env };
  const prepared = await prepareRun(inputs, environment, {}, ws, { logger, run: realRun });
  const ko = await loadKoSettings(inputs, environment, ws, prepared.render!);
  return runEngine({ ...prepared, ko }, layoutOnlyDeps(logger));
}

async function runUnpacked(layout: string, digest: string, name: string, binary: string): Promise<string> {
  // umoci wants a name that resolves to one manifest.
  await new LayoutWriter(layout).putName(await loadImage(layout, digest), name);
  const rootfs = join(tmp, `rootfs-${name}`);
  await umociUnpack(layout, name, rootfs);
  const { stdout } = await run(join(rootfs, 'ko-app', binary), [], { env: { KO_DATA_PATH: join(rootfs, 'var', 'run', 'ko') } });
  return stdout;
}

/** The stored image (or first image of an index) at `digest` in the layout. */
async function loadImage(layout: string, digest: string) {
  return (await resolveBase(new LayoutSource(layout), digest, digest, 'all')).images[0];
}

describe('a ko project with several builds in .ko.yaml', () => {
  let result: RunResult;
  const layout = () => join(tmp, 'multi-layout');
  beforeAll(async () => {
    result = await build(
      { packages: './cmd/api\n./cmd/cli\n./services/cmd/worker', 'working-directory': '.', 'oci-layout-path': layout() },
      { FLAVOUR: 'blue' },
    );
  });

  it('builds every package, named by base, each from its own build entry', () => {
    expect(result.packages.map((p) => [p.package, p.repository])).toEqual([
      ['example.com/multi/cmd/api', 'registry.example/acme/api'],
      ['example.com/multi/cmd/cli', 'registry.example/acme/cli'],
      ['example.com/services/cmd/worker', 'registry.example/acme/worker'],
    ]);
    // defaultPlatforms from .ko.yaml applies: one platform → single manifests.
    for (const p of result.packages) expect(p.artifact.kind).toBe('image');
  });

  it('injects the templated ldflags; the binaries print them when run from the unpacked image', async () => {
    for (const p of result.packages) await validateStored(new LayoutSource(layout()), p.digest);
    const [api, cli, worker] = result.packages;
    expect(await runUnpacked(layout(), api.digest, 'api', 'api')).toBe(`api commit=${commit} flavour=api-blue\nmotd=shared motd\n`);
    expect(await runUnpacked(layout(), cli.digest, 'cli', 'cli')).toBe('cli commit=unset flavour=cli-clean\n');
    expect(await runUnpacked(layout(), worker.digest, 'worker', 'worker')).toBe(`worker commit=${commit.slice(0, 7)} flavour=worker\n`);
  });

  it('passed the string flags split (-v -v) and the list flags (-tags netgo) to go build', () => {
    const [api, , worker] = result.packages;
    expect(api.built.platforms[0].buildInfo.settings['-tags']).toBeUndefined();
    expect(worker.built.platforms[0].buildInfo.settings['-tags']).toBe('netgo');
    expect(api.built.plan.args[0].flags).toEqual(['-v', '-v']);
  });

  it('refuses -toolexec in the flags input, before building', async () => {
    await expect(build({ packages: './cmd/api', flags: '-toolexec=/bin/true' })).rejects.toThrow(/input "flags".*-toolexec/);
  });

  it('fails on a kodata symlink that leaves the repository', async () => {
    const outside = join(tmp, 'outside.txt');
    await writeFile(outside, 'secret\n');
    const link = join(ws, 'cmd', 'cli', 'kodata');
    await mkdir(link, { recursive: true });
    await symlink(outside, join(link, 'escape.txt'));
    try {
      await expect(build({ packages: './cmd/cli' })).rejects.toThrow(/escape\.txt/);
    } finally {
      await rm(link, { recursive: true, force: true });
    }
  });
});

describe('naming several packages', () => {
  it('preserve: repository/<full import path>, lower-cased', async () => {
    const result = await build(
      { packages: './cmd/api,./services/cmd/worker', naming: 'preserve' },
      { FLAVOUR: 'x' },
    );
    expect(result.packages.map((p) => p.repository)).toEqual([
      'registry.example/acme/example.com/multi/cmd/api',
      'registry.example/acme/example.com/services/cmd/worker',
    ]);
    // The title is the image's last path element.
    expect(result.packages.map((p) => p.labels['org.opencontainers.image.title'])).toEqual(['api', 'worker']);
  });

  it('bare for several packages is refused before building: they would share one repository', async () => {
    await expect(build({ packages: './cmd/api,./cmd/cli', naming: 'bare' }, { FLAVOUR: 'x' })).rejects.toThrow(
      'input "naming": "bare" gives 2 packages the same repository registry.example/acme',
    );
  });
});

describe('platforms: all against a base index with a Windows image', () => {
  it('builds its Linux platforms, says which it left out, and refuses a base with none', async () => {
    const dir = join(tmp, 'base-windows');
    const writer = new LayoutWriter(dir);
    const mixed = makeIndex('oci', [scratch({ os: 'linux', architecture: 'amd64' }), scratch({ os: 'windows', architecture: 'amd64' })]);
    await writer.putContent(mixed);
    await writer.putName(mixed, 'mixed');
    const windows = scratch({ os: 'windows', architecture: 'amd64' });
    await writer.putContent(windows);
    await writer.putName(windows, 'windows');

    const logger = new MemoryLogger();
    const result = await build({ packages: './cmd/api', platforms: 'all', 'base-image': `oci:${dir}:mixed` }, { FLAVOUR: 'x' }, logger);
    expect(result.packages[0].platforms.map((p) => p.platform)).toEqual(['linux/amd64']);
    expect(logger.lines).toContain(`platforms "all" of oci:${dir}:mixed: linux/amd64 (not windows/amd64: images are built for linux only)`);
    await expect(build({ packages: './cmd/api', platforms: 'all', 'base-image': `oci:${dir}:windows` }, { FLAVOUR: 'x' })).rejects.toThrow(
      'is a single windows/amd64 image; images are built for linux only',
    );
  });
});

describe('platforms: all against a base index with variants and an attestation entry', () => {
  it('yields exactly amd64, arm64 and arm/v7, with GOARM=7 for arm', async () => {
    const base = await buildBaseLayout('oci-index', join(tmp, 'base-all'), 'v1');
    // The base index carries an unknown/unknown attestation manifest besides the three platforms.
    expect(base.artifact.kind === 'index' && base.artifact.index.manifests.some((d) => d.platform?.os === 'unknown')).toBe(true);
    const result = await build({ packages: './cmd/api', platforms: 'all', 'base-image': `oci:${base.dir}:v1` }, { FLAVOUR: 'x' });
    const pkg = result.packages[0];
    expect(pkg.platforms.map((p) => p.platform)).toEqual(['linux/amd64', 'linux/arm64', 'linux/arm/v7']);
    const arm = pkg.built.platforms[2].buildInfo.settings;
    expect([arm.GOARCH, arm.GOARM]).toEqual(['arm', '7']);
    expect(pkg.built.platforms[0].buildInfo.settings.GOARCH).toBe('amd64');
  });
});
