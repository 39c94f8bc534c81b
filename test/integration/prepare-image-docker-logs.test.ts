// prepare-image merges Docker's log rotation into the image's daemon.json (the docker-logs step's own
// merge), without the restart-pending marker, so the image's first boot finds nothing to change and
// leaves Docker running. The tree is never booted here: prepare-image on a freshly installed image, as
// an image builder runs it, then the first boot's steps with --skip-stack (which records a pending
// restart instead of restarting).
import { existsSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BUNDLE, FIXTURE_BIN, pathWith, runCli } from '../support/cli.js';
import { makeRoot, readFile, snapshotTree, writeFile } from '../support/root.js';

const DAEMON = '/etc/docker/daemon.json';
const PENDING = '/var/lib/immich-firstboot/docker-restart-pending';
// Docker not installed: prepare-image skips Docker (nothing to remove), and an operator's daemon.json
// is merged without `dockerd --validate` (a note says so).
const NO_DOCKER = { PATH: `/nonexistent:${path.dirname(process.execPath)}` };

beforeAll(() => {
  if (!existsSync(BUNDLE)) throw new Error('run `npm run build` first (npm test does)');
});

/** The docker-logs step's summary line in a run's log. */
const summary = (lines: Array<{ step?: string; msg: string }>): string | undefined =>
  lines.find((l) => l.step === 'docker-logs' && 'changed' in l)?.msg;

describe('prepare-image and Docker log rotation', () => {
  it('merges rotation into a fresh image with no restart marker, and the first boot then finds nothing to change', async () => {
    const root = makeRoot();
    const prepared = await runCli(['--root', root, 'prepare-image'], NO_DOCKER);
    expect(prepared.code, prepared.stderr).toBe(0);
    expect(prepared.stdout).toContain(
      "/etc/docker/daemon.json rotates container logs (max-size 50m, max-file 5); Docker picks it up at its next start, the VM's first boot",
    );
    expect(JSON.parse(readFile(root, DAEMON))).toEqual({
      'log-driver': 'json-file',
      'log-opts': { 'max-size': '50m', 'max-file': '5' },
    });
    expect(existsSync(path.join(root, PENDING))).toBe(false);

    const boot = await runCli(['--root', root, 'run', '--skip-stack'], NO_DOCKER);
    expect(boot.code, boot.stderr).toBe(0);
    expect(summary(boot.lines)).toBe('/etc/docker/daemon.json already rotates logs; kept');
    expect(boot.lines.find((l) => l.step === 'docker-logs' && 'changed' in l)?.changed).toBe(false);
    // No restart is owed: the next plain run would not restart Docker either.
    expect(existsSync(path.join(root, PENDING))).toBe(false);
  });

  it('on an image that was not prepared, the first boot still merges and owes Docker a restart', async () => {
    const root = makeRoot();
    const boot = await runCli(['--root', root, 'run', '--skip-stack'], NO_DOCKER);
    expect(boot.code, boot.stderr).toBe(0);
    expect(summary(boot.lines)).toBe('/etc/docker/daemon.json now rotates container logs (max-size 50m, max-file 5)');
    expect(existsSync(path.join(root, PENDING))).toBe(true);
  });

  it("keeps the operator's keys and values, as the first boot does", async () => {
    const root = makeRoot();
    writeFile(root, DAEMON, JSON.stringify({ 'data-root': '/srv/docker', 'log-opts': { 'max-size': '10m' } }));
    const prepared = await runCli(['--root', root, 'prepare-image'], NO_DOCKER);
    expect(prepared.code, prepared.stderr).toBe(0);
    expect(JSON.parse(readFile(root, DAEMON))).toEqual({
      'data-root': '/srv/docker',
      'log-driver': 'json-file',
      'log-opts': { 'max-size': '10m', 'max-file': '5' },
    });
    expect(prepared.stdout).toContain(
      'this dockerd cannot validate a configuration (Docker < 23); merged without validating',
    );
    expect(existsSync(path.join(root, PENDING))).toBe(false);
  });

  it('leaves another log driver alone and says so', async () => {
    const root = makeRoot();
    writeFile(root, DAEMON, '{"log-driver": "journald"}\n');
    const prepared = await runCli(['--root', root, 'prepare-image'], NO_DOCKER);
    expect(prepared.code, prepared.stderr).toBe(0);
    expect(prepared.stdout).toContain(
      'WARNING: /etc/docker/daemon.json sets log-driver "journald"; kept it and added no rotation options; make sure that driver rotates or limits container logs',
    );
    expect(readFile(root, DAEMON)).toBe('{"log-driver": "journald"}\n');
  });

  it.each([
    ['is not valid JSON', '{"data-root": "/srv/docker",', '/etc/docker/daemon.json is not valid JSON; left untouched'],
    ['is not an object', '[]', '/etc/docker/daemon.json must hold a JSON object ({...}); left untouched'],
    [
      'has log-opts that are not an object',
      '{"log-opts": "50m"}',
      '/etc/docker/daemon.json: "log-opts" must be an object',
    ],
  ])('refuses a daemon.json that %s, like the first boot, before removing anything', async (_what, text, message) => {
    const root = makeRoot();
    // A test boot's files, which prepare-image would remove.
    const booted = await runCli(['--root', root, 'run', '--skip-stack'], NO_DOCKER);
    expect(booted.code, booted.stderr).toBe(0);
    writeFile(root, DAEMON, text);
    const before = snapshotTree(root);
    const prepared = await runCli(['--root', root, 'prepare-image'], NO_DOCKER);
    expect(prepared.code).toBe(1);
    expect(prepared.stderr).toContain(message);
    expect(prepared.stderr).toContain('then run `immich-firstboot prepare-image` again');
    expect(snapshotTree(root)).toEqual(before);
  });

  it("in an image builder's chroot with Docker 26's CLI and no daemon (`docker info` exits 0, no version), skips Docker and merges", async () => {
    // Found by the e2e on Debian 13: Docker 20.10's `docker info` exits 1 there, 26's exits 0 with an empty version.
    const root = makeRoot();
    const prepared = await runCli(['--root', root, 'prepare-image', '--host-docker'], {
      PATH: pathWith(FIXTURE_BIN),
      STANDIN_NOT_RUNNING: '26',
    });
    expect(prepared.code, prepared.stderr).toBe(0);
    expect(prepared.stdout).toContain(
      'skipped Docker: Docker is not answering (`docker info`: Cannot connect to the Docker daemon',
    );
    expect(JSON.parse(readFile(root, DAEMON))).toMatchObject({ 'log-driver': 'json-file' });
  });
});
