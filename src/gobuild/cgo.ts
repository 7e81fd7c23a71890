import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { delimiter, isAbsolute, join } from 'node:path';
import { formatPlatform } from '../oci/platform.js';
import type { Platform } from '../oci/spec.js';

/** cgo is on when the build's environment says so (docs/cgo.md); Go's own default is off here. */
export const cgoEnabled = (env: Readonly<Record<string, string>>): boolean => env.CGO_ENABLED === '1';

/** A Linux platform as C toolchains name it (docs/cgo.md#cross-compilers). */
export interface CTarget {
  /** GNU triplet: `<triplet>-gcc` is the cross compiler's name. */
  triplet: string;
  /** `zig cc -target <zig>`. */
  zig: string;
  /** Debian's and Ubuntu's package of `<triplet>-gcc`. */
  debianPackage: string;
}

const target = (triplet: string, zig = triplet): CTarget => ({
  triplet,
  zig,
  // Debian package names have no underscore: x86_64's is gcc-x86-64-linux-gnu.
  debianPackage: `gcc-${triplet.replaceAll('_', '-')}`,
});

/** Go's linux architectures with a Debian cross compiler; arm by variant (v7 is hard-float). */
export function cTarget(p: Platform): CTarget | undefined {
  if (p.os !== 'linux') return undefined;
  switch (p.architecture) {
    case 'amd64': return target('x86_64-linux-gnu');
    case 'arm64': return target('aarch64-linux-gnu');
    case 'arm': return p.variant === 'v5' || p.variant === 'v6' ? target('arm-linux-gnueabi') : target('arm-linux-gnueabihf');
    case '386': return target('i686-linux-gnu', 'x86-linux-gnu');
    case 'ppc64le': return target('powerpc64le-linux-gnu');
    case 's390x': return target('s390x-linux-gnu');
    case 'riscv64': return target('riscv64-linux-gnu');
    case 'mips64le': return target('mips64el-linux-gnuabi64');
    default: return undefined;
  }
}

/** Node's names for the machine's architecture, as GOARCH. */
const GOARCH_OF_NODE: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64', loong64: 'loong64' };

export interface Host {
  /** `process.platform`. */
  os: string;
  /** `process.arch`. */
  arch: string;
}

/** Where to look for C compilers: PATH as the build will see it, and what this machine is. */
export interface CompilerSearch {
  host: Host;
  path: string;
  /** Whether an executable file is at this path (a dependency, so that tests can name one). */
  isExecutable?: (file: string) => Promise<boolean>;
}

/** What cgo builds one platform with: env to add to its build, and a line for the log. */
export interface CCompiler {
  env: Record<string, string>;
  how: string;
}

/** No C compiler for a platform; the message says what to install or set. */
export class CCompilerMissingError extends Error {}

/**
 * The C compiler for a cgo build of `p` (docs/cgo.md#cross-compilers): `CC` when the build's
 * env sets one (it must be on PATH); on a Linux machine of `p`'s architecture `gcc`, else `cc`;
 * else `<triplet>-gcc`; else `zig cc -target <triplet>`. `env` is the platform's build env.
 */
export async function findCCompiler(p: Platform, env: Readonly<Record<string, string>>, search: CompilerSearch): Promise<CCompiler> {
  const name = formatPlatform(p);
  const look = (cmd: string) => lookPath(cmd, search.path, search.isExecutable);
  if (env.CC !== undefined && env.CC.trim() !== '') {
    const cmd = env.CC.trim().split(/\s+/)[0];
    const found = await look(cmd);
    if (!found) throw new CCompilerMissingError(`cgo for ${name}: CC=${env.CC} is set, but ${JSON.stringify(cmd)} is not on PATH`);
    return { env: {}, how: `CC=${env.CC} (${found})` };
  }
  const t = cTarget(p);
  const native = search.host.os === 'linux' && GOARCH_OF_NODE[search.host.arch] === p.architecture;
  const candidates = [...(native ? ['gcc', 'cc'] : []), ...(t ? [`${t.triplet}-gcc`] : [])];
  for (const cmd of candidates) {
    const found = await look(cmd);
    if (found) return { env: { CC: cmd }, how: `CC=${cmd} (${found})` };
  }
  if (t && (await look('zig'))) {
    const zig = { CC: `zig cc -target ${t.zig}`, CXX: `zig c++ -target ${t.zig}` };
    return { env: zig, how: `CC=${zig.CC} (no ${t.triplet}-gcc on PATH)` };
  }
  const looked = [...candidates, ...(t ? ['zig'] : [])];
  const install = t
    ? `Install one: on Debian or Ubuntu, apt-get install ${t.debianPackage} (or put zig on PATH); or set one`
    : `No cross compiler is known for ${p.architecture}: set one`;
  throw new CCompilerMissingError(
    `cgo (CGO_ENABLED=1) for ${name} needs a C compiler for ${t?.triplet ?? name}, and none was found${looked.length ? ` (looked on PATH for ${looked.join(', ')})` : ''}. ` +
      `${install} for this platform with an env line "${name}:CC=<compiler>"; ` +
      `or build ${name} on a native ${name} runner (e.g. ubuntu-24.04-arm for linux/arm64) with fan-out: build (docs/fan-out.md).`,
  );
}

/** `cmd` as a shell finds it: a path with a slash as it is, else the first executable in PATH. */
export async function lookPath(cmd: string, path: string, isExecutable = executableFile): Promise<string | undefined> {
  if (cmd.includes('/')) return (await isExecutable(cmd)) ? cmd : undefined;
  for (const dir of path.split(delimiter)) {
    if (!dir || !isAbsolute(dir)) continue;
    const file = join(dir, cmd);
    if (await isExecutable(file)) return file;
  }
  return undefined;
}

async function executableFile(file: string): Promise<boolean> {
  try {
    await access(file, constants.X_OK);
    return (await stat(file)).isFile();
  } catch {
    return false;
  }
}

/** The machine this runs on. */
export const thisHost = (): Host => ({ os: process.platform, arch: process.arch });
