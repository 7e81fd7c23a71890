#!/usr/bin/env bash
# Rebuild dist/ from the committed sources only (a clean worktree at HEAD), so that work in
# progress in this checkout cannot leak into the committed bundle. Copies the result here.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tree="$(mktemp -d)"
trap 'git -C "$root" worktree remove --force "$tree" >/dev/null 2>&1 || rm -rf "$tree"' EXIT
git -C "$root" worktree add -q --detach "$tree" HEAD
ln -s "$root/node_modules" "$tree/node_modules"
(cd "$tree" && bash scripts/build.sh)
rm -rf "$root/dist"
cp -r "$tree/dist" "$root/dist"
