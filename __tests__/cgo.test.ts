// docs/cgo.md end to end: examples/cgo (a main package whose C code computes what it prints)
// built by dist/index.js as the runner runs it, for linux/amd64 and linux/arm64 in one job,
// with Debian's gcc and gcc-aarch64-linux-gnu, on a glibc base made from this machine's C
// libraries; both binaries then run from the image's own file system: amd64 under chroot,
// arm64 under qemu-aarch64-static -L <rootfs>. Then the two ways it must fail: on a base
// without the ELF interpreter (before publishing) and without a cross compiler (before building).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { lookPath } from '../src/gobuild/cgo.js';
import { resolveBase } from '../src/oci/base.js';
import { LayoutSource, LayoutWriter } from '../src/oci/layout.js';
import { validateStored } from '../src/oci/validate.js';
import { buildBaseLayout, buildGlibcBaseLayout, umociUnpack, type BaseLayout } from './support/base-images.js';
import { repoRoot } from './support/engine.js';
import { createWorkspace, goEnvironment, node24Path, runAction, type ActionRun, type Workspace } from './support/runner.js';

const run = promisify(execFile);
const which = async (cmd: string) => (await run('sh', ['-c', `command -v ${cmd}`]).catch(() => ({ stdout: '' }))).stdout.trim();

let tmp: string;
let workspace: Workspace;
let glibc: BaseLayout;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'cgo-e2e-'));
  workspace = await createWorkspace(undefined, join(repoRoot, 'examples', 'cgo'));
  glibc = await buildGlibcBaseLayout(join(tmp, 'glibc'));
});
afterAll(async () => {
  await workspace?.cleanup();
  await rm(tmp, { recursive: true, force: true });
});

const build = (inputs: Record<string, string>, extraEnv: Record<string, string | undefined> = {}): Promise<ActionRun> =>
  runAction({
    event: 'push-branch-main',
    workspace: workspace.dir,
    inputs: { packages: './cmd/answer', platforms: 'linux/amd64,linux/arm64', env: 'CGO_ENABLED=1', push: 'false', sbom: 'none', ...inputs },
    extraEnv,
  });

/** The failure the action reported (`::error::` lines), as one string. */
const errors = (r: ActionRun) => r.stdout.split('\n').filter((l) => l.startsWith('::error')).join('\n');

describe('a cgo program for linux/amd64 and linux/arm64 on a glibc base', () => {
  let r: ActionRun;
  let layout: string;
  beforeAll(async () => {
    layout = join(tmp, 'out');
    r = await build({ 'base-image': `oci:${glibc.dir}:${glibc.tag}`, 'oci-layout-path': layout });
  });

  it('builds both, logging the C compiler of each and the interpreter found in the base', () => {
    expect(errors(r)).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('cgo for example.com/cgo/cmd/answer on linux/amd64: CC=gcc (');
    expect(r.stdout).toContain('cgo for example.com/cgo/cmd/answer on linux/arm64: CC=aarch64-linux-gnu-gcc (');
    expect(r.stdout).toContain('go build ./cmd/answer (GOOS=linux GOARCH=arm64 CGO_ENABLED=1 CC=aarch64-linux-gnu-gcc) in ');
    expect(r.stdout).toContain('dynamically linked: its interpreter /lib64/ld-linux-x86-64.so.2 is in the base (/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2)');
    expect(r.stdout).toContain('dynamically linked: its interpreter /lib/ld-linux-aarch64.so.1 is in the base (/usr/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1)');
  });

  it('writes an index of both that validates, each binary running from its image and printing what its C code returned', async () => {
    const digest = JSON.parse(r.outputs.images)[0].digest as string;
    await expect(validateStored(new LayoutSource(layout), digest)).resolves.toMatchObject({ manifests: 2 });
    const { images } = await resolveBase(new LayoutSource(layout), digest, digest, 'all');
    expect(images.map((i) => `${i.platform.os}/${i.platform.architecture}`)).toEqual(['linux/amd64', 'linux/arm64']);
    const rootfs: string[] = [];
    for (const [i, image] of images.entries()) {
      // umoci wants a name that resolves to one manifest.
      await new LayoutWriter(layout).putName(image, `p${i}`);
      rootfs.push(join(tmp, `rootfs-${i}`));
      await umociUnpack(layout, `p${i}`, rootfs[i]);
      expect(await readdir(join(rootfs[i], 'ko-app'))).toEqual(['answer']);
    }
    // The kernel loads the interpreter from the chroot: the image's own glibc, through its links.
    // chroot needs root: CI's runner user has password-less sudo.
    const chroot = process.getuid?.() === 0 ? ['chroot'] : ['sudo', '-n', 'chroot'];
    const amd64 = await run(chroot[0], [...chroot.slice(1), rootfs[0], '/ko-app/answer']);
    expect(amd64.stdout).toBe('C says 42 (2 bytes) on linux/amd64\n');
    // qemu looks up the interpreter and every library under -L first.
    const arm64 = await run('qemu-aarch64-static', ['-L', rootfs[1], join(rootfs[1], 'ko-app', 'answer')]);
    expect(arm64.stdout).toBe('C says 42 (2 bytes) on linux/arm64\n');
  });

  it('fails before publishing on a static base, naming the platform, the interpreter and glibc bases', async () => {
    const staticBase = await buildBaseLayout('oci-index', join(tmp, 'static'), 'static');
    const out = join(tmp, 'static-out');
    const failed = await build({ 'base-image': `oci:${staticBase.dir}:static`, 'oci-layout-path': out });
    expect(failed.code).not.toBe(0);
    expect(errors(failed)).toMatch(/linux\/(amd64|arm64): example\.com\/cgo\/cmd\/answer is dynamically linked \(cgo\) and needs its ELF interpreter \/lib(64\/ld-linux-x86-64\.so\.2|\/ld-linux-aarch64\.so\.1), which base image oci:.*static \(its linux\/(amd64|arm64) image sha256:[0-9a-f]{64}\) does not have/);
    expect(errors(failed)).toContain('cgr.dev/chainguard/glibc-dynamic or gcr.io/distroless/base-debian12');
    // Nothing was published: no layout was written.
    await expect(readdir(out)).rejects.toThrow(/ENOENT/);
    expect(failed.outputs.digest).toBeUndefined();
  });
});

describe('cgo turned on by .ko.yaml', () => {
  it('is honoured as the env input is: go list sees the cgo files, and the C compiler is found', async () => {
    const ko = await createWorkspace(undefined, join(repoRoot, 'examples', 'cgo'));
    try {
      await writeFile(join(ko.dir, '.ko.yaml'), 'builds:\n  - id: answer\n    main: ./cmd/answer\n    env: [CGO_ENABLED=1]\n');
      const r = await runAction({
        event: 'push-branch-main',
        workspace: ko.dir,
        inputs: { packages: './cmd/answer', platforms: 'linux/arm64', push: 'false', sbom: 'none', 'base-image': `oci:${glibc.dir}:${glibc.tag}` },
      });
      expect(errors(r)).toBe('');
      expect(r.stdout).toContain('cgo for example.com/cgo/cmd/answer on linux/arm64: CC=aarch64-linux-gnu-gcc (');
      expect(r.stdout).toContain('dynamically linked: its interpreter /lib/ld-linux-aarch64.so.1 is in the base');
    } finally {
      await ko.cleanup();
    }
  });

  it('is off without it: a program of cgo files only is refused before building, saying how to turn cgo on', async () => {
    const r = await build({ 'base-image': `oci:${glibc.dir}:${glibc.tag}`, env: '' });
    expect(errors(r)).toMatch(/input "packages": ".\/cmd\/answer":.*build constraints exclude all Go files.*CGO_ENABLED=0 GOOS=linux: files that import "C".*CGO_ENABLED=1 in input "env" turns cgo on/);
    expect(r.stdout).not.toContain('::group::Build ');
  });
});

describe('cgo without a cross compiler', () => {
  it('fails before building, naming the platform and the package to install', async () => {
    // PATH as the runner's, less /usr/bin: node, Go, git and gcc, but no aarch64-linux-gnu-gcc and no zig.
    const bin = join(tmp, 'bin');
    await mkdir(bin, { recursive: true });
    for (const cmd of ['git', 'gcc']) await symlink(await which(cmd), join(bin, cmd));
    const path = [dirname(await node24Path()), (await goEnvironment()).bin, bin].join(delimiter);
    expect(await lookPath('zig', path)).toBeUndefined();
    expect(await lookPath('aarch64-linux-gnu-gcc', path)).toBeUndefined();
    const out = join(tmp, 'no-cc-out');
    const failed = await build({ 'base-image': `oci:${glibc.dir}:${glibc.tag}`, 'oci-layout-path': out }, { PATH: path });
    expect(failed.code).not.toBe(0);
    const message = errors(failed);
    expect(message).toContain('cgo (CGO_ENABLED=1) for linux/arm64 needs a C compiler for aarch64-linux-gnu');
    expect(message).toContain('apt-get install gcc-aarch64-linux-gnu');
    expect(message).toContain('fan-out: build');
    // Before building: no go build ran, for either platform.
    expect(failed.stdout).not.toContain('::group::Build ');
    await expect(readdir(out)).rejects.toThrow(/ENOENT/);
  });

  it('builds with the one an env line names for the platform', async () => {
    const out = join(tmp, 'named-cc-out');
    const named = await build({
      'base-image': `oci:${glibc.dir}:${glibc.tag}`,
      'oci-layout-path': out,
      platforms: 'linux/arm64',
      env: `CGO_ENABLED=1\nlinux/arm64:CC=${await which('aarch64-linux-gnu-gcc')}\nlinux/amd64:CC=/no/such/cc`,
    });
    expect(errors(named)).toBe('');
    // CC as set is used as it is: the env's own, not one found (the amd64 line is for another leg).
    const cc = await which('aarch64-linux-gnu-gcc');
    expect(named.stdout).toContain(`cgo for example.com/cgo/cmd/answer on linux/arm64: CC=${cc} (${cc})`);
    expect(named.code).toBe(0);
  });
});
