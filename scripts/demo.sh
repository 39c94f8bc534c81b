#!/usr/bin/env bash
# Builds the bundle and runs a complete first boot (all but Docker) into ./demo-root, then shows it.
set -euo pipefail
cd "$(dirname "$0")/.."

root=${DEMO_ROOT:-$PWD/demo-root}
rm -rf "$root"
mkdir -p "$root/etc/immich-firstboot"
# This machine is not an Azure VM: keep IMDS off so nothing is sent to 169.254.169.254.
printf 'imds:\n  enabled: false\n' > "$root/etc/immich-firstboot/config.yaml"

npm run --silent build
bin=dist/immich-firstboot.mjs
echo "== immich-firstboot --root $root run --skip-stack"
node "$bin" --root "$root" run --skip-stack
echo
echo "== immich-firstboot --root $root status"
node "$bin" --root "$root" status || true
echo
echo "== what it wrote (mode, owner, path)"
(cd "$root" && find . -mindepth 1 \( -type f -o -type l \) -printf '%m %u %p\n' | sort -k3)
echo
echo "== $root/root/immich-credentials.txt"
cat "$root/root/immich-credentials.txt"
echo
echo "== run it again: nothing to do"
node "$bin" --root "$root" run --skip-stack
