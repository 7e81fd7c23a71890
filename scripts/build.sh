#!/usr/bin/env bash
# Bundle the action (dist/index.js) and the CLI (dist/cli/index.js) with ncc.
# dist/ is committed; CI rebuilds it and fails if it differs (docs/architecture.md#dist).
set -euo pipefail
cd "$(dirname "$0")/.."
npx tsc --noEmit -p .
rm -rf dist
# Minified: the runner starts a fresh Node for every step, and parsing the bundle is a large
# part of its start-up (`npm run bench` times both entry points).
stats="$(mktemp -d)"
trap 'rm -rf "$stats"' EXIT
npx ncc build src/index.ts -o dist --stats-out "$stats/index.json" --target es2022 --minify --quiet
npx ncc build src/bin.ts -o dist/cli --stats-out "$stats/cli.json" --target es2022 --minify --quiet
# The toolkit's artifact client, for fan-out jobs only (src/fanout/artifact-client.ts): a bundle
# of its own, loaded when a fan-out job first uses it, so that no other run parses it.
npx ncc build src/fanout/artifact-client.ts -o dist/artifact --license licenses.txt --target es2022 --minify --quiet
# sigstore-js, for runs that sign only (src/provenance/sigstore-client.ts), likewise.
npx ncc build src/provenance/sigstore-client.ts -o dist/sigstore --stats-out "$stats/sigstore.json" --target es2022 --minify --quiet
node scripts/licenses.mjs "$stats/sigstore.json" > dist/sigstore/licenses.txt
# ncc's --license covers only the last chunk once there are chunks (see below): ours covers all.
node scripts/licenses.mjs "$stats/index.json" > dist/licenses.txt
# A dynamic import() without webpackMode "eager" (see src/github/dates.ts) makes ncc write a chunk file
# next to the bundle, which is not minified.
# Two chunks come from inside @sigstore/sign's HTTP client (make-fetch-happen), whose own
# import()s no comment of ours reaches: cacache's `import('p-map')` and the proxy agents'
# optional `import('kerberos')` (not installed: the chunk is ncc's stub). Those are let through.
chunks="$(find dist -name '*.js' ! -path dist/index.js ! -path dist/cli/index.js ! -path dist/artifact/index.js ! -path dist/sigstore/index.js | while read -r f; do
  grep -qE 'eval\("require"\)\("kerberos"\)|function pMap\(|async function pMap\(|pMapSettled' "$f" || echo "$f"
done)"
if [ -n "$chunks" ]; then
  echo "build.sh: ncc wrote chunk files; make the dynamic import() eager: $chunks" >&2
  exit 1
fi
