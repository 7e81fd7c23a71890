#!/usr/bin/env bash
# Bundle the action (dist/index.js) and the CLI (dist/cli/index.js) with ncc.
# dist/ is committed; CI rebuilds it and fails if it differs (STYLE §12).
set -euo pipefail
cd "$(dirname "$0")/.."
npx tsc --noEmit -p .
rm -rf dist
npx ncc build src/index.ts -o dist --license licenses.txt --target es2022 --quiet
npx ncc build src/bin.ts -o dist/cli --target es2022 --quiet
