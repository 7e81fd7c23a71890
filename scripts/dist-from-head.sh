#!/usr/bin/env bash
# Rebuild dist/ from the committed sources only (a clean worktree at HEAD), so that work in
# progress in this checkout cannot leak into the committed bundle. Copies the result here.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tree="$(mktemp -d)"
trap 'git -C "$root" worktree remove --force "$tree" >/dev/null 2>&1 || rm -rf "$tree"' EXIT
git -C "$root" worktree add -q --detach "$tree" HEAD
# A real install, not a link to ours: webpack names modules by their resolved paths, so a
# linked node_modules would give a bundle that differs from a clean clone's.
(cd "$tree" && npm ci --silent --no-audit --no-fund && bash scripts/build.sh)
rm -rf "$root/dist"
cp -r "$tree/dist" "$root/dist"
