#!/usr/bin/env bash
# Builds the .deb from this tree: the bundle, then dpkg-buildpackage (binary only, unsigned).
# Needs Debian's debhelper, dpkg-dev and fakeroot (test/env/install-deps.sh installs them).
# The .deb lands in dist/.
set -euo pipefail
cd "$(dirname "$0")/.."
npm run --silent build
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# dpkg-buildpackage writes its output into the parent directory: build in a private copy of the tree.
tree="$work/immich-firstboot"
mkdir -p "$tree/dist"
git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf - | tar -xf - -C "$tree"
# The entry, its chunks and their source maps, as this build left them (it removes what it no longer has).
cp dist/*.mjs dist/*.mjs.map "$tree/dist/"
(cd "$tree" && dpkg-buildpackage -b -us -uc -rfakeroot >"$work/build.log" 2>&1) || { cat "$work/build.log" >&2; exit 1; }
mkdir -p dist
cp "$work"/*.deb dist/
ls dist/*.deb
