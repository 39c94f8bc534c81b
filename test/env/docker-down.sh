#!/usr/bin/env bash
# Remove the test compose projects' containers/networks/volumes, the stand-in images, and stop the dockerd that docker-up.sh started.
set -euo pipefail

STATE="${IFB_CI_STATE:-/tmp/immich-firstboot-ci}"
PIDFILE="$STATE/dockerd.pid"

# Resources of our test projects only (compose project label immich* / ifbtest*); nothing else.
if docker info >/dev/null 2>&1; then
  ours() { grep -E '^(immich|ifbtest)' | cut -f2 || true; }
  containers=$(docker ps -a --format '{{.Label "com.docker.compose.project"}}	{{.ID}}' | ours)
  [ -z "$containers" ] || docker rm -f -v $containers >/dev/null
  networks=$(docker network ls --format '{{.Label "com.docker.compose.project"}}	{{.ID}}' | ours)
  [ -z "$networks" ] || docker network rm $networks >/dev/null
  volumes=$(docker volume ls --format '{{.Label "com.docker.compose.project"}}	{{.Name}}' | ours)
  [ -z "$volumes" ] || docker volume rm -f $volumes >/dev/null
  # The stand-in images (test/fixtures/standin-images/build.sh labels every one it makes).
  images=$(docker images -a -q --filter label=org.immich-firstboot.standin-hash | sort -u)
  [ -z "$images" ] || docker rmi -f $images >/dev/null
fi

# Stop only the dockerd we started (by pidfile), and wait for it (and its containerd) to exit.
if [ -f "$PIDFILE" ]; then
  pid=$(cat "$PIDFILE")
  if kill -0 "$pid" 2>/dev/null && grep -q dockerd "/proc/$pid/comm"; then
    kill -TERM "$pid"
    for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$pid" 2>/dev/null; then echo "docker-down: dockerd $pid still running after 30 s" >&2; exit 1; fi
  fi
  rm -f "$PIDFILE"
fi
