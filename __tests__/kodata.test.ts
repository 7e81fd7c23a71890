import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import * as tar from 'tar-stream';
import { kodataEntries } from '../src/gobuild/kodata.js';
import { writeLayer, type Layer, type TarEntry } from '../src/oci/layer.js';
import { MediaType } from '../src/oci/spec.js';

let tmp: string;
let repo: string;
let app: string;

/** A tree as a package would have it: nested dirs, an executable, links inside the repository. */
beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'ko-data-'));
  repo = path.join(tmp, 'repo');
  app = path.join(repo, 'cmd', 'app');
  const kodata = path.join(app, 'kodata');
  await mkdir(path.join(kodata, 'sub', 'deeper'), { recursive: true });
  await mkdir(path.join(repo, 'shared', 'dir'), { recursive: true });
  await writeFile(path.join(tmp, 'secret.txt'), 'not for images\n');
  await writeFile(path.join(repo, 'shared', 'LICENSE'), 'Apache-2.0\n');
  await writeFile(path.join(repo, 'shared', 'dir', 'x.txt'), 'x\n');
  await writeFile(path.join(kodata, 'b.txt'), 'bee\n');
  await writeFile(path.join(kodata, 'a.txt'), 'ay\n');
  await writeFile(path.join(kodata, 'Z.txt'), 'zed\n');
  await writeFile(path.join(kodata, 'run.sh'), '#!/bin/sh\necho hi\n');
  await chmod(path.join(kodata, 'run.sh'), 0o700);
  await chmod(path.join(kodata, 'a.txt'), 0o600);
  await writeFile(path.join(kodata, 'sub', 'c.txt'), 'see\n');
  await writeFile(path.join(kodata, 'sub', 'deeper', 'd.txt'), 'dee\n');
  await symlink(path.join('..', '..', '..', 'shared', 'LICENSE'), path.join(kodata, 'license.txt'));
  await symlink(path.join('..', '..', '..', 'shared', 'dir'), path.join(kodata, 'linkdir'));
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** A package dir with the given kodata links, for the failure cases. */
async function packageWith(name: string, links: Record<string, string>): Promise<string> {
  const pkg = path.join(repo, 'cmd', name);
  await mkdir(path.join(pkg, 'kodata'), { recursive: true });
  for (const [link, target] of Object.entries(links)) {
    await mkdir(path.dirname(path.join(pkg, 'kodata', link)), { recursive: true });
    await symlink(target, path.join(pkg, 'kodata', link));
  }
  return pkg;
}

const summary = (entries: TarEntry[]) => entries.map((e) => `${e.type} ${e.path} ${e.type === 'symlink' ? e.target : e.mode.toString(8)}`);

interface Read {
  name: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  content: string;
}

async function readLayer(layer: Layer): Promise<Read[]> {
  const out: Read[] = [];
  const extract = tar.extract();
  extract.on('entry', (h, stream, next) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c) => chunks.push(c as Buffer));
    stream.on('end', () => {
      out.push({
        name: h.name,
        type: h.type ?? '',
        mode: h.mode ?? -1,
        uid: h.uid ?? -1,
        gid: h.gid ?? -1,
        mtime: h.mtime?.getTime() ?? -1,
        content: Buffer.concat(chunks).toString('utf8'),
      });
      next();
    });
  });
  await pipeline(await layer.open(), createGunzip(), extract);
  return out;
}

/** The fixture's kodata as tar entries: `type path mode`, in layer order. */
const LISTING = [
  'directory var/ 755',
  'directory var/run/ 755',
  'directory var/run/ko/ 755',
  'file var/run/ko/Z.txt 555',
  'file var/run/ko/a.txt 555',
  'file var/run/ko/b.txt 555',
  'file var/run/ko/license.txt 555',
  'directory var/run/ko/linkdir/ 555',
  'file var/run/ko/linkdir/x.txt 555',
  'file var/run/ko/run.sh 555',
  'directory var/run/ko/sub/ 555',
  'file var/run/ko/sub/c.txt 555',
  'directory var/run/ko/sub/deeper/ 555',
  'file var/run/ko/sub/deeper/d.txt 555',
];

describe('kodataEntries', () => {
  it('lists kodata under var/run/ko in name order, links followed, modes fixed', async () => {
    const entries = await kodataEntries({ packageDir: app, repoRoot: repo });
    expect(summary(entries)).toEqual(LISTING);
  });

  it('returns nothing for a package without kodata', async () => {
    const pkg = path.join(repo, 'cmd', 'plain');
    await mkdir(pkg, { recursive: true });
    expect(await kodataEntries({ packageDir: pkg, repoRoot: repo })).toEqual([]);
  });

  it('gives just the parent directories for an empty kodata directory (as ko does)', async () => {
    const pkg = await packageWith('empty', {});
    expect(summary(await kodataEntries({ packageDir: pkg, repoRoot: repo }))).toEqual([
      'directory var/ 755',
      'directory var/run/ 755',
      'directory var/run/ko/ 755',
    ]);
  });

  it('refuses a link that leaves the repository, naming link and target', async () => {
    const target = path.join(tmp, 'secret.txt');
    const pkg = await packageWith('escape', { 'nested/creds': target });
    const link = path.join(pkg, 'kodata', 'nested', 'creds');
    await expect(kodataEntries({ packageDir: pkg, repoRoot: repo })).rejects.toThrow(
      `kodata symlink ${JSON.stringify(link)} -> ${JSON.stringify(target)} resolves to`,
    );
    await expect(kodataEntries({ packageDir: pkg, repoRoot: repo })).rejects.toThrow('outside the repository');
  });

  it('refuses a relative link that climbs out of the repository', async () => {
    const pkg = await packageWith('climb', { up: path.join('..', '..', '..', '..') });
    await expect(kodataEntries({ packageDir: pkg, repoRoot: repo })).rejects.toThrow('outside the repository');
  });

  it('stops on a directory link back to an ancestor instead of recursing forever', async () => {
    const pkg = await packageWith('loop', { 'sub/again': '..' });
    await expect(kodataEntries({ packageDir: pkg, repoRoot: repo })).rejects.toThrow(
      `kodata symlink ${JSON.stringify(path.join(pkg, 'kodata', 'sub', 'again'))} points to`,
    );
    await expect(kodataEntries({ packageDir: pkg, repoRoot: repo })).rejects.toThrow('never end');
  });

  it('stops on a cycle of links (ELOOP)', async () => {
    const pkg = await packageWith('cycle', { one: 'two', two: 'one' });
    await expect(kodataEntries({ packageDir: pkg, repoRoot: repo })).rejects.toThrow(
      `kodata symlink ${JSON.stringify(path.join(pkg, 'kodata', 'one'))} -> "two" cannot be followed: it is part of a symlink loop`,
    );
  });

  it('refuses a dangling link', async () => {
    const pkg = await packageWith('dangling', { gone: 'nowhere.txt' });
    await expect(kodataEntries({ packageDir: pkg, repoRoot: repo })).rejects.toThrow('its target does not exist');
  });

  it('refuses a kodata directory that is itself a link out of the repository', async () => {
    const pkg = path.join(repo, 'cmd', 'linked');
    await mkdir(pkg, { recursive: true });
    await symlink(tmp, path.join(pkg, 'kodata'));
    await expect(kodataEntries({ packageDir: pkg, repoRoot: repo })).rejects.toThrow('outside the repository');
  });
});

describe('the kodata layer', () => {
  it('is byte-identical when written twice, and reads back with paths, modes and linked content', async () => {
    const out = path.join(tmp, 'layers');
    await mkdir(out, { recursive: true });
    const first = await writeLayer(await kodataEntries({ packageDir: app, repoRoot: repo }), path.join(out, 'one.tar.gz'), MediaType.OciLayerGzip);
    const second = await writeLayer(await kodataEntries({ packageDir: app, repoRoot: repo }), path.join(out, 'two.tar.gz'), MediaType.OciLayerGzip);
    expect(second.digest).toBe(first.digest);
    expect(second.diffId).toBe(first.diffId);
    expect(second.size).toBe(first.size);

    const read = await readLayer(first);
    expect(read.map((r) => `${r.type} ${r.name} ${r.mode.toString(8)}`)).toEqual(LISTING);
    expect(read.every((r) => r.uid === 0 && r.gid === 0 && r.mtime === 0)).toBe(true);
    const content = Object.fromEntries(read.filter((r) => r.type === 'file').map((r) => [r.name, r.content]));
    // The links are stored as the files they point to: no symlink entries in the layer.
    expect(content['var/run/ko/license.txt']).toBe('Apache-2.0\n');
    expect(content['var/run/ko/linkdir/x.txt']).toBe('x\n');
    expect(content['var/run/ko/sub/deeper/d.txt']).toBe('dee\n');
    expect(read.some((r) => r.type === 'symlink')).toBe(false);
  });
});
