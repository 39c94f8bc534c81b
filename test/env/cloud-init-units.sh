#!/usr/bin/env bash
# Fetches (once, cached) Debian's cloud-init package of a release with apt and extracts it; prints the
# directory it is extracted in. For test/package/boot-order.test.ts: systemd-analyze verify of the boot
# transaction with the unit files users really have. Usage: cloud-init-units.sh bookworm|trixie
set -euo pipefail
release=${1:?usage: cloud-init-units.sh bookworm|trixie}
[[ $release =~ ^[a-z]+$ ]] || { echo "cloud-init-units.sh: not a release name: $release" >&2; exit 2; }
cache=${IFB_CACHE:-/var/cache/immich-firstboot-ci}/cloud-init-$release
out=$cache/extracted
[[ -f $out.stamp ]] && { echo "$out"; exit 0; }

mkdir -p "$cache"
exec 8>"$cache.lock"; flock 8
[[ -f $out.stamp ]] && { echo "$out"; exit 0; }
# A private apt state for that release: the host's sources, lists and cache are left alone.
mkdir -p "$cache/lists/partial" "$cache/archives/partial" "$cache/download"
echo "deb http://deb.debian.org/debian $release main" >"$cache/sources.list"
apt=(apt-get -q -o "Dir::Etc::SourceList=$cache/sources.list" -o Dir::Etc::SourceParts=/dev/null
  -o "Dir::State::Lists=$cache/lists" -o "Dir::Cache=$cache" -o APT::Sandbox::User=root)
"${apt[@]}" update >&2
rm -f "$cache"/download/*.deb
(cd "$cache/download" && "${apt[@]}" download cloud-init >&2)
rm -rf "$out"
dpkg-deb -x "$cache"/download/cloud-init_*.deb "$out"
dpkg-deb -f "$cache"/download/cloud-init_*.deb Version >"$out.version"
touch "$out.stamp"
echo "$out"
