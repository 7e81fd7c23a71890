#!/usr/bin/env bash
# Install what the test suite needs and is missing, and only that; safe to run again.
#   Go >= 1.23, docker-registry (distribution 2.8), skopeo, umoci, openssl, htpasswd, git, and
#   qemu-user with arm64's libc and libstdc++ (scripts/deflate-cpus.sh runs Node on other CPUs),
#   and for cgo (docs/cgo.md): gcc, Debian's arm64 cross compiler, and qemu-user-static, whose
#   qemu-aarch64-static -L <rootfs> runs the arm64 cgo binary against an image's own libc.
# Runs as root in CI (sudo only when not root). apt-get update runs once, and only when
# something must be installed. The packaged registry service is never left running: tests
# start their own registries on loopback, and the packaged one listens on all interfaces.
set -euo pipefail

log() { printf 'install-deps: %s\n' "$*"; }
die() { printf 'install-deps: %s\n' "$*" >&2; exit 1; }

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  SUDO=(__no_root__)
fi
as_root() {
  [ "${SUDO[0]:-}" != __no_root__ ] || die "need root (or sudo) to run: $*"
  "${SUDO[@]}" "$@"
}

GO_MIN_MINOR=23

# True if the Go at $1 is at least 1.$GO_MIN_MINOR.
go_new_enough() {
  local v minor
  v=$("$1" env GOVERSION 2>/dev/null) || return 1 # go1.23.5
  minor=$(printf '%s' "$v" | sed -n -E 's/^go1\.([0-9]+).*/\1/p')
  [ -n "$minor" ] && [ "$minor" -ge "$GO_MIN_MINOR" ]
}

have_go() {
  if command -v go >/dev/null 2>&1 && go_new_enough "$(command -v go)"; then return 0; fi
  [ -x /usr/lib/go-1.23/bin/go ] && return 0
  local g
  for g in /usr/lib/go-1.*/bin/go; do
    [ -x "$g" ] && go_new_enough "$g" && return 0
  done
  return 1
}

# command → Debian package
packages=()
want() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/bin/$1" ] || [ -x "/usr/sbin/$1" ] || packages+=("$2"); }
want docker-registry docker-registry
want skopeo skopeo
want umoci umoci
want openssl openssl
want htpasswd apache2-utils # htpasswd -B: distribution's htpasswd auth accepts bcrypt only
want git git
want qemu-x86_64 qemu-user
want gcc gcc
want aarch64-linux-gnu-gcc gcc-aarch64-linux-gnu
want qemu-aarch64-static qemu-user-static
# The compilers' libc headers are only recommended, and apt_install skips recommends.
[ -e /usr/include/stdio.h ] || packages+=(libc6-dev)
[ -e /usr/aarch64-linux-gnu/include/stdio.h ] || packages+=(libc6-dev-arm64-cross)
[ -e /usr/aarch64-linux-gnu/lib/libc.so.6 ] || packages+=(libc6-arm64-cross)
[ -e /usr/aarch64-linux-gnu/lib/libstdc++.so.6 ] || packages+=(libstdc++6-arm64-cross)

need_go=false
have_go || need_go=true

if [ ${#packages[@]} -eq 0 ] && [ "$need_go" = false ]; then
  log "nothing to install"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  [ "$need_go" = false ] || packages+=("Go >= 1.$GO_MIN_MINOR")
  die "missing ${packages[*]}, and no apt-get to install them"
fi

# shellcheck disable=SC1091
. /etc/os-release
distro=${ID:-unknown}
codename=${VERSION_CODENAME:-}

# Debian's own Go is too old before trixie; 1.23 comes from backports. The mirror is taken
# from this machine's apt config (deb822 `.sources` or the older one-line `sources.list`),
# so no host is named here.
ensure_backports() {
  local suite="$codename-backports" src=""
  if grep -rqsE "(^|[[:space:]])$suite([[:space:]]|$)" /etc/apt/sources.list /etc/apt/sources.list.d/; then
    return 0
  fi
  if compgen -G '/etc/apt/sources.list.d/*.sources' >/dev/null; then
    src=$(grep -h '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v -- '-security' | head -1 || true)
    if [ -n "$src" ]; then
      log "adding $suite from $src"
      printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
        "$src" "$suite" | as_root tee /etc/apt/sources.list.d/backports.sources >/dev/null
      return 0
    fi
  fi
  # One-line format: `deb [options] URI suite components`.
  src=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
    sed -n -E 's/^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+)[[:space:]].*/\2/p' |
    grep -v -- '-security' | head -1 || true)
  [ -n "$src" ] || die "cannot find a Debian mirror in /etc/apt to add $suite from"
  log "adding $suite from $src"
  printf 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s %s main\n' "$src" "$suite" |
    as_root tee /etc/apt/sources.list.d/backports.list >/dev/null
}

# The newest golang-1.NN-go the archive offers with NN >= GO_MIN_MINOR, if any.
best_versioned_go() {
  apt-cache search --names-only '^golang-1\.[0-9]+-go$' 2>/dev/null | awk '{print $1}' |
    sed -n -E 's/^golang-1\.([0-9]+)-go$/\1/p' | sort -n |
    awk -v min="$GO_MIN_MINOR" '$1 >= min {v=$1} END {if (v != "") print "golang-1." v "-go"}'
}

if [ "$need_go" = true ] && [ "$distro" = debian ] && [ -n "$codename" ]; then
  ensure_backports
fi

export DEBIAN_FRONTEND=noninteractive
log "apt-get update"
as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq

# Keep package scripts from starting services (docker-registry's postinst starts its
# registry on :5000) unless the machine already has a policy, as container images usually do.
policy_added=false
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\n# added by ko-annotate scripts/install-deps.sh for the duration of an install\nexit 101\n' |
    as_root tee /usr/sbin/policy-rc.d >/dev/null
  as_root chmod 0755 /usr/sbin/policy-rc.d
  policy_added=true
fi
cleanup() { if [ "$policy_added" = true ]; then as_root rm -f /usr/sbin/policy-rc.d; fi; }
trap cleanup EXIT

apt_install() {
  log "installing $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

if [ ${#packages[@]} -gt 0 ]; then
  apt_install "${packages[@]}"
fi

if [ "$need_go" = true ]; then
  if [ "$distro" = debian ] && [ -n "$codename" ] && apt_install -t "$codename-backports" golang-1.23-go; then
    :
  else
    # Ubuntu (golang-1.2x-go in the main archive), or a Debian whose own archive is new enough.
    pkg=$(best_versioned_go)
    if [ -n "$pkg" ]; then
      apt_install "$pkg"
    else
      apt_install golang-go
    fi
  fi
  have_go || die "installed Go, but found no go >= 1.$GO_MIN_MINOR (looked on PATH and in /usr/lib/go-1.*/bin)"
fi

# If a service manager started the packaged registry anyway, stop it and keep it off.
if printf '%s\n' "${packages[@]}" | grep -qx docker-registry; then
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    as_root systemctl disable --now docker-registry.service >/dev/null 2>&1 || true
  elif [ -x /etc/init.d/docker-registry ] && as_root /etc/init.d/docker-registry status >/dev/null 2>&1; then
    as_root /etc/init.d/docker-registry stop >/dev/null 2>&1 || true
  fi
fi
log "done"
