#!/usr/bin/env bash
# Install what `npm run bench` needs and is missing, and only that; safe to run again.
#   Everything the tests need (scripts/install-deps.sh: Go, docker-registry, skopeo, ...),
#   GNU time, and crane, go-containerregistry's CLI, built from Debian's source package
#   (golang-github-google-go-containerregistry-dev, in bookworm-backports) with Debian's Go in
#   GOPATH mode: no module download, nothing fetched but Debian packages.
#   bash bench/install.sh CRANE_OUT
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
crane_out="${1:?usage: bench/install.sh CRANE_OUT}"
log() { printf 'bench/install: %s\n' "$*" >&2; }
die() { printf 'bench/install: %s\n' "$*" >&2; exit 1; }

bash "$root/scripts/install-deps.sh" >&2
# shellcheck source=../scripts/go-path.sh
. "$root/scripts/go-path.sh"

if [ "$(id -u)" -eq 0 ]; then SUDO=(); elif command -v sudo >/dev/null 2>&1; then SUDO=(sudo); else SUDO=(false); fi
updated=false
apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "missing $*, and no apt-get to install them"
  if [ "$updated" = false ]; then
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    updated=true
  fi
  log "installing $*"
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

[ -x /usr/bin/time ] || apt_install time

src=/usr/share/gocode/src/github.com/google/go-containerregistry/cmd/crane
if [ ! -d "$src" ]; then
  . /etc/os-release
  # On bookworm the package (0.14) is only in backports, whose pin (100) apt-get would not
  # pick by itself for its dependencies; trixie and later have it in the main archive.
  if [ -n "${VERSION_CODENAME:-}" ] && apt-cache policy golang-github-google-go-containerregistry-dev 2>/dev/null | grep -q -- "-backports"; then
    apt_install -t "$VERSION_CODENAME-backports" golang-github-google-go-containerregistry-dev
  else
    apt_install golang-github-google-go-containerregistry-dev
  fi
fi
[ -d "$src" ] || die "golang-github-google-go-containerregistry-dev installed, but $src is missing"

if [ ! -x "$crane_out" ] || [ "$src" -nt "$crane_out" ]; then
  log "building crane from $src (GOPATH mode, Debian's Go sources only)"
  mkdir -p "$(dirname "$crane_out")"
  # GOFLAGS from the environment (-mod=...) would be refused in GOPATH mode.
  GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS= GOTOOLCHAIN=local CGO_ENABLED=0 \
    go build -o "$crane_out" github.com/google/go-containerregistry/cmd/crane
fi
log "crane at $crane_out"
