#!/usr/bin/env bash
# The bench's stand-in for `go` (given to ko-annotate as KO_ANNOTATE_GO): `go build` copies the
# binary that the bench built beforehand for that GOARCH, so that the timed run measures
# everything ko-annotate does except compiling; other commands (`go list`, `go version -m`,
# `go env`) run the real Go, because they are part of what ko-annotate costs. Each call's wall
# time is appended to $KO_BENCH_GO_LOG.
set -euo pipefail
# Without a log, no clock is read and the real Go replaces this shell: the shim costs ko-annotate's
# runs only the bash start-up that any `go` on PATH behind a wrapper would.
start=0
[ -z "${KO_BENCH_GO_LOG:-}" ] || start=$(date +%s%N)
log() { [ -z "${KO_BENCH_GO_LOG:-}" ] || printf '%s %s\n' "$1" "$(( ($(date +%s%N) - start) / 1000000 ))" >>"$KO_BENCH_GO_LOG"; }
if [ "${1:-}" = build ]; then
  out=""
  prev=""
  for a in "$@"; do
    [ "$prev" = -o ] && out=$a
    prev=$a
  done
  [ -n "$out" ] || { echo "go-shim: no -o in: $*" >&2; exit 2; }
  cp "$KO_BENCH_PREBUILT/app-${GOARCH:?}" "$out"
  log build
  exit 0
fi
[ -n "${KO_BENCH_GO_LOG:-}" ] || exec "$KO_BENCH_REAL_GO" "$@"
code=0
"$KO_BENCH_REAL_GO" "$@" || code=$?
log "$1"
exit $code
