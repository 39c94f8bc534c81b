#!/usr/bin/env bash
# Installs the Debian packages the test suite needs (real openssl, nginx, Docker, ...); fast when present.
set -euo pipefail

packages=(
  openssl ca-certificates curl iproute2 procps psmisc   # the core and its tests
  nginx sslscan pebble certbot python3-certbot-nginx    # the door: real nginx, a scanner, real certbot + ACME
  fail2ban                                              # fail2ban-regex/-client on the shipped filter and jail (no daemon)
  docker.io docker-compose busybox-static               # a real Docker engine and stand-in images
  systemd-container debootstrap systemd                 # a real systemd machine (nspawn)
  debhelper dpkg-dev fakeroot lintian bash-completion   # building and checking the .deb
  inotify-tools strace testssl.sh hyperfine time        # proofs and benchmarks
  faketime                                              # a certificate that expired in 2020, made by real openssl
  systemd-journal-remote                                # a real journal file with a compressed field (prepare-image scan)
  ufw                                                   # doctor's hardening audit: real ufw deletes the rule each fix names
  gdisk e2fsprogs util-linux                            # the data disk on loop devices: sgdisk, mkfs.ext4, debugfs, chattr, blkid, wipefs
  attr                                                  # setfattr/getfattr: attach-disk's copy keeps extended attributes
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# No service started by apt (the tests start their own nginx, dockerd, ...): on a host without systemd,
# fail2ban's init script would start its daemon, which fails without /var/log/auth.log and so fails
# the install. Docker's Debian images already carry this policy-rc.d; elsewhere it lasts the install.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get install -y -q --no-install-recommends "${missing[@]}"
