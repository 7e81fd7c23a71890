import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import type { TarEntry } from '../oci/layer.js';

/** Where ko puts a package's `kodata/` directory in the image (and what `KO_DATA_PATH` says). */
export const KODATA_TAR_ROOT = 'var/run/ko';

/**
 * The parents of the kodata root. They are written as 0755 directories, the mode base images
 * give /var and /var/run, so that this layer does not change who may enter them. (ko writes
 * them 0555, like its content; we keep base images' usual mode for directories we do not own.)
 */
const PARENTS = ['var/', 'var/run/', 'var/run/ko/'];
const PARENT_MODE = 0o755;
/**
 * Content modes follow ko: every kodata file and directory is 0555, whatever the checkout says,
 * because modes on disk depend on the runner's umask and Windows has no executable bit. Scripts
 * stay runnable and nothing in the image is writable.
 */
const CONTENT_MODE = 0o555;

/**
 * The tar entries for the package's `kodata/` directory, rooted at `var/run/ko/`, or `[]` when
 * the package has none.
 *
 * Symlinks are followed and their targets' content stored, as ko does, but a link (or the
 * kodata directory itself) that resolves outside `repoRoot` is an error: it would copy files
 * from the runner (say ~/.docker/config.json) into a published image. Entries are in name order
 * at each level (byte order, like Go's filepath.Walk), so the same tree always gives the same layer.
 */
export async function kodataEntries(opts: { packageDir: string; repoRoot: string }): Promise<TarEntry[]> {
  const kodata = path.join(opts.packageDir, 'kodata');
  const found = await lstat(kodata).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw new Error(`cannot read ${JSON.stringify(kodata)}: ${err.message}`, { cause: err });
  });
  if (!found) return [];

  const root = await realpath(opts.repoRoot).catch((err: Error) => {
    throw new Error(`repository root ${JSON.stringify(opts.repoRoot)}: ${err.message}`, { cause: err });
  });
  const real = await resolveLink(kodata, root, kodata, found.isSymbolicLink());
  const s = await stat(real);
  if (!s.isDirectory()) throw new Error(`${JSON.stringify(kodata)} is not a directory; kodata must be a directory of files for ${KODATA_TAR_ROOT}`);

  const entries: TarEntry[] = PARENTS.map((p) => ({ type: 'directory', path: p, mode: PARENT_MODE }));
  await walk(real, KODATA_TAR_ROOT, kodata, root, new Set([real]), entries);
  return entries;
}

/**
 * Add the contents of `dir` (a real path) below `tarDir`. `shown` is the path as the user sees
 * it, for messages. `open` holds the real directories being walked: a directory link back into
 * one of them would repeat forever, so it is refused.
 */
async function walk(dir: string, tarDir: string, shown: string, root: string, open: Set<string>, out: TarEntry[]): Promise<void> {
  const names = (await readdir(dir)).sort(byteOrder);
  for (const name of names) {
    const hostPath = path.join(dir, name);
    const shownPath = path.join(shown, name);
    const tarPath = `${tarDir}/${name}`;
    const l = await lstat(hostPath);
    // `dir` is already real, so only a symlink can lead somewhere else.
    const real = l.isSymbolicLink() ? await resolveLink(shownPath, root, hostPath, true) : hostPath;
    const s = l.isSymbolicLink() ? await stat(real) : l;
    if (s.isDirectory()) {
      if (open.has(real)) {
        throw new Error(`kodata symlink ${JSON.stringify(shownPath)} points to ${JSON.stringify(real)}, which contains it: following it would never end`);
      }
      out.push({ type: 'directory', path: `${tarPath}/`, mode: CONTENT_MODE });
      open.add(real);
      await walk(real, tarPath, shownPath, root, open, out);
      open.delete(real);
    } else if (s.isFile()) {
      const size = s.size;
      out.push({ type: 'file', path: tarPath, mode: CONTENT_MODE, size, open: () => createReadStream(real) });
    } else {
      throw new Error(`kodata entry ${JSON.stringify(shownPath)} is neither a file nor a directory (a socket, pipe or device cannot go into an image)`);
    }
  }
}

/**
 * The real path of `p` (shown to the user as `shown`), which must lie inside `root`.
 * `fs.realpath` fails with ELOOP on a cycle of links, so this always returns.
 */
async function resolveLink(shown: string, root: string, p: string, isLink: boolean): Promise<string> {
  const what = isLink ? 'kodata symlink' : 'kodata directory';
  let real: string;
  try {
    real = await realpath(p);
  } catch (err) {
    const target = await readlink(p).catch(() => undefined);
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'ELOOP' ? 'it is part of a symlink loop' : e.code === 'ENOENT' ? 'its target does not exist' : e.message;
    throw new Error(`${what} ${JSON.stringify(shown)}${target !== undefined ? ` -> ${JSON.stringify(target)}` : ''} cannot be followed: ${why}`, { cause: err });
  }
  if (!within(real, root)) {
    const target = isLink ? await readlink(p).catch(() => real) : real;
    throw new Error(
      `${what} ${JSON.stringify(shown)} -> ${JSON.stringify(target)} resolves to ${JSON.stringify(real)}, outside the repository ${JSON.stringify(root)}; only files inside the repository may go into the image`,
    );
  }
  return real;
}

/** Whether `p` is `root` or below it (path.relative also handles Windows drive letters and case). */
function within(p: string, root: string): boolean {
  const rel = path.relative(root, p);
  return rel === '' || (!rel.startsWith(`..${path.sep}`) && rel !== '..' && !path.isAbsolute(rel));
}

/** Go compares strings by their UTF-8 bytes; so do we, so that order does not depend on locale. */
function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}
