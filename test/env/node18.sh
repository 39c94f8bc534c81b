#!/usr/bin/env bash
# Installs Debian 12's Node.js 18 (our runtime target) beside the system Node, once, and prints the path of a wrapper that runs it.
set -euo pipefail

dir=${IFB_CACHE:-/var/cache/immich-firstboot-ci}/node18
wrapper=$dir/bin/node   # named "node" so PATH="$(dirname "$wrapper"):$PATH" makes `#!/usr/bin/env node` use it too

# Fast path: already installed and it actually starts (it aborts at startup if the /usr/share/nodejs deps below are gone).
if [[ -x $wrapper ]] && "$wrapper" -e 0 2>/dev/null; then echo "$wrapper"; exit 0; fi

mkdir -p "$dir"
exec 9>"$dir.lock"; flock 9   # concurrent callers wait for one installer
if [[ -x $wrapper ]] && "$wrapper" -e 0 2>/dev/null; then echo "$wrapper"; exit 0; fi

apt_get() { DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=900 "$@"; }
node18_version() { apt-cache madison nodejs | awk '$3 ~ /^18\./ {print $3}' | sort -V | tail -n1; }
v=$(node18_version)
if [[ -z $v ]]; then apt_get update >&2; v=$(node18_version); fi
[[ -n $v ]] || { echo "node18.sh: apt knows no nodejs 18.x" >&2; exit 1; }

# Debian's libnode loads acorn, cjs-module-lexer and undici from hard-coded /usr/share/nodejs/... paths and
# aborts at startup ("Cannot load externalized builtin") without them. They are plain JS files under
# /usr/share/nodejs that a non-Debian Node (e.g. nodesource's) never looks at, so installing them is harmless.
if ! dpkg -s node-cjs-module-lexer node-undici node-acorn >/dev/null 2>&1; then
  apt_get install -y node-cjs-module-lexer node-undici node-acorn >&2
fi

tmp=$(mktemp -d "$dir/.new.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# APT::Sandbox::User=root: the _apt user can't write into our root-owned dir (apt would warn, then work anyway).
(cd "$tmp" && apt_get -o APT::Sandbox::User=root download "nodejs=$v" "libnode108=$v" libc-ares2) >&2
for deb in "$tmp"/*.deb; do dpkg -x "$deb" "$tmp/root"; done
rm -f "$tmp"/*.deb
mkdir -p "$tmp/bin"
# Only libnode.so.108 and libcares.so.2 live in that lib dir; LD_LIBRARY_PATH is inherited by children, which is harmless.
cat >"$tmp/bin/node" <<WRAP
#!/bin/sh
# Node.js $v from Debian 12, installed by test/env/node18.sh
LD_LIBRARY_PATH="$dir/root/usr/lib/x86_64-linux-gnu\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "$dir/root/usr/bin/node" "\$@"
WRAP
chmod 755 "$tmp/bin/node"
# Replace any earlier install (we hold the lock); the wrapper hard-codes $dir/root.
rm -rf "${dir:?}/root" "${dir:?}/bin"
mv "$tmp/root" "$dir/root"; mv "$tmp/bin" "$dir/bin"
"$wrapper" -e 0
echo "$wrapper"
