#!/usr/bin/env bash
# The README's demo: build the example Go app for linux/amd64 and linux/arm64 on scratch into an
# OCI image layout with the bundled CLI (no registry, no Docker), then show what was made.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root/.tmp/demo-layout}"
# shellcheck source=go-path.sh
. "$root/scripts/go-path.sh"
command -v go >/dev/null || bash "$root/scripts/install-deps.sh" >&2
. "$root/scripts/go-path.sh"
[ -f "$root/dist/cli/index.js" ] || (cd "$root" && npm run build >&2)
rm -rf "$out"
cd "$root/examples/hello"
node "$root/dist/cli/index.js" build ./cmd/hello \
  --repository=localhost/ko-annotate/hello \
  --base-image=scratch \
  --platforms=linux/amd64,linux/arm64 \
  --push=false \
  --sbom=none \
  --ldflags='-X main.version={{.Git.ShortCommit}}' \
  --oci-layout-path="$out"
echo
echo "OCI layout written to $out:"
if command -v skopeo >/dev/null; then
  skopeo inspect --raw "oci:$out" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.stringify(JSON.parse(s),null,2)))'
else
  cat "$out/index.json"
fi
