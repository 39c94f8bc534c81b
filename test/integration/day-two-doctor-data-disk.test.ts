// doctor's data checks on real block devices: loop devices (losetup -f, detached after each test) with
// real ext4, mounted into temp roots as the first boot leaves a VM (the disk on /srv/immich by UUID, the
// empty mount point underneath immutable), each check made to fail by what an operator could do, and
// passing when it is put right. data-disk, data-space, data-on-resource-disk.
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BUNDLE, runCli } from '../support/cli.js';

beforeAll(() => {
  if (!existsSync(BUNDLE)) throw new Error('run `npm run build` first (npm test does)');
});

interface Check {
  id: string;
  result: string;
  detail: string;
  fix?: string;
}

const OPTIONS = 'defaults,nofail,x-systemd.device-timeout=10s,x-systemd.before=docker.service';
const sh = (file: string, ...args: string[]): string => execFileSync(file, args, { encoding: 'utf8' }).trim();

/** What each test made, undone in reverse after it: mounts, the guard, loop devices, roots, image files. */
const undo: (() => void)[] = [];
afterEach(() => {
  const errors: unknown[] = [];
  while (undo.length)
    try {
      undo.pop()!();
    } catch (error) {
      errors.push(error);
    }
  if (errors.length) throw new Error(`cleanup failed: ${errors.map(String).join('; ')}`);
});

/** A sparse file attached with `losetup -f --show` (never a fixed /dev/loopN), with ext4 on it. */
function loopDisk(mib: number, label = 'immich-data'): { dev: string; uuid: string; major: number; minor: number } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ifb-loop-'));
  undo.push(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'disk.img');
  writeFileSync(file, '');
  execFileSync('truncate', ['-s', `${mib}M`, file]);
  const dev = sh('losetup', '-f', '--show', file);
  undo.push(() => execFileSync('losetup', ['-d', dev]));
  // -m 0: no blocks reserved for root, so df's percentage is the test's to set.
  execFileSync('mkfs.ext4', ['-q', '-m', '0', '-L', label, dev]);
  const uuid = sh('blkid', '-p', '-s', 'UUID', '-o', 'value', dev);
  const [major, minor] = sh('stat', '-c', '%t %T', dev)
    .split(' ')
    .map((h) => parseInt(h, 16));
  return { dev, uuid, major, minor };
}

/** Mounts `dev` on `at`; the function returned unmounts it now (else the cleanup does). */
function mount(dev: string, at: string): () => void {
  mkdirSync(at, { recursive: true });
  execFileSync('mount', [dev, at]);
  let mounted = true;
  const umount = (): void => {
    if (mounted) execFileSync('umount', [at]);
    mounted = false;
  };
  undo.push(umount);
  return umount;
}

function write(root: string, inside: string, text: string): void {
  mkdirSync(path.dirname(path.join(root, inside)), { recursive: true });
  writeFileSync(path.join(root, inside), text);
}

/** A temp root as a first boot leaves it (the done-stamp, config.yaml), removed after the test. */
function bootedRoot(config: string): string {
  const root = mkdtempSync(path.join(os.tmpdir(), 'ifb-root-'));
  undo.push(() => rmSync(root, { recursive: true, force: true }));
  write(root, '/etc/immich-firstboot/config.yaml', `imds:\n  enabled: false\n${config}`);
  write(
    root,
    '/var/lib/immich-firstboot/done',
    JSON.stringify({
      instanceId: 'x',
      instanceIdSource: 'machine-id',
      completedAt: '2026-01-01T00:00:00Z',
      version: '0.1.0',
    }),
  );
  return root;
}

/**
 * A root with the data disk set up as the data-disk step leaves it: the empty /srv/immich made immutable
 * (unless `guard` is false), fstab's line, the disk mounted on it with library/ and postgres/.
 */
function withDataDisk(options: { guard?: boolean; fstab?: (uuid: string) => string } = {}) {
  const root = bootedRoot('dataDisk: { lun: 0 }\n');
  const disk = loopDisk(64);
  const mountPoint = path.join(root, 'srv/immich');
  mkdirSync(mountPoint, { recursive: true });
  if (options.guard !== false) {
    execFileSync('chattr', ['+i', mountPoint]);
    undo.push(() => execFileSync('chattr', ['-i', mountPoint]));
  }
  write(
    root,
    '/etc/fstab',
    `# UNCONFIGURED FSTAB FOR BASE SYSTEM\n${options.fstab?.(disk.uuid) ?? `UUID=${disk.uuid} /srv/immich ext4 ${OPTIONS} 0 2`}\n`,
  );
  const umount = mount(disk.dev, mountPoint);
  mkdirSync(path.join(mountPoint, 'library'), { mode: 0o750 });
  mkdirSync(path.join(mountPoint, 'postgres'), { mode: 0o700 });
  return { root, disk, mountPoint, umount };
}

async function doctor(root: string): Promise<{ code: number; checks: Record<string, Check> }> {
  const result = await runCli(['--root', root, 'doctor', '--json']);
  const checks = Object.fromEntries((JSON.parse(result.stdout) as Check[]).map((c) => [c.id, c]));
  return { code: result.code, checks };
}

/** Fills the filesystem holding `dir` until df says `percent` % used (or 1 more). */
function fillTo(dir: string, percent: number): void {
  const pcent = (): number => Number(sh('df', '--output=pcent', dir).split('\n')[1].trim().replace('%', ''));
  const size = Number(sh('df', '--block-size=1', '--output=size', dir).split('\n')[1].trim());
  // Most of it at once, then the last few percent in small steps (ext4's metadata takes its share too).
  const [used] = sh('df', '--block-size=1', '--output=used', dir).split('\n').slice(1).map(Number);
  const bulk = Math.floor((size * (percent - 3)) / 100) - used;
  if (bulk > 0) execFileSync('fallocate', ['-l', String(bulk), path.join(dir, 'fill-bulk')]);
  for (let i = 0; pcent() < percent; i++)
    execFileSync('fallocate', ['-l', String(Math.floor(size / 200)), path.join(dir, `fill-${i}`)]);
  expect(pcent()).toBeLessThanOrEqual(percent + 1);
}

describe('doctor data-disk', () => {
  it('passes a data disk mounted on /srv/immich by UUID with nofail, its empty mount point underneath immutable', async () => {
    const { root, disk } = withDataDisk();
    const { checks } = await doctor(root);
    expect(checks['data-disk']).toEqual({
      id: 'data-disk',
      result: 'pass',
      detail: `${disk.dev} (UUID ${disk.uuid}) is mounted on /srv/immich, by UUID in /etc/fstab with nofail; the empty mount point underneath is immutable`,
    });
    // doctor's look underneath happened in a mount namespace of its own: nothing is left mounted.
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain('ifb-guard-');
  });

  it('passes, saying there is none, with dataDisk none', async () => {
    const { checks } = await doctor(bootedRoot(''));
    expect(checks['data-disk']).toMatchObject({
      result: 'pass',
      detail: 'no data disk configured (dataDisk: none): the library and Postgres are under /opt/immich',
    });
  });

  it('fails when the configured disk is not mounted (missing at boot), and says how to bring it back', async () => {
    const { root, umount } = withDataDisk();
    umount();
    const { code, checks } = await doctor(root);
    expect(code).toBe(1);
    expect(checks['data-disk'].result).toBe('fail');
    expect(checks['data-disk'].detail).toContain(
      'dataDisk is configured but nothing is mounted on /srv/immich: the data disk at LUN 0 is missing or did not mount',
    );
    expect(checks['data-disk'].fix).toContain('reattach the data disk at LUN 0');
    expect(checks['data-disk'].fix).toContain(
      'mount /srv/immich, then `cd /opt/immich && docker compose -p immich up -d` (or reboot)',
    );
    // The mount point underneath is still guarded: that part passes.
    expect(checks['data-disk'].detail).not.toContain('not immutable');
  });

  it.each([
    [
      'fstab names the partition by device name',
      (uuid: string) => `/dev/sdc1 /srv/immich ext4 ${OPTIONS} 0 2 # ${uuid}`,
      'mounts /dev/sdc1 on /srv/immich, not a filesystem UUID',
    ],
    [
      'fstab names another filesystem',
      () => `UUID=0f0e0d0c-0b0a-4908-8706-050403020100 /srv/immich ext4 ${OPTIONS} 0 2`,
      'is not the one /etc/fstab names (UUID=0f0e0d0c-0b0a-4908-8706-050403020100)',
    ],
    [
      'fstab lacks nofail',
      (uuid: string) => `UUID=${uuid} /srv/immich ext4 defaults 0 2`,
      'lacks nofail: with the disk missing the VM stops booting',
    ],
    ['fstab has no line for it', () => '', '/etc/fstab has no line for /srv/immich'],
  ])('fails when %s, and gives the line to write', async (_, fstab, says) => {
    const { root, disk } = withDataDisk({ fstab });
    const { code, checks } = await doctor(root);
    expect(code).toBe(1);
    expect(checks['data-disk']).toMatchObject({ result: 'fail', detail: expect.stringContaining(says) });
    expect(checks['data-disk'].fix).toContain(`UUID=${disk.uuid} /srv/immich ext4 ${OPTIONS} 0 2`);
  });

  it('fails when the empty mount point underneath the disk is not immutable (the guard), and says how to set it', async () => {
    const { root } = withDataDisk({ guard: false });
    const { code, checks } = await doctor(root);
    expect(code).toBe(1);
    expect(checks['data-disk']).toMatchObject({
      result: 'fail',
      detail: expect.stringContaining('the empty mount point /srv/immich underneath is not immutable'),
      fix: expect.stringContaining('umount /srv/immich && chattr +i /srv/immich && mount /srv/immich'),
    });
  });
});

describe('doctor data-space', () => {
  it('passes, naming the filesystem and its numbers, when the data disk has room', async () => {
    const { root, disk } = withDataDisk();
    const { checks } = await doctor(root);
    expect(checks['data-space'].result).toBe('pass');
    expect(checks['data-space'].detail).toMatch(
      new RegExp(
        `^the library \\(/srv/immich/library\\) and Postgres \\(/srv/immich/postgres\\) are on a filesystem \\(${disk.dev} on /srv/immich\\) \\d+ % used: 0\\.\\d GiB free of 0\\.\\d GiB$`,
      ),
    );
  });

  it('warns above 85 % used and fails from 95 %, naming the numbers', async () => {
    const { root, mountPoint } = withDataDisk();
    fillTo(path.join(mountPoint, 'library'), 90);
    let { code, checks } = await doctor(root);
    expect(checks['data-space']).toMatchObject({
      result: 'warn',
      detail: expect.stringMatching(
        / 9[01] % used: .* \(warns above 85 %, fails from 95 %: a full disk stops Postgres\)$/,
      ),
      fix: expect.stringContaining('grow the disk'),
    });
    fillTo(path.join(mountPoint, 'library'), 97);
    ({ code, checks } = await doctor(root));
    expect(code).toBe(1);
    expect(checks['data-space']).toMatchObject({ result: 'fail', detail: expect.stringMatching(/ 9[6-8] % used: /) });
  });

  it('measures the OS disk’s directories without a data disk: fails when the filesystem under /opt/immich is full', async () => {
    const root = bootedRoot('');
    const disk = loopDisk(32);
    mount(disk.dev, path.join(root, 'opt/immich'));
    fillTo(path.join(root, 'opt/immich'), 96);
    const { code, checks } = await doctor(root);
    expect(code).toBe(1);
    expect(checks['data-space']).toMatchObject({
      result: 'fail',
      detail: expect.stringContaining(
        `the library (/opt/immich/library) and Postgres (/opt/immich/postgres) are on a filesystem (${disk.dev} on /opt/immich) 9`,
      ),
      fix: expect.stringContaining('immich-firstboot attach-disk --lun N'),
    });
  });

  it('is skipped when the data disk is not mounted: the OS disk underneath is not its space', async () => {
    const { root, umount } = withDataDisk();
    umount();
    const { checks } = await doctor(root);
    expect(checks['data-space']).toMatchObject({ result: 'skipped', detail: expect.stringContaining('not mounted') });
  });
});

describe('doctor data-on-resource-disk', () => {
  /** /dev/disk/azure/resource inside the root as udev makes it: a relative link to a node made with mknod. */
  function resourceLink(root: string, disk: { dev: string; major: number; minor: number }): void {
    const name = path.basename(disk.dev);
    mkdirSync(path.join(root, 'dev/disk/azure'), { recursive: true });
    execFileSync('mknod', [path.join(root, 'dev', name), 'b', String(disk.major), String(disk.minor)]);
    chmodSync(path.join(root, 'dev', name), 0o600);
    symlinkSync(`../../${name}`, path.join(root, 'dev/disk/azure/resource'));
  }

  it('fails when the library and Postgres live on the disk /dev/disk/azure/resource names', async () => {
    const root = bootedRoot('');
    const resource = loopDisk(32, 'ephemeral');
    resourceLink(root, resource);
    mount(resource.dev, path.join(root, 'opt/immich'));
    mkdirSync(path.join(root, 'opt/immich/library'));
    const { code, checks } = await doctor(root);
    expect(code).toBe(1);
    expect(checks['data-on-resource-disk']).toMatchObject({
      result: 'fail',
      detail: expect.stringContaining(
        `the library (/opt/immich/library) is on the resource disk, /dev/disk/azure/resource (/dev/${path.basename(resource.dev)})`,
      ),
      fix: expect.stringContaining('immich-firstboot attach-disk --lun N'),
    });
    expect(checks['data-on-resource-disk'].detail).toContain('Postgres (/opt/immich/postgres) is on the resource disk');
  });

  it('fails when they live on the filesystem at /mnt that carries the agent’s DATALOSS_WARNING_README.txt (no link)', async () => {
    const root = bootedRoot('');
    const resource = loopDisk(32, 'ephemeral');
    mount(resource.dev, path.join(root, 'mnt'));
    writeFileSync(path.join(root, 'mnt/DATALOSS_WARNING_README.txt'), 'WARNING: THIS IS A TEMPORARY DISK.\n');
    // An operator "moved" the library to the big disk with a link.
    mkdirSync(path.join(root, 'mnt/immich-library'));
    mkdirSync(path.join(root, 'opt/immich'), { recursive: true });
    symlinkSync('../../mnt/immich-library', path.join(root, 'opt/immich/library'));
    const { code, checks } = await doctor(root);
    expect(code).toBe(1);
    expect(checks['data-on-resource-disk']).toMatchObject({
      result: 'fail',
      detail: expect.stringContaining(
        `the library (/opt/immich/library) is on the resource disk, ${resource.dev} on /mnt (it holds DATALOSS_WARNING_README.txt)`,
      ),
    });
    expect(checks['data-on-resource-disk'].detail).not.toContain('Postgres');
  });

  it('passes when the resource disk is another disk than the data disk', async () => {
    const { root } = withDataDisk();
    const resource = loopDisk(32, 'ephemeral');
    resourceLink(root, resource);
    const { checks } = await doctor(root);
    expect(checks['data-on-resource-disk']).toEqual({
      id: 'data-on-resource-disk',
      result: 'pass',
      detail: `the library and Postgres are not on the resource disk (/dev/disk/azure/resource (/dev/${path.basename(resource.dev)}))`,
    });
  });

  it('passes, saying so, where there is no resource disk at all', async () => {
    const { checks } = await doctor(bootedRoot(''));
    expect(checks['data-on-resource-disk']).toMatchObject({
      result: 'pass',
      detail: expect.stringContaining('no resource disk here'),
    });
  });
});
