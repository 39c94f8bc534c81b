#!/usr/bin/env bash
# Start a Docker engine for the real-Docker tests (idempotent) and make `docker compose` work.
set -euo pipefail

#   docker-up.sh                                 start dockerd unless Docker answers
#   docker-up.sh --restart [--config-file FILE]   restart the dockerd this script started (pidfile),
#                                                 optionally reading FILE as its daemon.json
#                                                 (what `systemctl restart docker` does on a real VM)
STATE="${IFB_CI_STATE:-/tmp/immich-firstboot-ci}"
PLUGIN=/usr/local/lib/docker/cli-plugins/docker-compose
mkdir -p "$STATE"

restart=0; config=()
while [ $# -gt 0 ]; do
  case "$1" in
    --restart) restart=1 ;;
    --config-file) config=(--config-file "$2"); shift ;;
    *) echo "docker-up: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

if [ "$restart" = 1 ]; then
  pid=$(cat "$STATE/dockerd.pid" 2>/dev/null || true)
  if [ -z "$pid" ] || ! grep -qs dockerd "/proc/$pid/comm"; then
    echo "docker-up: --restart: no dockerd started by this script ($STATE/dockerd.pid); not touching another engine" >&2
    exit 1
  fi
  kill -TERM "$pid"
  for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  if kill -0 "$pid" 2>/dev/null; then echo "docker-up: dockerd $pid did not stop within 30 s" >&2; exit 1; fi
fi

if [ "$restart" = 1 ] || ! docker info >/dev/null 2>&1; then
  # No systemd here, so we run dockerd ourselves. setsid + all fds redirected: the daemon must
  # outlive this script and must not hold the caller's stdout/stderr pipes open.
  setsid dockerd "${config[@]}" >>"$STATE/dockerd.log" 2>&1 </dev/null &
  echo $! >"$STATE/dockerd.pid"
  for _ in $(seq 120); do                       # 120 x 0.5 s = 60 s
    docker info >/dev/null 2>&1 && break
    if ! kill -0 "$(cat "$STATE/dockerd.pid")" 2>/dev/null; then break; fi  # died: stop waiting
    sleep 0.5
  done
  if ! docker info >/dev/null 2>&1; then
    echo "docker-up: dockerd did not come up; last lines of $STATE/dockerd.log:" >&2
    tail -n 30 "$STATE/dockerd.log" >&2
    exit 1
  fi
fi

# Debian 12 ships only docker-compose 1.29 (no compose v2 plugin). This shim lets the CLI run it as
# `docker compose ...`: the CLI asks plugins for metadata, then runs `docker-compose compose ARGS`.
if ! docker compose version >/dev/null 2>&1; then
  mkdir -p "$(dirname "$PLUGIN")"
  cat >"$PLUGIN" <<'SHIM'
#!/bin/sh
# docker CLI plugin shim (installed by immich-firstboot test/env/docker-up.sh): runs docker-compose 1.29.
if [ "$1" = docker-cli-plugin-metadata ]; then
  echo '{"SchemaVersion":"0.1.0","Vendor":"immich-firstboot tests","Version":"1.29.2","ShortDescription":"docker-compose 1.29 via shim"}'
  exit 0
fi
shift
exec docker-compose "$@"
SHIM
  chmod 755 "$PLUGIN"
  docker compose version >/dev/null
fi
