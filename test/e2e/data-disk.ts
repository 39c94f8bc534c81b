// The same image deployed a third time, with `dataDisk: { lun: 0 }` in its custom data and a blank disk
// attached at LUN 0: a loop device (losetup -P -f --show over a sparse file, detached in the end) passed
// into the nspawn machine. Its first boot puts the library and Postgres on the disk; a boot with the disk
// detached comes up (nofail) and warns, and nothing is written to the OS disk under /srv/immich; a boot
// with it attached again has Immich back. suite.ts makes the copy (before any boot) and calls this.
//
// How a disk is attached to a container here, as Azure and udev would on a VM:
// - the disk's node is bind-mounted into the machine's /dev (`--bind=/dev/loopN`). No DeviceAllow= is
//   needed: with --register=no --keep-unit nspawn makes no scope for the machine, so no device cgroup
//   limits it (its processes stay in the host's root devices cgroup); inside, the machine's own systemd
//   applies each unit's DevicePolicy=/DeviceAllow= as on a VM;
// - at the first boot the partition does not exist yet: the step makes it, has the kernel add it (partx:
//   this host's kernel reads no partition table itself) and makes its node with mknod beside the disk's,
//   as udev would; at later boots the host's node of the partition is bound in too (`--bind=/dev/loopNp1`);
// - /dev/disk/azure/scsi1/lun0 is made as WALinuxAgent's udev rule would, by a tmpfiles.d line (systemd-
//   tmpfiles-setup-dev runs before anything else);
// - nspawn's /sys is read-only, and systemd-fstab-generator then ignores every fstab line naming a device
//   ("Running in a container, ignoring fstab device entry"): there is no srv-immich.mount in a container.
//   A test-only unit does what that mount unit does on a VM, with fstab's own line (`mount /srv/immich`:
//   UUID=, ext4, the options), before local-fs.target and Docker, failing alone when the disk is missing
//   (nofail). What systemd makes of the line on a VM is asserted separately: the release's own generator,
//   run on the machine's fstab (the last test).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO } from '../support/cli.js';
import { Machine } from './machine.js';

const UNIT = 'immich-firstboot.service';
const PERBOOT = 'immich-firstboot-perboot.service';
const DATA_DISK = 'immich-firstboot-data-disk.service';
const OPTIONS = 'defaults,nofail,x-systemd.device-timeout=10s,x-systemd.before=docker.service';
const TMPFILES = '/etc/tmpfiles.d/ifb-e2e-azure-lun0.conf';
const MOUNT_UNIT = 'ifb-e2e-srv-immich-mount.service';
const UPLOAD = '/srv/immich/library/ifb-e2e-upload.jpg';

const userData = [
  '#cloud-config',
  'write_files:',
  '  - path: /etc/immich-firstboot/config.yaml',
  "    permissions: '0644'",
  '    content: |',
  "      # written by cloud-init from the deployment's user data: photos on the data disk at LUN 0",
  '      imds:',
  '        enabled: false',
  '      dataDisk: { lun: 0 }',
  '',
].join('\n');

const host = (file: string, args: string[]): string => {
  const run = spawnSync(file, args, { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`${file} ${args.join(' ')} exited ${run.status}: ${run.stderr}`);
  return run.stdout.trim();
};

export interface DataDiskDeployment {
  machine: Machine;
  /** Copies the image, never booted (from the install test, beside the Let's Encrypt copy). */
  copyFrom(image: Machine): void;
  /**
   * Powers the machine off, lifts the guard on its /srv/immich (so its tree can be removed), detaches the
   * loop device and removes its file: in afterAll, before the machines' cleanup.
   */
  release(): void;
  /** The tests; `others` are powered off first (one machine at a time). */
  describe(options: {
    others: Machine[];
    /** suite.ts's stand-in necessities for a machine about to boot: digests dropped, the NoCloud seed. */
    prepare: (m: Machine) => void;
    writeSeed: (m: Machine, instanceId: string, hostname: string, data: string) => void;
  }): void;
}

export function dataDiskDeployment(release: string, work: string): DataDiskDeployment {
  const machine = new Machine(path.join(work, `machine-${release}-disk-${process.pid}`));
  const image = path.join(work, `disk-${release}-${process.pid}.img`);
  let loop = '';
  const name = (): string => path.basename(loop);

  /** The Azure link as udev makes it, at every boot the disk is attached; none when it is detached. */
  const attachLink = (attached: boolean): void => {
    if (attached) writeFileSync(machine.host(TMPFILES), `L /dev/disk/azure/scsi1/lun0 - - - - ../../../${name()}\n`);
    else rmSync(machine.host(TMPFILES), { force: true });
  };
  const boot = (binds: string[]): void =>
    void machine.script(
      'boot',
      binds.map((b) => `--bind=${b}`),
      { env: { IFB_BOOT_TIMEOUT: '150' } },
    );
  const unitState = (unit: string): string[] => {
    const props = machine.out('systemctl', 'show', unit, '-p', 'ActiveState,SubState,Result');
    return ['ActiveState', 'SubState', 'Result'].map((p) => new RegExp(`^${p}=(.*)$`, 'm').exec(props)?.[1] ?? '');
  };
  const journal = (unit: string): string =>
    machine.exec('journalctl', '-b', '0', '-u', unit, '--no-pager', '-o', 'cat').stdout;
  /** What is mounted on /srv/immich inside the machine ('' when nothing), and what holds a path. */
  const source = (target: string, file = false): string =>
    machine.exec('findmnt', '-n', '-o', 'SOURCE', ...(file ? ['-T', target] : ['--mountpoint', target])).stdout.trim();
  /** The OS disk's /srv/immich: the machine's tree seen from the host, under whatever the machine mounts. */
  const underneath = (): string[] => readdirSync(machine.host('/srv/immich'));
  const secret = (): string =>
    /^DB_PASSWORD=(.*)$/m.exec(readFileSync(machine.host('/opt/immich/.env'), 'utf8'))?.[1] ?? '';
  const pong = (): string =>
    machine
      .exec(
        'sh',
        '-c',
        'for i in $(seq 120); do curl -sfk --max-time 2 https://127.0.0.1/api/server/ping && exit 0; sleep 0.5; done; exit 1',
      )
      .stdout.trim();
  /** A container's state and Docker's last error starting it. */
  const state = (container: string): string =>
    machine.out('docker', 'inspect', '-f', '{{.State.Status}} {{.State.Error}}', container).trim();

  return {
    machine,
    copyFrom(from) {
      host('cp', ['-a', '--reflink=auto', from.dir, machine.dir]);
    },
    release() {
      machine.raw(path.join(REPO, 'test/env/nspawn-machine.sh'), ['poweroff', machine.dir], {});
      if (existsSync(machine.host('/srv/immich'))) host('chattr', ['-i', machine.host('/srv/immich')]);
      if (loop) host('losetup', ['-d', loop]);
      loop = '';
      rmSync(image, { force: true });
    },
    describe({ others, prepare, writeSeed }) {
      describe(`the same image deployed with dataDisk: { lun: 0 } in its custom data and a blank disk at LUN 0, on Debian ${release}`, () => {
        it('boots its first time with no disk at LUN 0 yet: the data-disk unit fails, the first-boot unit is never started, nothing is written, and status, the MOTD and the journal say what failed and what to do', () => {
          for (const m of others) m.script('poweroff');
          expect(existsSync(machine.host('/var/lib/immich-firstboot/done'))).toBe(false);
          writeFileSync(
            machine.host(`/etc/systemd/system/${MOUNT_UNIT}`),
            [
              '[Unit]',
              'Description=e2e only: what srv-immich.mount does on a VM (nspawn: no fstab device mounts)',
              'DefaultDependencies=no',
              'After=local-fs-pre.target systemd-tmpfiles-setup-dev.service',
              'Before=local-fs.target docker.service',
              'ConditionPathIsMountPoint=!/srv/immich',
              '[Service]',
              'Type=oneshot',
              'RemainAfterExit=yes',
              // "-": the line's nofail. Before first boot there is no line yet: nothing to mount.
              'ExecStart=-/bin/mount /srv/immich',
              '[Install]',
              'WantedBy=local-fs.target',
              '',
            ].join('\n'),
          );
          mkdirSync(machine.host('/etc/systemd/system/local-fs.target.wants'), { recursive: true });
          symlinkSync(
            `/etc/systemd/system/${MOUNT_UNIT}`,
            machine.host(`/etc/systemd/system/local-fs.target.wants/${MOUNT_UNIT}`),
          );
          prepare(machine);
          writeSeed(machine, `ifb-e2e-${release}-disk-${process.pid}`, `immich-${release}-disk`, userData);

          attachLink(false);
          boot([]);
          expect(unitState(DATA_DISK), journal(DATA_DISK)).toEqual(['failed', 'failed', 'exit-code']);
          // Requires= + After=: the first-boot unit's start job failed as a dependency; it never ran.
          expect(unitState(UNIT), journal(UNIT)).toEqual(['inactive', 'dead', 'success']);
          expect(journal(UNIT)).toMatch(/Dependency failed for .*Immich first boot/);
          expect(journal(UNIT)).not.toContain('"msg":"first boot starting"');
          expect(journal(DATA_DISK)).toContain('"code":"data-disk-not-found"');
          // Nothing on the OS disk where the data disk should be (not even the mount point), no .env, no stack.
          expect(existsSync(machine.host('/opt/immich/.env'))).toBe(false);
          expect(existsSync(machine.host('/srv/immich'))).toBe(false);
          const report = JSON.parse(machine.exec('immich-firstboot', 'status', '--json').stdout) as {
            status: string;
            step: string;
            errors: { code: string; message: string; hint: string }[];
          };
          expect(report).toMatchObject({ status: 'error', step: 'data-disk' });
          expect(report.errors.at(-1)).toMatchObject({
            code: 'data-disk-not-found',
            message: expect.stringContaining('no disk is attached at LUN 0'),
            hint: expect.stringContaining('attach a disk at LUN 0'),
          });
          const motd = machine.out('immich-firstboot', 'motd');
          expect(motd).toContain('First boot: FAILED at data-disk: no disk is attached at LUN 0');
          expect(motd).toContain('hint: attach a disk at LUN 0');
          expect(machine.exec('immich-firstboot', 'doctor').stdout).toMatch(
            new RegExp(`^fail: unit-state — ${DATA_DISK.replace(/\./g, '\\.')} failed/failed, result exit-code`, 'm'),
          );
        }, 240_000);

        it('boots with the disk passed in, resumes, and ends done with the library and Postgres on it', () => {
          machine.script('poweroff');
          // A blank 2 GiB disk (sparse: zeros), attached with partition scanning on.
          writeFileSync(image, '');
          host('truncate', ['-s', '2G', image]);
          loop = host('losetup', ['-P', '-f', '--show', image]);
          attachLink(true);
          boot([loop]);
          // On failure: what systemd itself did around the mount (it may unmount what it cannot place).
          const around = (): string =>
            `${journal(DATA_DISK)}\n--- findmnt:\n${machine.exec('findmnt', '/srv/immich').stdout}\n--- this boot, systemd:\n${machine
              .exec('journalctl', '-b', '0', '_PID=1', '--no-pager', '-o', 'short-monotonic')
              .stdout.split('\n')
              .filter((l) => /srv-immich|srv\/immich|loop\dp|[Uu]nmount/.test(l))
              .slice(-60)
              .join('\n')}`;
          expect(unitState(DATA_DISK), around()).toEqual(['active', 'exited', 'success']);
          expect(unitState(UNIT), journal(UNIT)).toEqual(['active', 'exited', 'success']);
          const run = machine.exec('immich-firstboot', 'status', '--json');
          expect(run.code, run.stdout + run.stderr).toBe(0);
          expect(JSON.parse(run.stdout), journal(UNIT)).toMatchObject({ status: 'done', warnings: [] });
          // The disk was made and mounted by the data-disk unit, on the host: not in the first-boot unit's sandbox.
          expect(journal(DATA_DISK)).toMatch(
            new RegExp(
              `"step":"data-disk".*"msg":"/dev/disk/azure/scsi1/lun0 \\(/dev/${name()}, ext4 UUID [0-9a-f-]{36}, formatted by this VM\\) mounted on /srv/immich`,
            ),
          );
        }, 240_000);

        it('has the library and Postgres on the disk’s partition, mounted by UUID in fstab with nofail, and nothing on the OS disk', () => {
          const part = `/dev/${name()}p1`;
          expect(source('/srv/immich')).toBe(part);
          const uuid = host('blkid', ['-p', '-s', 'UUID', '-o', 'value', part]);
          expect(host('blkid', ['-p', '-s', 'LABEL', '-o', 'value', part])).toBe('immich-data');
          expect(readFileSync(machine.host('/etc/fstab'), 'utf8')).toMatch(
            new RegExp(`\\n# immich-firstboot: .*\\nUUID=${uuid} /srv/immich ext4 ${OPTIONS} 0 2\\n$`),
          );
          const env = readFileSync(machine.host('/opt/immich/.env'), 'utf8');
          expect(env).toMatch(/^UPLOAD_LOCATION=\/srv\/immich\/library$/m);
          expect(env).toMatch(/^DB_DATA_LOCATION=\/srv\/immich\/postgres$/m);
          // Postgres (the stand-in) initialised its data on the disk, with the secret in .env.
          // The image's stand-in Postgres waits 5 s before its initdb (STANDIN_INITDB_DELAY): wait for it, up to 20 s.
          const pgVersion = machine.exec(
            'sh',
            '-c',
            'for i in $(seq 200); do cat /srv/immich/postgres/PG_VERSION 2>/dev/null && exit 0; sleep 0.1; done; exit 1',
          );
          expect(
            pgVersion.stdout.trim(),
            [
              machine.exec(
                'docker',
                'inspect',
                '-f',
                '{{json .Mounts}} {{.State.Status}} {{.State.Error}} {{.Created}}',
                'immich_postgres',
              ).stdout,
              machine.exec('ls', '-la', '/srv/immich', '/srv/immich/postgres').stdout,
              machine.exec('docker', 'logs', 'immich_postgres').stdout,
              `underneath: ${underneath().join(' ')}`,
              machine.exec('journalctl', '-b', '0', '-u', UNIT, '--no-pager', '-o', 'cat').stdout,
            ].join('\n'),
          ).toBe('14');
          expect(source('/srv/immich/postgres/PG_VERSION', true)).toBe(part);
          expect(machine.out('cat', '/srv/immich/postgres/standin-postgres-password').trim()).toBe(secret());
          // An upload as the server writes it (its /data is UPLOAD_LOCATION) lands on the disk.
          machine.out('docker', 'exec', 'immich_server', 'sh', '-c', 'echo e2e-photo > /data/ifb-e2e-upload.jpg');
          expect(machine.out('cat', UPLOAD).trim()).toBe('e2e-photo');
          expect(source(UPLOAD, true)).toBe(part);
          expect(machine.out('stat', '-c', '%a %U', '/srv/immich/library', '/srv/immich/postgres')).toMatch(
            /^750 root\n700 \S+\n$/,
          );
          // The first-boot unit's sandbox, made after the disk was mounted, saw it: its copy of .env is on the disk.
          expect(machine.out('cat', '/srv/immich/.immich-firstboot/env')).toMatch(
            new RegExp(`^DB_PASSWORD=${secret()}$`, 'm'),
          );
          expect(source('/srv/immich/.immich-firstboot/env', true)).toBe(part);
          // The OS disk's /srv/immich, under the mount: empty and immutable (the guard).
          expect(underneath()).toEqual([]);
          expect(host('lsattr', ['-d', machine.host('/srv/immich')])).toMatch(/^\S*i\S* /);
          expect(pong()).toBe('{"res":"pong"}');
        });

        it('boots with the disk detached (nofail): status and the MOTD warn, nothing is written under /srv/immich on the OS disk, the server and Postgres do not start there', () => {
          machine.script('poweroff');
          attachLink(false);
          boot([]);
          expect(source('/srv/immich')).toBe('');
          expect(unitState(PERBOOT)).toEqual(['active', 'exited', 'success']);
          expect(journal(PERBOOT)).toContain(
            '"msg":"the data disk at LUN 0 is not mounted on /srv/immich at this boot (missing, or it did not mount)',
          );
          const report = JSON.parse(machine.out('immich-firstboot', 'status', '--json')) as {
            warnings: { step: string; message: string; hint: string }[];
          };
          expect(report.warnings).toEqual([
            expect.objectContaining({
              step: 'per-boot-data-disk',
              message: expect.stringContaining('the data disk at LUN 0 is not mounted on /srv/immich'),
              hint: expect.stringContaining(
                'then `mount /srv/immich` and `cd /opt/immich && docker compose -p immich up -d` (or reboot)',
              ),
            }),
          ]);
          const motd = machine.out('immich-firstboot', 'motd');
          expect(motd).toContain('WARNING: the data disk at LUN 0 is not mounted on /srv/immich at this boot');
          expect(motd).toContain('what to do: reattach the data disk at LUN 0');
          // Docker tried (restart: always) and could not make the bind sources in the immutable directory.
          for (const container of ['immich_server', 'immich_postgres'])
            expect(state(container), container).toMatch(
              /^(created|exited) .*\/srv\/immich\/(library|postgres).*operation not permitted/,
            );
          expect(underneath()).toEqual([]);
          expect(machine.exec('immich-firstboot', 'doctor').stdout).toMatch(
            /^fail: data-disk — dataDisk is configured but nothing is mounted on \/srv\/immich/m,
          );
        }, 240_000);

        it('boots with the disk attached again: mounted, Immich answers pong through nginx with its data and secret, the warning gone', () => {
          const before = secret();
          machine.script('poweroff');
          attachLink(true);
          boot([loop, `${loop}p1`]);
          expect(source('/srv/immich')).toBe(`/dev/${name()}p1`);
          expect(pong()).toBe('{"res":"pong"}');
          for (const container of ['immich_server', 'immich_postgres'])
            expect(state(container), container).toBe('running');
          expect(machine.out('cat', UPLOAD).trim()).toBe('e2e-photo');
          expect(secret()).toBe(before);
          expect(machine.out('cat', '/srv/immich/postgres/standin-postgres-password').trim()).toBe(before);
          expect(journal(PERBOOT)).toContain(
            '"msg":"the data disk is mounted on /srv/immich again; its warning is cleared"',
          );
          expect(JSON.parse(machine.out('immich-firstboot', 'status', '--json'))).toMatchObject({
            status: 'done',
            warnings: [],
          });
          expect(machine.out('immich-firstboot', 'motd')).not.toContain('WARNING');
          expect(underneath()).toEqual([]);
        }, 240_000);

        it("on a VM, the release's own systemd-fstab-generator makes of fstab's line a mount wanted (not required) by local-fs.target, before Docker, with a 10 s device timeout", () => {
          machine.script('poweroff');
          // In a plain chroot (not nspawn: no /sys mounted read-only) the generator treats the line as on a VM.
          const out = '/var/tmp/ifb-e2e-fstab-generator';
          const generator = host('chroot', [
            machine.dir,
            'sh',
            '-c',
            'ls /lib/systemd/system-generators/systemd-fstab-generator',
          ]);
          rmSync(machine.host(out), { recursive: true, force: true });
          mkdirSync(machine.host(out));
          const run = spawnSync('chroot', [machine.dir, generator, out, out, out], {
            encoding: 'utf8',
            env: { PATH: process.env.PATH, SYSTEMD_LOG_LEVEL: 'debug' },
          });
          expect(run.status, run.stderr).toBe(0);
          const unit = readFileSync(machine.host(`${out}/srv-immich.mount`), 'utf8');
          expect(unit).toMatch(/^What=\/dev\/disk\/by-uuid\/[0-9a-f-]{36}$/m);
          expect(unit).toMatch(/^Where=\/srv\/immich$/m);
          expect(unit).toMatch(/^Before=.*docker\.service/m);
          expect(unit).not.toMatch(/^Before=.*local-fs\.target/m);
          expect(existsSync(machine.host(`${out}/local-fs.target.wants/srv-immich.mount`))).toBe(true);
          expect(existsSync(machine.host(`${out}/local-fs.target.requires/srv-immich.mount`))).toBe(false);
          const device = readdirSync(machine.host(out)).find((f) => f.startsWith('dev-disk-by\\x2duuid-'));
          expect(device, readdirSync(machine.host(out)).join(' ')).toBeDefined();
          expect(
            readdirSync(machine.host(`${out}/${device}`))
              .map((f) => readFileSync(machine.host(`${out}/${device}/${f}`), 'utf8'))
              .join(''),
          ).toMatch(/^JobRunningTimeoutSec=10s?$/m);
        });
      });
    },
  };
}
