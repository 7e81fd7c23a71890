// docs/cgo.md: the parts of cgo support that are pure or read only files: env lines limited
// to a platform, finding a C compiler, reading an ELF interpreter, resolving it in a base's layers.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { cTarget, findCCompiler, lookPath, CCompilerMissingError, type Host } from '../src/gobuild/cgo.js';
import { elfInterpreter } from '../src/gobuild/elf.js';
import { parseInputs, platformEnvFor } from '../src/inputs.js';
import { makeImage } from '../src/oci/image.js';
import { writeLayer, type TarEntry } from '../src/oci/layer.js';
import { parsePlatform } from '../src/oci/platform.js';
import { RootFs } from '../src/oci/rootfs.js';
import { MediaType } from '../src/oci/spec.js';
import { exampleDir, repoRoot } from './support/engine.js';

const run = promisify(execFile);
let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'cgo-units-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('env lines limited to a platform (input "env")', () => {
  it('keeps unprefixed lines for every platform and prefixed ones for theirs, values as written', () => {
    const inputs = parseInputs({ env: 'CGO_ENABLED=1\nlinux/arm64:CC=aarch64-linux-gnu-gcc\nlinux/arm/v7:CFLAGS=-O2 -DX=a:b\nlinux/arm:CC=arm-linux-gnueabihf-gcc' });
    expect(inputs.env).toEqual({ CGO_ENABLED: '1' });
    expect(inputs.platformEnv).toEqual([
      { platform: { os: 'linux', architecture: 'arm64' }, key: 'CC', value: 'aarch64-linux-gnu-gcc' },
      { platform: { os: 'linux', architecture: 'arm', variant: 'v7' }, key: 'CFLAGS', value: '-O2 -DX=a:b' },
      { platform: { os: 'linux', architecture: 'arm' }, key: 'CC', value: 'arm-linux-gnueabihf-gcc' },
    ]);
    const at = (p: string) => platformEnvFor(inputs.platformEnv, parsePlatform(p));
    expect(at('linux/arm64')).toEqual({ CC: 'aarch64-linux-gnu-gcc' });
    // arm64's v8 is arm64.
    expect(at('linux/arm64/v8')).toEqual({ CC: 'aarch64-linux-gnu-gcc' });
    expect(at('linux/amd64')).toEqual({});
    // A prefix without a variant names every variant; one with a variant only that one.
    expect(at('linux/arm/v7')).toEqual({ CFLAGS: '-O2 -DX=a:b', CC: 'arm-linux-gnueabihf-gcc' });
    expect(at('linux/arm/v6')).toEqual({ CC: 'arm-linux-gnueabihf-gcc' });
  });

  it.each([
    ['linux/amd65:CC=x', 'has a platform prefix "linux/amd65" that is not os/arch[/variant]'],
    ['linux:CC=x', 'has a platform prefix "linux" that is not os/arch[/variant]'],
    ['darwin/arm64:CC=x', 'is limited to darwin/arm64, not a Linux platform'],
    ['linux/arm64:C-C=x', 'has an invalid key "C-C"'],
  ])('refuses %j, quoting the line', (line, why) => {
    expect(() => parseInputs({ env: `A=1\n${line}` })).toThrow(`input "env": ${JSON.stringify(line)} ${why}`);
  });
});

describe('finding a C compiler for a cgo platform', () => {
  const linuxAmd64: Host = { os: 'linux', arch: 'x64' };
  const search = (files: string[], host = linuxAmd64) => ({
    host,
    path: '/opt/zig:/usr/local/bin:/usr/bin',
    isExecutable: async (f: string) => files.includes(f),
  });
  const find = (p: string, files: string[], env: Record<string, string> = {}, host?: Host) => findCCompiler(parsePlatform(p), env, search(files, host));

  it.each([
    ['linux/amd64', ['/usr/bin/gcc', '/usr/bin/x86_64-linux-gnu-gcc'], 'gcc'],
    ['linux/amd64/v3', ['/usr/bin/cc'], 'cc'],
    ['linux/arm64', ['/usr/bin/gcc', '/usr/bin/aarch64-linux-gnu-gcc'], 'aarch64-linux-gnu-gcc'],
    ['linux/arm/v7', ['/usr/bin/gcc', '/usr/local/bin/arm-linux-gnueabihf-gcc'], 'arm-linux-gnueabihf-gcc'],
    ['linux/arm/v6', ['/usr/bin/arm-linux-gnueabi-gcc'], 'arm-linux-gnueabi-gcc'],
    ['linux/arm64', ['/usr/bin/gcc', '/opt/zig/zig'], 'zig cc -target aarch64-linux-gnu'],
    ['linux/386', ['/opt/zig/zig'], 'zig cc -target x86-linux-gnu'],
  ])('%s on a linux/amd64 machine with %j: CC=%s', async (p, files, cc) => {
    expect((await find(p, files)).env.CC).toBe(cc);
  });

  it('uses the native compiler for the machine’s own architecture only, and only on Linux', async () => {
    const arm64: Host = { os: 'linux', arch: 'arm64' };
    expect((await find('linux/arm64', ['/usr/bin/gcc'], {}, arm64)).env).toEqual({ CC: 'gcc' });
    expect((await find('linux/amd64', ['/usr/bin/gcc', '/usr/bin/x86_64-linux-gnu-gcc'], {}, arm64)).env).toEqual({ CC: 'x86_64-linux-gnu-gcc' });
    // A macOS runner's gcc builds for macOS.
    await expect(find('linux/amd64', ['/usr/bin/gcc'], {}, { os: 'darwin', arch: 'x64' })).rejects.toThrow(/gcc-x86-64-linux-gnu/);
  });

  it('takes CC from the env as it is, when it is on PATH', async () => {
    expect(await find('linux/arm64', ['/usr/local/bin/my-cc'], { CC: 'my-cc -march=armv8-a' })).toEqual({ env: {}, how: 'CC=my-cc -march=armv8-a (/usr/local/bin/my-cc)' });
    expect(await find('linux/arm64', ['/work/cc'], { CC: '/work/cc' })).toEqual({ env: {}, how: 'CC=/work/cc (/work/cc)' });
    await expect(find('linux/arm64', ['/usr/bin/gcc'], { CC: 'aarch64-linux-gnu-gcc' })).rejects.toThrow(
      'cgo for linux/arm64: CC=aarch64-linux-gnu-gcc is set, but "aarch64-linux-gnu-gcc" is not on PATH',
    );
  });

  it('fails naming the platform, the package to install, the env line and the native-runner alternative', async () => {
    const err = await find('linux/arm64', ['/usr/bin/gcc']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CCompilerMissingError);
    const message = (err as Error).message;
    expect(message).toMatch(/^cgo \(CGO_ENABLED=1\) for linux\/arm64 needs a C compiler for aarch64-linux-gnu/);
    expect(message).toContain('looked on PATH for aarch64-linux-gnu-gcc, zig');
    expect(message).toContain('apt-get install gcc-aarch64-linux-gnu');
    expect(message).toContain('"linux/arm64:CC=<compiler>"');
    expect(message).toContain('on a native linux/arm64 runner');
    expect(message).toContain('fan-out: build');
  });

  it('knows no cross compiler for an architecture without a Debian one, and says so', async () => {
    await expect(find('linux/mips', ['/usr/bin/gcc', '/opt/zig/zig'])).rejects.toThrow(/for linux\/mips, and none was found\. No cross compiler is known for mips: set one for this platform with an env line "linux\/mips:CC=<compiler>"/);
    expect(cTarget(parsePlatform('linux/mips'))).toBeUndefined();
  });

  it('looks commands up on PATH as a shell does: in order, executables only, relative entries skipped', async () => {
    await writeFile(join(tmp, 'not-executable'), '');
    expect(await lookPath('not-executable', tmp)).toBeUndefined();
    expect(await lookPath('sh', `relative/dir:${tmp}:/bin:/usr/bin`)).toMatch(/^\/(usr\/)?bin\/sh$/);
    expect(await lookPath('/bin/sh', '')).toBe('/bin/sh');
    expect(await lookPath('no-such-command-here', '/bin:/usr/bin')).toBeUndefined();
  });
});

describe('the ELF interpreter of a binary', () => {
  const go = async (out: string, env: Record<string, string>, dir = exampleDir, pkg = './cmd/hello') => {
    await run('go', ['build', '-trimpath', '-o', out, pkg], { cwd: dir, env: { ...process.env, ...env } });
    return out;
  };

  it('is the one a cgo binary asks for, per architecture; none for a static Go binary', async () => {
    const cgo = join(repoRoot, 'examples', 'cgo');
    expect(await elfInterpreter(await go(join(tmp, 'cgo-amd64'), { CGO_ENABLED: '1', GOARCH: 'amd64', CC: 'gcc' }, cgo, './cmd/answer'))).toBe('/lib64/ld-linux-x86-64.so.2');
    expect(await elfInterpreter(await go(join(tmp, 'cgo-arm64'), { CGO_ENABLED: '1', GOARCH: 'arm64', CC: 'aarch64-linux-gnu-gcc' }, cgo, './cmd/answer'))).toBe('/lib/ld-linux-aarch64.so.1');
    expect(await elfInterpreter(await go(join(tmp, 'static'), { CGO_ENABLED: '0', GOARCH: 'arm64' }))).toBeUndefined();
  });

  it('is read from 32-bit big-endian ELF too, and files that are not ELF have none', async () => {
    // A minimal ELF32 MSB header (52 bytes), one PT_INTERP program header (32 bytes), the path.
    const path = Buffer.from('/lib/ld.so.1\0');
    const elf = Buffer.alloc(84 + path.length);
    elf.writeUInt32BE(0x7f454c46, 0);
    elf[4] = 1; // ELFCLASS32
    elf[5] = 2; // ELFDATA2MSB
    elf[6] = 1;
    elf.writeUInt32BE(52, 28); // e_phoff
    elf.writeUInt16BE(32, 42); // e_phentsize
    elf.writeUInt16BE(1, 44); // e_phnum
    elf.writeUInt32BE(3, 52); // p_type = PT_INTERP
    elf.writeUInt32BE(84, 56); // p_offset
    elf.writeUInt32BE(path.length, 68); // p_filesz
    path.copy(elf, 84);
    await writeFile(join(tmp, 'elf32'), elf);
    expect(await elfInterpreter(join(tmp, 'elf32'))).toBe('/lib/ld.so.1');
    await writeFile(join(tmp, 'script'), '#!/bin/sh\necho hi\n'.repeat(8));
    expect(await elfInterpreter(join(tmp, 'script'))).toBeUndefined();
    // A header whose program header table is past the end of the file is refused, not misread.
    await writeFile(join(tmp, 'cut'), elf.subarray(0, 60));
    await expect(elfInterpreter(join(tmp, 'cut'))).rejects.toThrow(/cut short/);
  });
});

describe('a file in a base image’s layers, found as the kernel would', () => {
  const file = (path: string): TarEntry => ({ type: 'file', path, mode: 0o755, size: 2, open: () => Readable.from([Buffer.from('ok')]) });
  const link = (path: string, target: string): TarEntry => ({ type: 'symlink', path, target });
  const dir = (path: string): TarEntry => ({ type: 'directory', path, mode: 0o755 });
  let n = 0;
  const image = async (...layers: TarEntry[][]) =>
    RootFs.of(
      makeImage({
        family: 'oci',
        config: { architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [] } },
        layers: await Promise.all(layers.map((entries) => writeLayer(entries, join(tmp, `layer-${n++}.tar.gz`), MediaType.OciLayerGzip))),
      }),
    );
  // As Debian lays out glibc since /usr was merged.
  const debian = [
    dir('usr'), dir('usr/lib'), dir('usr/lib/x86_64-linux-gnu'),
    file('usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2'),
    link('lib', 'usr/lib'),
    dir('lib64'),
    link('lib64/ld-linux-x86-64.so.2', '/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2'),
    link('usr/lib/ld-linux-aarch64.so.1', 'x86_64-linux-gnu/../x86_64-linux-gnu/ld-linux-x86-64.so.2'),
    link('loop-a', 'loop-b'),
    link('loop-b', '/loop-a'),
    link('up', '../../../usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2'),
    link('dangling', '/nowhere'),
  ];

  it('follows absolute and relative symbolic links, through linked directories, never above the root', async () => {
    const fs = await image(debian);
    const real = '/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2';
    expect(fs.resolveFile('/lib64/ld-linux-x86-64.so.2')).toBe(real);
    expect(fs.resolveFile('/lib/ld-linux-aarch64.so.1')).toBe(real);
    expect(fs.resolveFile('/up')).toBe(real);
    expect(fs.resolveFile('/dangling')).toBeUndefined();
    expect(fs.resolveFile('/loop-a')).toBeUndefined();
    expect(fs.resolveFile('/usr/lib')).toBeUndefined(); // a directory is no interpreter
    expect(fs.resolveFile('/lib64/ld-linux-x86-64.so.2/x')).toBeUndefined();
  });

  it('takes files from every layer and honours whiteouts, opaque directories and replaced directories', async () => {
    expect((await image(debian, [file('lib64/.wh.ld-linux-x86-64.so.2')])).resolveFile('/lib64/ld-linux-x86-64.so.2')).toBeUndefined();
    expect((await image(debian, [file('usr/lib/x86_64-linux-gnu/.wh..wh..opq')])).resolveFile('/lib64/ld-linux-x86-64.so.2')).toBeUndefined();
    // An opaque directory hides the lower layers' files only, not its own layer's.
    const own = await image(debian, [file('usr/lib/x86_64-linux-gnu/.wh..wh..opq'), file('usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2')]);
    expect(own.resolveFile('/lib64/ld-linux-x86-64.so.2')).toBe('/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2');
    expect((await image(debian, [file('lib')])).resolveFile('/lib64/ld-linux-x86-64.so.2')).toBeUndefined();
    // A file only in an upper layer, in directories no tar entry names.
    expect((await image([file('opt/a/b')], debian)).resolveFile('/opt/a/b')).toBe('/opt/a/b');
  });
});
