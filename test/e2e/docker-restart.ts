// Issue 20: no Docker restart at the first boot of a prepared image. What the e2e's image builder runs
// after installing the package (prepare-image, in the chroot), and what a booted machine says about
// dockerd across our unit's run: systemd's own clock and journal, nothing of ours.
import { readFileSync } from 'node:fs';
import { expect } from 'vitest';
import type { Machine } from './machine.js';

const DAEMON_JSON = '/etc/docker/daemon.json';
const PENDING = '/var/lib/immich-firstboot/docker-restart-pending';

/** `immich-firstboot prepare-image` in the image's chroot (no systemd, no Docker running), as a builder runs it. */
export function prepareImageInChroot(m: Machine): string {
  const run = m.script('chroot', ['immich-firstboot', 'prepare-image']);
  expect(run.stdout).toContain(
    `${DAEMON_JSON} rotates container logs (max-size 50m, max-file 5); Docker picks it up at its next start, the VM's first boot`,
  );
  expect(JSON.parse(readFileSync(m.host(DAEMON_JSON), 'utf8'))).toMatchObject({
    'log-driver': 'json-file',
    'log-opts': { 'max-size': '50m', 'max-file': '5' },
  });
  expect(m.script('chroot', ['sh', '-c', `test ! -e ${PENDING} && echo no marker`]).stdout.trim()).toBe('no marker');
  return run.stdout;
}

export interface DockerAcrossUnit {
  /** When docker.service's running dockerd was started, and when our unit's process started and exited (µs, monotonic). */
  dockerdStarted: number;
  unitStarted: number;
  unitExited: number;
  mainPid: number;
  execMainPid: number;
  nRestarts: number;
  /** systemd's job lines for docker.service in this boot ("Starting…", "Started…", "Stopping…", "Stopped…"). */
  jobs: string[];
}

/** dockerd as systemd saw it through this boot, against `unit`'s run. */
export function dockerAcross(m: Machine, unit: string): DockerAcrossUnit {
  const show = (u: string, props: string): Record<string, number> =>
    Object.fromEntries(
      m
        .out('systemctl', 'show', u, '-p', props)
        .trim()
        .split('\n')
        .map((l) => l.split('=', 2))
        .map(([k, v]) => [k, Number(v)]),
    );
  const docker = show('docker.service', 'ExecMainStartTimestampMonotonic,MainPID,ExecMainPID,NRestarts');
  const ours = show(unit, 'ExecMainStartTimestampMonotonic,ExecMainExitTimestampMonotonic');
  const jobs = m
    .out('journalctl', '-b', '0', '-u', 'docker.service', '_PID=1', '--no-pager', '-o', 'cat')
    .split('\n')
    .filter((l) => /^(Starting|Started|Stopping|Stopped) /.test(l));
  return {
    dockerdStarted: docker.ExecMainStartTimestampMonotonic,
    unitStarted: ours.ExecMainStartTimestampMonotonic,
    unitExited: ours.ExecMainExitTimestampMonotonic,
    mainPid: docker.MainPID,
    execMainPid: docker.ExecMainPID,
    nRestarts: docker.NRestarts,
    jobs,
  };
}
