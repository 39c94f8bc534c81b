#!/usr/bin/env bash
# Builds (once, cached) a Debian tree per release (systemd, Docker, nginx, node, cloud-init) and
# prepares/chroots/boots/enters/stops systemd-nspawn machines made from it.
set -euo pipefail

cache=${IFB_CACHE:-/var/cache/immich-firstboot-ci}
release=${IFB_RELEASE:-bookworm}
mirror=http://deb.debian.org/debian
# What the image has before our package, per release: systemd, cloud-init, the Docker engine, nginx and
# Node. What our Depends must bring is only downloaded (into the tree's apt cache), not installed, so that
# `apt-get install --no-install-recommends ./immich-firstboot.deb` proves the Depends offline: on Debian 13
# the engine (docker.io) comes without its CLI, which is the package docker-cli.
# locales: cloud-init's locale module runs update-locale for en_US.UTF-8 (generated, as on cloud images). tzdata: without /etc/localtime, compose's `/etc/localtime:/etc/localtime:ro` bind would create a directory.
common=(systemd systemd-sysv dbus openssl nodejs iproute2 curl ca-certificates procps tzdata locales cloud-init docker.io)
# Also only downloaded, installed later by the e2e's image-building phase, offline: certbot and its nginx
# plugin (our Recommends, which `--no-install-recommends` leaves out, so an image builder installs them
# by name) and pebble (Debian's ACME test server, with pebble-challtestsrv in the same package): test
# scaffolding, installed only into the machine that proves Let's Encrypt at first boot.
acme=(certbot python3-certbot-nginx pebble)
# Our Depends for the data disk: sgdisk (gdisk, not on a minbase tree) and e2fsprogs (mkfs.ext4, debugfs,
# chattr; already there, then a no-op).
disk=(gdisk e2fsprogs)
case $release in
bookworm) pkgs=("${common[@]}" nginx-light) fetch=(docker-compose "${disk[@]}" "${acme[@]}") ;;
trixie) pkgs=("${common[@]}" nginx) fetch=(docker-cli docker-compose "${disk[@]}" "${acme[@]}") ;;
*) echo "nspawn-machine.sh: IFB_RELEASE must be bookworm or trixie, not '$release'" >&2; exit 2 ;;
esac
tree=$cache/$release-machine
stamp="v6 $release $mirror ${pkgs[*]} / ${fetch[*]}"
PATH_IN=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

usage() {
  cat >&2 <<'EOF'
usage: nspawn-machine.sh build                  build the cached tree (other commands do it on demand)
       nspawn-machine.sh prepare DIR [HOSTNAME] fresh writable copy of the tree at DIR (env IFB_MACHINE_ID, see below)
       nspawn-machine.sh chroot DIR CMD...      run CMD in DIR without booting (no network)
       nspawn-machine.sh boot DIR [OPTION...]   boot DIR in the background; wait until running/degraded
                                                (OPTIONs go to systemd-nspawn: a --bind= of a device node)
       nspawn-machine.sh exec DIR CMD...        run CMD inside the booted machine (stdin/exit status pass through)
       nspawn-machine.sh load-images DIR TAR    `docker load` a `docker save` tarball (or - for stdin) inside
       nspawn-machine.sh poweroff DIR           clean shutdown, then kill if it hangs
       nspawn-machine.sh cleanup DIR            poweroff if needed, then remove DIR and its log/pidfile
env: IFB_RELEASE for build/prepare: bookworm (default) or trixie; IFB_CACHE (default /var/cache/immich-firstboot-ci), IFB_BOOT_TIMEOUT / IFB_POWEROFF_TIMEOUT (s, 90 / 60),
     IFB_MACHINE_ID for prepare: "" (default, like cloud images; not a ConditionFirstBoot), "uninitialized"
     (ConditionFirstBoot=yes on the first boot), or a fixed 32-hex id.
Files beside DIR: DIR.console.log (console output), DIR.pid (nspawn pid).
EOF
  exit 2
}
die() { echo "nspawn-machine.sh: $*" >&2; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# --register=no --keep-unit: there is no systemd/system bus on the host to register with or create a scope through.
# Unified hierarchy: the host is cgroup-v1 hybrid; Docker inside works best on cgroup v2.
nspawn() { SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 systemd-nspawn -q --register=no --keep-unit "$@"; }

need_host_tools() {
  command -v debootstrap >/dev/null && command -v systemd-nspawn >/dev/null && command -v nsenter >/dev/null && return
  DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=900 install -y debootstrap systemd-container util-linux >&2
}

build() {
  [[ -d $tree && $(cat "$tree.stamp" 2>/dev/null) == "$stamp" ]] && return
  need_host_tools
  mkdir -p "$cache"
  exec 8>"$tree.lock"; flock 8
  [[ -d $tree && $(cat "$tree.stamp" 2>/dev/null) == "$stamp" ]] && return
  local t0 new=$tree.new; t0=$(now)
  rm -rf "$new" "$tree" "$tree.stamp"
  local blog=$tree.build.log
  echo "nspawn-machine.sh: building $tree (debootstrap + apt, a few minutes, once; log $blog)" >&2
  # Output goes to a log (debootstrap is very chatty); shown on failure.
  trap 'echo "nspawn-machine.sh: build failed; tail of $tree.build.log:" >&7; tail -n 30 "$tree.build.log" >&7' ERR
  exec 7>&2 2>"$blog"
  debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus "$release" "$new" "$mirror" >&2
  printf 'deb %s %s main\ndeb %s %s-updates main\ndeb http://deb.debian.org/debian-security %s-security main\n' \
    "$mirror" "$release" "$mirror" "$release" "$release" >"$new/etc/apt/sources.list"
  # Keep maintainer scripts from starting daemons (nginx, docker) while we install without systemd running.
  printf '#!/bin/sh\nexit 101\n' >"$new/usr/sbin/policy-rc.d"; chmod 755 "$new/usr/sbin/policy-rc.d"
  # Downloaded packages stay in the apt cache (docker-clean would delete them after every install).
  rm -f "$new/etc/apt/apt.conf.d/docker-clean"
  nspawn -D "$new" --as-pid2 -E DEBIAN_FRONTEND=noninteractive -- sh -euc \
    "apt-get -q update && apt-get -q install -y --no-install-recommends ${pkgs[*]} && apt-get clean &&
     sed -i 's/^# *en_US.UTF-8 UTF-8/en_US.UTF-8 UTF-8/' /etc/locale.gen && locale-gen &&
     apt-get -q install -y --no-install-recommends --download-only ${fetch[*]}" >&2
  rm -f "$new/usr/sbin/policy-rc.d"
  # Apt lists are kept so `apt-get install ./x.deb` resolves offline against the installed packages.
  # Like cloud images: no machine-id baked in; dbus' copy follows /etc/machine-id instead of a fixed one.
  : >"$new/etc/machine-id"; ln -sf /etc/machine-id "$new/var/lib/dbus/machine-id"
  # cloud-init as on a cloud image, but told where its data is (a NoCloud seed, written per machine by
  # `prepare`), so ds-identify need not guess; networking is the container's, not cloud-init's to render.
  printf 'datasource_list: [ NoCloud, None ]\nnetwork: {config: disabled}\n' >"$new/etc/cloud/cloud.cfg.d/90-ifb-nocloud.cfg"
  mv "$new" "$tree"
  echo "$stamp" >"$tree.stamp"
  exec 2>&7 7>&-; trap - ERR
  echo "nspawn-machine.sh: built $tree in $(since "$t0")s ($(du -sh "$tree" | cut -f1))" >&2
}

# The nspawn process of a booted DIR, or nothing. PID 1 on this kind of host doesn't reap orphans, so an
# exited nspawn lingers as a zombie: treat state Z as gone.
nspawn_pid() {
  local pid; pid=$(cat "$pidfile" 2>/dev/null) || return 1
  [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) =~ ^[RSDT]$ ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "-D $dir " || return 1
  echo "$pid"
}
leader_pid() { local pid; pid=$(nspawn_pid) && pgrep -P "$pid" | head -n1; }
in_machine() {
  local leader; leader=$(leader_pid) || die "$dir is not booted"
  [[ -n $leader ]] || die "$dir: no container PID 1 yet"
  # A clean environment: the caller's (LD_LIBRARY_PATH, IFB_*, ...) must not leak in.
  nsenter -t "$leader" -a env -i PATH=$PATH_IN HOME=/root LANG=C.UTF-8 TERM="${TERM:-dumb}" "$@"
}

cmd=${1:-}; [[ -n $cmd ]] || usage; shift
if [[ $cmd == build ]]; then build; exit; fi
[[ $# -ge 1 ]] || usage
dir=$(realpath -m "$1"); shift
[[ $dir != / && $dir != "$tree" ]] || die "refusing DIR=$dir"
pidfile=$dir.pid log=$dir.console.log

case $cmd in
prepare)
  host=${1:-$(basename "$dir" | tr -c 'a-zA-Z0-9-\n' -)}
  build
  ! nspawn_pid >/dev/null || die "$dir is booted"
  t0=$(now)
  rm -rf "$dir" "$pidfile" "$log"
  mkdir -p "$(dirname "$dir")"
  cp -a --reflink=auto "$tree" "$dir"
  # machine-id like a cloud image: empty (default, as Ubuntu/Debian cloud images ship it) makes systemd 252 pick
  # nspawn's random container UUID and write it at boot, but ConditionFirstBoot= is *false* (only a missing file
  # or "uninitialized" counts as first boot). IFB_MACHINE_ID=uninitialized gives ConditionFirstBoot=yes on the
  # first boot only; a 32-hex id simulates an image captured after booting.
  printf '%s' "${IFB_MACHINE_ID:-}" >"$dir/etc/machine-id"
  [[ -z ${IFB_MACHINE_ID:-} ]] || echo >>"$dir/etc/machine-id"
  # The first boot of an "uninitialized" machine-id runs `systemctl preset-all`, which enables networkd and its
  # wait-online; with --private-network (only lo) that blocks network-online.target, hence docker, for 2 min.
  ln -sf /dev/null "$dir/etc/systemd/system/systemd-networkd-wait-online.service"
  echo "$host" >"$dir/etc/hostname"
  printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' "$host" >"$dir/etc/hosts"
  echo "nspawn-machine.sh: prepared $dir in $(since "$t0")s" >&2
  ;;
chroot)
  [[ $# -ge 1 ]] || usage
  [[ -d $dir/etc ]] || die "$dir is not prepared"
  ! nspawn_pid >/dev/null || die "$dir is booted; use exec"
  # As image builders do: no daemons started by maintainer scripts, no network (proves offline installs).
  printf '#!/bin/sh\nexit 101\n' >"$dir/usr/sbin/policy-rc.d"; chmod 755 "$dir/usr/sbin/policy-rc.d"
  trap 'rm -f "$dir/usr/sbin/policy-rc.d"' EXIT
  # --pipe when not on a terminal: otherwise nspawn gives CMD a pty and doesn't forward our stdin.
  [[ -t 0 ]] && console=interactive || console=pipe
  rc=0
  nspawn -D "$dir" --console="$console" --private-network --as-pid2 -E DEBIAN_FRONTEND=noninteractive -E PATH=$PATH_IN -- "$@" || rc=$?
  exit $rc
  ;;
boot)
  [[ -d $dir/etc ]] || die "$dir is not prepared"
  ! nspawn_pid >/dev/null || die "$dir is already booted"
  t0=$(now)
  # setsid: own session, so the caller's job control/terminal signals don't reach it.
  # --private-network: Docker's bridge and iptables rules stay inside; only lo + docker0 exist in there.
  # --system-call-filter: dockerd/runc need keyctl and bpf (cgroup-v2 device control), nspawn blocks them by default.
  SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 setsid systemd-nspawn -q -D "$dir" -b --register=no --keep-unit \
    --private-network --system-call-filter='@keyring bpf' --console=read-only "$@" </dev/null >"$log" 2>&1 &
  echo $! >"$pidfile"
  state='' deadline=$((SECONDS + ${IFB_BOOT_TIMEOUT:-90}))
  while ((SECONDS < deadline)); do
    sleep 0.2
    nspawn_pid >/dev/null || break
    state=$(in_machine systemctl is-system-running 2>/dev/null) || true
    [[ $state == running || $state == degraded ]] && break
  done
  if [[ $state != running && $state != degraded ]]; then
    echo "nspawn-machine.sh: $dir did not boot (state '$state'); console log $log:" >&2
    tail -n 40 "$log" >&2
    "$0" poweroff "$dir" >&2 || true
    exit 1
  fi
  echo "nspawn-machine.sh: booted $dir in $(since "$t0")s ($state), nspawn pid $(cat "$pidfile")" >&2
  [[ $state == running ]] || in_machine systemctl --failed --no-legend >&2 || true
  ;;
exec)
  [[ $# -ge 1 ]] || usage
  in_machine "$@"
  ;;
load-images)
  [[ $# -eq 1 ]] || usage
  if [[ $1 == - ]]; then in_machine docker load; else in_machine docker load <"$1"; fi
  ;;
poweroff)
  pid=$(nspawn_pid) || { rm -f "$pidfile"; exit 0; }
  t0=$(now)
  leader=$(pgrep -P "$pid" | head -n1) || true
  # SIGRTMIN+4 asks systemd for a clean poweroff without needing D-Bus inside. Re-sent every second: a PID 1
  # drops signals it has no handler for yet, so one sent very early in boot is lost.
  deadline=$((SECONDS + ${IFB_POWEROFF_TIMEOUT:-60})) i=0
  while ((SECONDS < deadline)) && nspawn_pid >/dev/null; do
    leader=${leader:-$(pgrep -P "$pid" | head -n1)}
    ((i++ % 5)) || [[ -z $leader ]] || kill -s RTMIN+4 "$leader" 2>/dev/null || true
    sleep 0.2
  done
  if nspawn_pid >/dev/null; then
    echo "nspawn-machine.sh: $dir did not power off in time, killing it" >&2
    # Killing the container's PID 1 kills its whole PID namespace (incl. Docker containers); nspawn then exits.
    [[ -z $leader ]] || kill -KILL "$leader" 2>/dev/null || true
    for _ in $(seq 50); do nspawn_pid >/dev/null || break; sleep 0.2; done
    ! nspawn_pid >/dev/null || kill -KILL "$pid"
  fi
  rm -f "$pidfile"
  echo "nspawn-machine.sh: powered off $dir in $(since "$t0")s" >&2
  ;;
cleanup)
  "$0" poweroff "$dir"
  # Never rm -rf through a live mount (e.g. a leftover bind mount into the tree).
  ! awk '{print $5}' /proc/self/mountinfo | grep -q "^$dir\(/\|$\)" || die "mounts remain under $dir"
  rm -rf "$dir" "$pidfile" "$log"
  ;;
*) usage ;;
esac
