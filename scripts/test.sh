#!/usr/bin/env bash
# THE test command: `npm test` runs it, CI runs `npm ci && npm test`.
#   1. install missing system dependencies (Go, docker-registry, skopeo, umoci, …)
#   2. typecheck
#   3. dist/ must equal a clean rebuild (docs/architecture.md#dist)
#   4. the whole jest suite (arguments to this script are passed on to jest)
# Every step runs even when an earlier one failed, so one run shows every problem; the
# exit status is non-zero if any failed. The last line is `N passed, N failed` (tests).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

failed_steps=()
step() { printf '\n==> %s\n' "$*"; }
fail() { failed_steps+=("$1"); printf '\n*** %s\n' "$2" >&2; }

step "system dependencies"
if ! bash scripts/install-deps.sh; then
  printf '\n*** installing dependencies failed; nothing else can run\n0 passed, 0 failed\n' >&2
  exit 1
fi

# shellcheck source=scripts/go-path.sh
. scripts/go-path.sh
printf 'go: %s (%s)\n' "$(command -v go || echo 'not found')" "$(go env GOVERSION 2>/dev/null || echo '?')"

step "typecheck: tsc --noEmit -p ."
npx tsc --noEmit -p . || fail typecheck "typecheck failed"

# Before jest: the end-to-end test runs dist/index.js, which must be the committed bundle.
step "dist/ equals a clean rebuild"
if ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  fail dist "not a git checkout: cannot compare dist/ with a rebuild"
else
  # Clean: files that the build no longer produces must show up as deleted.
  rm -rf dist
  if npm run build; then
    stale=$( (git diff --name-only -- dist; git ls-files --others --exclude-standard -- dist) | sort -u)
    if [ -n "$stale" ]; then
      printf '%s\n' "$stale" | sed 's/^/  /' | head -50
      fail dist "dist/ is stale: it differs from a clean 'npm run build' (files above). Run 'npm run build' and commit dist/."
    else
      echo "dist/ is up to date"
    fi
  else
    git checkout -q -- dist 2>/dev/null || true
    fail dist "'npm run build' failed, so dist/ could not be checked"
  fi
fi

step "jest"
mkdir -p .tmp
results=.tmp/jest-results.json
rm -f "$results"
# Node 24, as the runner runs the action: @sigstore/sign needs it (package.json "//").
node24=$(npx -y node@24 -p process.execPath) || node24=node
"$node24" --experimental-vm-modules node_modules/jest/bin/jest.js --ci --json --outputFile="$results" "$@" ||
  fail jest "jest reported failures"
counts=$(node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  // A suite that fails to load counts as a failure even though it ran no tests.
  console.log(r.numPassedTests, r.numFailedTests + r.numRuntimeErrorTestSuites);
' "$results" 2>/dev/null) || counts=""
if [ -z "$counts" ]; then
  counts="0 0"
  [[ " ${failed_steps[*]-} " == *" jest "* ]] || fail jest "jest wrote no results to $results"
fi
read -r passed failed <<<"$counts"

printf '\n'
if [ ${#failed_steps[@]} -gt 0 ]; then
  printf 'FAILED: %s\n' "${failed_steps[*]}"
else
  printf 'all steps passed: dependencies, typecheck, jest, dist\n'
fi
printf '%s passed, %s failed\n' "$passed" "$failed"
[ ${#failed_steps[@]} -eq 0 ]
