# Sourced: put a Go >= 1.23 first on PATH — the one on PATH if new enough, else the newest
# /usr/lib/go-1.NN (Debian's versioned packages do not put `go` on PATH). Never download a
# toolchain mid-run: a module needing a newer Go should fail plainly (GOTOOLCHAIN=local).
go_minor() { "$1" env GOVERSION 2>/dev/null | sed -n -E 's/^go1\.([0-9]+).*/\1/p'; }
go_path=$(command -v go 2>/dev/null || true)
path_minor=""
[ -z "$go_path" ] || path_minor=$(go_minor "$go_path")
if [ -z "$path_minor" ] || [ "$path_minor" -lt 23 ]; then
  best=""
  best_minor=0
  for g in /usr/lib/go-1.*/bin/go; do
    [ -x "$g" ] || continue
    m=$(go_minor "$g")
    if [ -n "$m" ] && [ "$m" -ge 23 ] && [ "$m" -gt "$best_minor" ]; then best=$g; best_minor=$m; fi
  done
  [ -n "$best" ] && PATH="$(dirname "$best"):$PATH"
fi
export PATH
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
