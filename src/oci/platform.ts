import type { Platform } from './spec.js';

const PART = /^[a-z0-9_]+$/;
// arm64's variants have minor versions (`v8.2`).
const VARIANT = /^[a-z0-9_.]+$/;

/** Parse `os/arch[/variant]`; throws with the offending value. */
export function parsePlatform(s: string): Platform {
  const parts = s.trim().split('/');
  if (parts.length < 2 || parts.length > 3 || !parts.every((p, i) => (i < 2 ? PART : VARIANT).test(p))) {
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

/** Exact match on os, architecture and variant, after containerd's normalization (normalizePlatform). */
export function platformMatches(want: Platform, have: Platform | undefined): boolean {
  if (!have) return false;
  const [w, h] = [normalizePlatform(want), normalizePlatform(have)];
  return w.os === h.os && w.architecture === h.architecture && (w.variant ?? '') === (h.variant ?? '');
}

/**
 * The spellings containerd treats as one platform (README.md#inputs, docs/cgo.md#platform-matching):
 * amd64 `v1` is amd64; arm64 `v8` is arm64 and `v9.0` is `v9`; arm without a variant is `v7`.
 */
export function normalizePlatform(p: Platform): Platform {
  const arch = p.architecture.toLowerCase();
  let variant = p.variant?.toLowerCase() ?? '';
  if (arch === 'amd64' && variant === 'v1') variant = '';
  if (arch === 'arm64' && ['8', 'v8', 'v8.0'].includes(variant)) variant = '';
  if (arch === 'arm64' && ['9', '9.0', 'v9.0'].includes(variant)) variant = 'v9';
  if (arch === 'arm' && (variant === '' || /^[5-8]$/.test(variant))) variant = `v${variant || '7'}`;
  return variant ? { os: p.os, architecture: arch, variant } : { os: p.os, architecture: arch };
}

/**
 * The platforms whose code runs where `want` does, best first, as containerd's `platforms.Only`
 * orders them (docs/cgo.md#platform-matching): amd64 `v3` → `v3`, `v2`, `v1`/none; arm `v7` → `v7`,
 * `v6`, `v5`; arm64 `v8.2` → `v8.2`, `v8.1`, `v8`/none, and `v9.x` also the `v8.(x+5)` below it.
 * Never a higher variant than `want`. Unlike containerd, no other architecture (386 for amd64,
 * 32-bit arm for arm64): the binary is built for `want`'s architecture and must match its base's.
 */
export function compatiblePlatforms(want: Platform): Platform[] {
  const p = normalizePlatform(want);
  const at = (variant: string): Platform => (variant ? { ...p, variant } : { os: p.os, architecture: p.architecture });
  const n = Number(/^v(\d+)$/.exec(p.variant ?? '')?.[1]);
  if (p.architecture === 'amd64' && n > 1) return range(n, 1).map((v) => at(v === 1 ? '' : `v${v}`));
  if (p.architecture === 'arm' && n > 5) return range(n, 5).map((v) => at(`v${v}`));
  const arm64 = /^v(8|9)(?:\.(\d))?$/.exec(p.variant ?? '');
  if (p.architecture === 'arm64' && arm64) {
    const [major, minor] = [Number(arm64[1]), Number(arm64[2] ?? 0)];
    // Armv9.x includes Armv8.(x+5) (Arm's architecture reference), containerd's table up to v8.9.
    const v8minor = major === 9 ? Math.min(minor + 5, 9) : minor;
    const v9 = major === 9 ? range(minor, 0).map((m) => at(m ? `v9.${m}` : 'v9')) : [];
    return [...v9, ...range(v8minor, 0).map((m) => at(m ? `v8.${m}` : ''))];
  }
  return [p];
}

/** `from`, `from - 1`, … `to`. */
const range = (from: number, to: number): number[] => Array.from({ length: from - to + 1 }, (_, i) => from - i);

/**
 * The index of the entry of `have` to build `want` on: the first that matches the best of
 * compatiblePlatforms(want), or -1 when none runs there.
 */
export function bestPlatformMatch(want: Platform, have: readonly (Platform | undefined)[]): number {
  for (const candidate of compatiblePlatforms(want)) {
    const i = have.findIndex((h) => platformMatches(candidate, h));
    if (i >= 0) return i;
  }
  return -1;
}

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
