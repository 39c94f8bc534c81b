#!/usr/bin/env bash
# Builds the .deb the way `npm run deb` (scripts/deb.sh) does, but in a private copy of the tree with the
# .deb left in OUT: test/package/deb.test.ts runs scripts/deb.sh at the same time, and that rewrites
# dist/ (the bundle and the .deb) while we would be reading it. Usage: build-deb.sh OUT
set -euo pipefail
out=$(realpath -m "${1:?usage: build-deb.sh OUT}")
repo=$(cd "$(dirname "$0")/../.." && pwd)
tree=$out/tree/immich-firstboot
rm -rf "$out/tree" && mkdir -p "$tree"
(cd "$repo" && git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf -) | tar -xf - -C "$tree"
ln -s "$repo/node_modules" "$tree/node_modules"
(cd "$tree" && node scripts/build.mjs)
(cd "$tree" && dpkg-buildpackage -b -us -uc -rfakeroot >"$out/build.log" 2>&1) || { cat "$out/build.log" >&2; exit 1; }
mv "$out"/tree/*.deb "$out/"
rm -rf "$out/tree"
ls "$out"/*.deb
