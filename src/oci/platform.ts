import type { Platform } from './spec.js';

const PART = /^[a-z0-9_]+$/;

/** Parse `os/arch[/variant]`; throws with the offending value. */
export function parsePlatform(s: string): Platform {
  const parts = s.trim().split('/');
  if (parts.length < 2 || parts.length > 3 || !parts.every((p) => PART.test(p))) {
    throw new Error(`${JSON.stringify(s)} is not os/arch[/variant]`);
  }
  const [os, architecture, variant] = parts;
  if (!KNOWN_OS.has(os)) throw new Error(`${JSON.stringify(s)}: unknown os ${JSON.stringify(os)}`);
  if (!KNOWN_ARCH.has(architecture)) throw new Error(`${JSON.stringify(s)}: unknown architecture ${JSON.stringify(architecture)}`);
  if (variant !== undefined && !validVariant(architecture, variant)) {
    throw new Error(`${JSON.stringify(s)}: unknown variant ${JSON.stringify(variant)} for ${architecture}`);
  }
  return variant === undefined ? { os, architecture } : { os, architecture, variant };
}

export const formatPlatform = (p: Platform): string =>
  [p.os, p.architecture, p.variant].filter((x) => x !== undefined && x !== '').join('/');

/** Exact match on os, architecture and variant (an absent variant matches only an absent one,
 * except that arm64's implied `v8` equals none, as containerd treats it). */
export function platformMatches(want: Platform, have: Platform | undefined): boolean {
  if (!have) return false;
  if (want.os !== have.os || want.architecture !== have.architecture) return false;
  return normVariant(want) === normVariant(have);
}

const normVariant = (p: Platform): string =>
  p.architecture === 'arm64' && (p.variant === undefined || p.variant === 'v8') ? '' : (p.variant ?? '');

export const isUnknownPlatform = (p: Platform | undefined): boolean =>
  !p || p.os === 'unknown' || p.architecture === 'unknown';

// GOOS/GOARCH values that Go 1.21+ can target (`go tool dist list`), which is what the build needs.
const KNOWN_OS = new Set(['linux', 'windows', 'darwin', 'freebsd', 'netbsd', 'openbsd', 'plan9', 'solaris', 'illumos', 'aix', 'dragonfly', 'android', 'ios', 'js', 'wasip1']);
const KNOWN_ARCH = new Set(['amd64', 'arm64', 'arm', '386', 'ppc64le', 'ppc64', 's390x', 'riscv64', 'mips', 'mipsle', 'mips64', 'mips64le', 'loong64', 'wasm']);

function validVariant(arch: string, variant: string): boolean {
  switch (arch) {
    case 'arm': return ['v5', 'v6', 'v7'].includes(variant);
    case 'arm64': return /^v8(\.\d)?$|^v9(\.\d)?$/.test(variant);
    case 'amd64': return ['v1', 'v2', 'v3', 'v4'].includes(variant);
    default: return false;
  }
}

/** Go environment for a platform: GOOS/GOARCH, GOARM from arm's variant, GOAMD64 from amd64's (docs/image.md#layout). */
export function goEnv(p: Platform): Record<string, string> {
  const env: Record<string, string> = { GOOS: p.os, GOARCH: p.architecture };
  if (p.architecture === 'arm' && p.variant) env.GOARM = p.variant.slice(1);
  if (p.architecture === 'amd64' && p.variant) env.GOAMD64 = p.variant;
  // Go wants GOARM64 with a minor version (v9.0); platforms name the major alone (v9), as containerd does.
  if (p.architecture === 'arm64' && p.variant && p.variant !== 'v8') env.GOARM64 = /^v\d+$/.test(p.variant) ? `${p.variant}.0` : p.variant;
  return env;
}
