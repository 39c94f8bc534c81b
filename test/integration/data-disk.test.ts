// The data disk on real block devices: loop devices with real sgdisk, mkfs.ext4, blkid, wipefs, debugfs,
// mount and chattr, put in a temp --root as udev would (the node by mknod, Azure's LUN links). The built
// program runs a first boot (--skip-stack) against it, as systemd would.
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BUNDLE, runCli, type CliResult } from '../support/cli.js';
import { Disks, tryRun, type LoopDisk } from '../support/loop-disk.js';
import { dataDiskState } from '../../src/data-disk.js';
import { createSystem } from '../../src/system/index.js';

const LUN0 = 'dev/disk/azure/scsi1/lun0';
const CONFIG = 'imds:\n  enabled: false\ndataDisk: { lun: 0 }\n';
const COMMENT = '# immich-firstboot: the data disk (dataDisk in config.yaml); nofail: the VM boots without it';
const OPTIONS = 'defaults,nofail,x-systemd.device-timeout=10s,x-systemd.before=docker.service';

let disks: Disks;
beforeEach(() => {
  disks = new Disks();
});
afterEach(() => disks.release());
beforeAll(() => {
  if (!existsSync(BUNDLE)) throw new Error('run `npm run build` first (npm test does)');
});

const firstBoot = (root: string, env: Record<string, string> = {}): Promise<CliResult> =>
  runCli(['--root', root, 'run', '--skip-stack'], env);
const read = (root: string, inside: string): string => readFileSync(path.join(root, inside), 'utf8');
const modeOf = (root: string, inside: string): string =>
  (lstatSync(path.join(root, inside)).mode & 0o7777).toString(8).padStart(4, '0');
const journal = (root: string) => JSON.parse(read(root, 'var/lib/immich-firstboot/state.json'));
const envSecret = (text: string): string => /^DB_PASSWORD=(.*)$/m.exec(text)![1];
const blkid = (device: string): Record<string, string> =>
  Object.fromEntries(
    tryRun('blkid', ['-p', '-o', 'export', device])
      .stdout.split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
/** What is mounted on a host path now: its source device, or undefined. */
const mountedAt = (target: string): string | undefined =>
  readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' '))
    .filter((f) => f[4] === target)
    .map((f) => f[f.indexOf('-') + 2])
    .at(-1);
const failure = (root: string) =>
  journal(root).errors.at(-1) as { step: string; code: string; message: string; hint: string };

/** A root with one blank disk at LUN 0. */
function blankVm(config = CONFIG): { root: string; disk: LoopDisk } {
  const disk = disks.attach();
  const root = disks.root(config);
  disks.link(root, disk, LUN0);
  return { root, disk };
}

describe('a first boot with dataDisk: { lun: 0 }', () => {
  it('gives a blank disk one GPT partition and ext4, mounts it by UUID with nofail, and puts the library, Postgres and the copy of .env on it', async () => {
    const { root, disk } = blankVm();
    const run = await firstBoot(root);
    expect(run.code, run.stdout + run.stderr).toBe(0);

    const part = disks.partition(disk);
    const fs = blkid(part);
    expect(fs).toMatchObject({ TYPE: 'ext4', LABEL: 'immich-data', PART_ENTRY_NAME: 'immich-data' });
    expect(fs.PART_ENTRY_TYPE).toBe('0fc63daf-8483-4772-8e79-3d69d8477de4');
    expect(blkid(disk.device)).toMatchObject({ PTTYPE: 'gpt' });
    expect(read(root, 'etc/fstab')).toBe(
      `# /etc/fstab\nLABEL=cloudimg-rootfs / ext4 discard,errors=remount-ro 0 1\n${COMMENT}\nUUID=${fs.UUID} /srv/immich ext4 ${OPTIONS} 0 2\n`,
    );
    expect(mountedAt(path.join(root, 'srv/immich'))).toBe(path.join(root, `dev/${disk.name}p1`));
    expect(
      Object.fromEntries(
        [
          'srv/immich/library',
          'srv/immich/postgres',
          'srv/immich/.immich-firstboot',
          'srv/immich/.immich-firstboot/env',
          'srv/immich/.immich-firstboot/disk.json',
        ].map((p) => [p, modeOf(root, p)]),
      ),
    ).toEqual({
      'srv/immich/library': '0750',
      'srv/immich/postgres': '0700',
      'srv/immich/.immich-firstboot': '0700',
      'srv/immich/.immich-firstboot/env': '0600',
      'srv/immich/.immich-firstboot/disk.json': '0644',
    });
    expect(JSON.parse(read(root, 'srv/immich/.immich-firstboot/disk.json'))).toMatchObject({
      formattedBy: 'immich-firstboot',
      version: 1,
      uuid: fs.UUID,
    });
    const env = read(root, 'opt/immich/.env');
    expect(env).toMatch(/^UPLOAD_LOCATION=\/srv\/immich\/library$/m);
    expect(env).toMatch(/^DB_DATA_LOCATION=\/srv\/immich\/postgres$/m);
    expect(read(root, 'srv/immich/.immich-firstboot/env')).toBe(env);
    expect(run.stdout).not.toContain(envSecret(env));
    expect(journal(root).facts.dataDisk).toMatchObject({
      link: '/dev/disk/azure/scsi1/lun0',
      uuid: fs.UUID,
      formatted: true,
    });

    // A rerun (a fresh journal: the first boot again) finds the disk ours and mounted: nothing changes.
    const fstab = read(root, 'etc/fstab');
    rmSync(path.join(root, 'var/lib/immich-firstboot'), { recursive: true });
    const again = await firstBoot(root);
    expect(again.code, again.stdout).toBe(0);
    expect(again.lines.find((l) => l.step === 'data-disk' && 'changed' in l)).toMatchObject({ changed: false });
    expect(read(root, 'etc/fstab')).toBe(fstab);
    expect(blkid(part).UUID).toBe(fs.UUID);
    expect(read(root, 'opt/immich/.env')).toBe(env);
  });

  it('leaves the empty mount point immutable underneath, so nothing is created there when the disk is missing', async () => {
    const { root } = blankVm();
    expect((await firstBoot(root)).code).toBe(0);
    disks.unmountAll(root);
    const mountPoint = path.join(root, 'srv/immich');
    expect(tryRun('lsattr', ['-d', mountPoint]).stdout).toMatch(/^\S*i\S* /);
    expect(() => mkdirSync(path.join(mountPoint, 'library'))).toThrow(/EPERM/);
    expect(() => writeFileSync(path.join(mountPoint, 'x'), '')).toThrow(/EPERM/);

    // A later run with the disk missing stops before .env would point at the OS disk.
    rmSync(path.join(root, LUN0));
    rmSync(path.join(root, 'var/lib/immich-firstboot'), { recursive: true });
    rmSync(path.join(root, 'opt/immich/.env'));
    const missing = await firstBoot(root);
    expect(missing.code).toBe(1);
    expect(failure(root)).toMatchObject({ step: 'data-disk', code: 'data-disk-not-found' });
    expect(existsSync(path.join(root, 'opt/immich/.env'))).toBe(false);
  });

  it('finds the one data disk with auto, by azure-vm-utils links too', async () => {
    const disk = disks.attach();
    const root = disks.root('imds:\n  enabled: false\ndataDisk: auto\n');
    disks.link(root, disk, 'dev/disk/azure/data/by-lun/3');
    const run = await firstBoot(root);
    expect(run.code, run.stdout).toBe(0);
    expect(journal(root).facts.dataDisk).toMatchObject({ link: '/dev/disk/azure/data/by-lun/3', formatted: true });
  });

  it('refuses auto with no data disk, and with two, listing them; neither is written', async () => {
    const none = disks.root('imds:\n  enabled: false\ndataDisk: auto\n');
    expect((await firstBoot(none)).code).toBe(1);
    expect(failure(none)).toMatchObject({ code: 'data-disk-ambiguous' });
    expect(failure(none).message).toContain('no data disk is attached');

    const [a, b] = [disks.attach(), disks.attach()];
    const two = disks.root('imds:\n  enabled: false\ndataDisk: auto\n');
    disks.link(two, a, 'dev/disk/azure/scsi1/lun0');
    disks.link(two, b, 'dev/disk/azure/scsi1/lun1');
    disks.link(two, a, 'dev/disk/azure/data/by-lun/0'); // the same disk under both schemes counts once
    const before = [disks.sha256(a), disks.sha256(b)];
    expect((await firstBoot(two)).code).toBe(1);
    expect(failure(two)).toMatchObject({ code: 'data-disk-ambiguous' });
    expect(failure(two).message).toContain(
      `2 data disks are attached: LUN 0 ("/dev/${a.name}"), LUN 1 ("/dev/${b.name}")`,
    );
    expect([disks.sha256(a), disks.sha256(b)]).toEqual(before);
    expect(existsSync(path.join(two, 'opt/immich/.env'))).toBe(false);
  });

  it('refuses a LUN with no disk, naming both links', async () => {
    const root = disks.root(CONFIG);
    expect((await firstBoot(root)).code).toBe(1);
    expect(failure(root)).toMatchObject({ code: 'data-disk-not-found' });
    expect(failure(root).message).toContain('/dev/disk/azure/scsi1/lun0 nor /dev/disk/azure/data/by-lun/0');
  });

  it.each([
    ['the resource disk', 'dev/disk/azure/resource', 'the resource disk (Azure wipes it when the VM is deallocated)'],
    ['the OS disk (WALinuxAgent)', 'dev/disk/azure/root', 'the OS disk'],
    ['the OS disk (azure-vm-utils)', 'dev/disk/azure/os', 'the OS disk'],
  ])('refuses a LUN link that leads to %s, and writes nothing', async (_, other, which) => {
    const { root, disk } = blankVm();
    disks.link(root, disk, other);
    const before = disks.sha256(disk);
    expect((await firstBoot(root)).code).toBe(1);
    expect(failure(root)).toMatchObject({ code: 'data-disk-refused' });
    expect(failure(root).message).toContain(`is ${which}, as /${other} says`);
    expect(disks.sha256(disk)).toBe(before);
    expect(read(root, 'etc/fstab')).not.toContain('/srv/immich');
  });

  it('refuses a link to something that is not a block device', async () => {
    const root = disks.root(CONFIG);
    mkdirSync(path.join(root, 'dev/disk/azure/scsi1'), { recursive: true });
    writeFileSync(path.join(root, 'dev/fake'), 'not a disk');
    execFileSync('ln', ['-s', '../../../fake', path.join(root, LUN0)]);
    expect((await firstBoot(root)).code).toBe(1);
    expect(failure(root)).toMatchObject({ code: 'data-disk-refused' });
    expect(failure(root).message).toContain('"/dev/fake", which is a regular file, not a block device');
  });
});

describe("immich-firstboot-data-disk.service's run: run --data-disk-only", () => {
  it('mounts the disk and stops without .env or the done-stamp; the sandboxed run then resumes at env', async () => {
    const { root, disk } = blankVm();
    const pre = await runCli(['--root', root, 'run', '--data-disk-only']);
    expect(pre.code, pre.stdout).toBe(0);
    expect(pre.lines.at(-1)?.msg).toBe(
      'first boot: steps through data-disk done; the others follow (`immich-firstboot run`)',
    );
    expect(mountedAt(path.join(root, 'srv/immich'))).toBe(path.join(root, `dev/${disk.name}p1`));
    expect(Object.keys(journal(root).completed)).toEqual(['data-disk']);
    expect(existsSync(path.join(root, 'opt/immich/.env'))).toBe(false);
    expect(existsSync(path.join(root, 'var/lib/immich-firstboot/done'))).toBe(false);
    const again = await runCli(['--root', root, 'run', '--data-disk-only']);
    expect(again.lines.at(-1)?.msg).toBe(
      'steps through data-disk already done; nothing to do before the rest of the first boot',
    );
    const rest = await firstBoot(root);
    expect(rest.code).toBe(0);
    expect(rest.lines.some((l) => l.msg === 'resuming first boot at step env')).toBe(true);
    expect(rest.lines.some((l) => l.step === 'data-disk')).toBe(false);
    expect(read(root, 'srv/immich/.immich-firstboot/env')).toBe(read(root, 'opt/immich/.env'));
  });

  it('does nothing with dataDisk: none (not even a journal)', async () => {
    const root = disks.root('imds:\n  enabled: false\n');
    const pre = await runCli(['--root', root, 'run', '--data-disk-only']);
    expect(pre.code).toBe(0);
    expect(pre.lines.map((l) => l.msg)).toEqual([
      'no data disk configured (dataDisk: none); nothing to do before the rest of the first boot',
    ]);
    expect(existsSync(path.join(root, 'var/lib/immich-firstboot/state.json'))).toBe(false);
  });

  // Without a data disk it answers from config.yaml's text, without the YAML parser (test/package/bundle.test.ts
  // watches what it loads); a config that configures one, however YAML spells it, still runs the step.
  it.each([
    ['block', 'dataDisk:\n  lun: 0\n'],
    ['auto', 'dataDisk: auto\n'],
    ['a quoted key and flow', '"dataDisk": {lun: 0}\n'],
  ])('mounts the disk with dataDisk spelled %s', async (_, spelling) => {
    const { root, disk } = blankVm(`imds:\n  enabled: false\n${spelling}`);
    const pre = await runCli(['--root', root, 'run', '--data-disk-only']);
    expect(pre.code, pre.stdout).toBe(0);
    expect(mountedAt(path.join(root, 'srv/immich'))).toBe(path.join(root, `dev/${disk.name}p1`));
    expect(Object.keys(journal(root).completed)).toEqual(['data-disk']);
  });

  it('leaves a config.yaml that might configure a data disk to the parser, which names what is wrong', async () => {
    const root = disks.root('imds:\n  enabled: false\ndataDisk: {lun: 0\n');
    const pre = await runCli(['--root', root, 'run', '--data-disk-only']);
    expect(pre.code).toBe(3);
    expect(pre.stderr).toContain('config.yaml line 4: not valid YAML');
    expect(existsSync(path.join(root, 'var/lib/immich-firstboot/state.json'))).toBe(false);
  });
});

describe('a disk that is not blank is never written', () => {
  it('refuses a foreign filesystem, naming it; every byte of the disk is unchanged', async () => {
    const { root, disk } = blankVm();
    execFileSync('mkfs.ext4', ['-q', '-L', 'photos\u001b[2J', disk.device]);
    disks.withMounted(disk.device, (dir) => writeFileSync(path.join(dir, 'holiday.jpg'), 'precious'));
    const before = disks.sha256(disk);
    const run = await firstBoot(root);
    expect(run.code).toBe(1);
    const error = failure(root);
    expect(error).toMatchObject({ step: 'data-disk', code: 'data-disk-foreign' });
    expect(error.message).toBe(
      `/dev/disk/azure/scsi1/lun0 ("/dev/${disk.name}", 0.1 GiB) is not blank and not ours: filesystem ext4 labelled "photos^[[2J"; it was not formatted, nothing was written to it`,
    );
    // blkid itself writes the escape character in caret notation; no raw control character reaches a person.
    expect(error.hint).toContain('wipefs -a');
    expect(read(root, 'var/lib/immich-firstboot/state.json')).not.toContain('\u001b');
    expect(read(root, 'var/lib/immich-firstboot/state.json')).not.toContain('\\u001b');
    expect(run.stdout).not.toContain('\u001b');
    expect(disks.sha256(disk)).toBe(before);
    expect(existsSync(path.join(root, 'opt/immich/.env'))).toBe(false);
    expect(read(root, 'etc/fstab')).not.toContain('/srv/immich');
  });

  it('refuses a partition table without a filesystem; every byte is unchanged', async () => {
    const { root, disk } = blankVm();
    execFileSync('sgdisk', ['-n', '1:0:+8M', '-n', '2:0:0', disk.device], { stdio: 'ignore' });
    tryRun('partx', ['-u', disk.device]);
    const before = disks.sha256(disk);
    expect((await firstBoot(root)).code).toBe(1);
    expect(failure(root)).toMatchObject({ code: 'data-disk-foreign' });
    expect(failure(root).message).toContain(
      `partition table gpt; partition 1 ("${disk.name}p1"): no filesystem; partition 2 ("${disk.name}p2"): no filesystem`,
    );
    expect(disks.sha256(disk)).toBe(before);
  });

  it('refuses our label on a disk without our marker (someone else made it look like ours)', async () => {
    const { root, disk } = blankVm();
    execFileSync('sgdisk', ['-n', '1:0:0', '-t', '1:8300', '-c', '1:immich-data', disk.device], { stdio: 'ignore' });
    tryRun('partx', ['-u', disk.device]);
    execFileSync('mkfs.ext4', ['-q', '-L', 'immich-data', disks.partition(disk)]);
    const before = disks.sha256(disk);
    expect((await firstBoot(root)).code).toBe(1);
    expect(failure(root)).toMatchObject({ code: 'data-disk-foreign' });
    expect(failure(root).message).toContain('without our marker (/srv/immich/.immich-firstboot/disk.json)');
    expect(disks.sha256(disk)).toBe(before);
  });

  it('refuses a disk mounted elsewhere', async () => {
    const { root, disk } = blankVm();
    execFileSync('mkfs.ext4', ['-q', disk.device]);
    const dir = path.join(root, 'mnt');
    mkdirSync(dir);
    execFileSync('mount', [disk.device, dir]);
    expect((await firstBoot(root)).code).toBe(1);
    expect(failure(root)).toMatchObject({ code: 'data-disk-in-use' });
    expect(failure(root).message).toContain(`"${disk.name}" is mounted on "${dir}"`);
  });
});

describe('a disk of ours from an earlier VM', () => {
  /** A first boot on VM A formats the disk; Postgres data is put on it; then it is unmounted (detached). */
  async function diskFromEarlierVm(): Promise<{ disk: LoopDisk; secret: string; envA: string }> {
    const { root, disk } = blankVm();
    expect((await firstBoot(root)).code).toBe(0);
    writeFileSync(path.join(root, 'srv/immich/postgres/PG_VERSION'), '14\n');
    writeFileSync(path.join(root, 'srv/immich/library/photo.jpg'), 'precious');
    const envA = read(root, 'opt/immich/.env');
    disks.unmountAll(root);
    return { disk, secret: envSecret(envA), envA };
  }

  function newVm(disk: LoopDisk): string {
    const root = disks.root(CONFIG);
    disks.link(root, disk, 'dev/disk/azure/data/by-lun/0');
    return root;
  }

  it('is mounted and reused with the secret Postgres was initialised with, from its copy of .env', async () => {
    const { disk, secret } = await diskFromEarlierVm();
    const uuid = blkid(disks.partition(disk)).UUID;
    const root = newVm(disk);
    const run = await firstBoot(root);
    expect(run.code, run.stdout).toBe(0);
    expect(envSecret(read(root, 'opt/immich/.env'))).toBe(secret);
    expect(read(root, 'srv/immich/library/photo.jpg')).toBe('precious');
    expect(blkid(disks.partition(disk)).UUID).toBe(uuid);
    expect(journal(root).facts.dataDisk).toMatchObject({ uuid, formatted: false });
    expect(run.stdout).not.toContain(secret);
    expect(run.lines.some((l) => /Postgres database from an earlier VM: reused/.test(l.msg))).toBe(true);
  });

  it('stops before the stack when the copy of .env is missing, writing no .env', async () => {
    const { disk } = await diskFromEarlierVm();
    disks.withMounted(disks.partition(disk), (dir) => rmSync(path.join(dir, '.immich-firstboot/env')));
    const root = newVm(disk);
    const run = await firstBoot(root);
    expect(run.code).toBe(1);
    const error = failure(root);
    expect(error).toMatchObject({ step: 'env', code: 'data-disk-secret-missing' });
    expect(error.message).toContain(
      'the data disk holds a Postgres database (/srv/immich/postgres) from an earlier VM',
    );
    expect(error.hint).toContain('ALTER USER postgres');
    expect(existsSync(path.join(root, 'opt/immich/.env'))).toBe(false);
    expect(journal(root).completed['stack-start']).toBeUndefined();
  });

  it('stops when .env on this VM holds another secret than the disk copy, changing neither', async () => {
    const { disk, envA } = await diskFromEarlierVm();
    const root = newVm(disk);
    const other = envA.replace(/^DB_PASSWORD=.*$/m, 'DB_PASSWORD=SomeOtherSecret0123456789abcdefgh');
    mkdirSync(path.join(root, 'opt/immich'), { recursive: true, mode: 0o755 });
    writeFileSync(path.join(root, 'opt/immich/.env'), other, { mode: 0o640 });
    const run = await firstBoot(root);
    expect(run.code).toBe(1);
    expect(failure(root)).toMatchObject({ step: 'env', code: 'data-disk-secret-conflict' });
    expect(read(root, 'opt/immich/.env')).toBe(other);
    expect(read(root, 'srv/immich/.immich-firstboot/env')).toBe(envA);
    expect(run.stdout).not.toContain(envSecret(envA));
  });
});

describe('the state per-boot, status and doctor read', () => {
  it('says mounted, by the UUID fstab names and the marker holds, and how full; then not mounted', async () => {
    const { root, disk } = blankVm();
    expect((await firstBoot(root)).code).toBe(0);
    const uuid = blkid(disks.partition(disk)).UUID;
    const sys = createSystem(root, {});
    const state = await dataDiskState(sys, { dataDisk: { lun: 0 } }, { probe: true });
    expect(state).toMatchObject({
      configured: true,
      mounted: { source: path.join(root, `dev/${disk.name}p1`), fstype: 'ext4' },
      fstabUuid: uuid,
      markerUuid: uuid,
      mountedUuid: uuid,
    });
    expect(state.usedPercent).toBeGreaterThanOrEqual(0);
    expect(state.usedPercent).toBeLessThan(100);
    expect(state.sizeBytes).toBeGreaterThan(32 * 2 ** 20);
    disks.unmountAll(root);
    expect(await dataDiskState(sys, { dataDisk: { lun: 0 } })).toEqual({ configured: true, fstabUuid: uuid });
    expect(await dataDiskState(sys, { dataDisk: 'none' })).toEqual({ configured: false });
  });
});

describe('per-boot on a clone with a data disk', () => {
  it("gives the clone a new secret while Postgres holds no data, and the disk's copy follows .env", async () => {
    const { root } = blankVm();
    expect((await firstBoot(root)).code).toBe(0);
    const old = envSecret(read(root, 'opt/immich/.env'));
    writeFileSync(path.join(root, 'etc/machine-id'), 'fedcba9876543210fedcba9876543210\n');
    const run = await runCli(['--root', root, 'per-boot']);
    expect(run.code, run.stdout).toBe(0);
    const env = read(root, 'opt/immich/.env');
    expect(envSecret(env)).not.toBe(old);
    expect(read(root, 'srv/immich/.immich-firstboot/env')).toBe(env);
    expect(modeOf(root, 'srv/immich/.immich-firstboot/env')).toBe('0600');
    expect(run.stdout).not.toContain(envSecret(env));
  });
});

describe('a crash while the disk is being made', () => {
  it.each(['data-disk:partitioned', 'data-disk:formatted', 'data-disk:fstab', 'data-disk:mounted', 'data-disk:marked'])(
    'at %s: the rerun finishes the same disk, and mkfs ran once',
    async (point) => {
      const { root, disk } = blankVm();
      const crashed = await firstBoot(root, { IMMICH_FIRSTBOOT_CRASH_AT: point });
      expect(crashed.signal).toBe('SIGKILL');
      const plan = journal(root).facts.dataDisk.plan as { uuid: string; ptuuid: string };
      // A file written after the first mkfs: a second mkfs would lose it.
      let sentinel = false;
      if (point !== 'data-disk:partitioned') {
        const mounted = mountedAt(path.join(root, 'srv/immich'));
        if (mounted) writeFileSync(path.join(root, 'srv/immich/sentinel'), 'kept');
        else disks.withMounted(disks.partition(disk), (dir) => writeFileSync(path.join(dir, 'sentinel'), 'kept'));
        sentinel = true;
      }
      const rerun = await firstBoot(root);
      expect(rerun.code, rerun.stdout).toBe(0);
      const fs = blkid(disks.partition(disk));
      expect({ uuid: fs.UUID, ptuuid: blkid(disk.device).PTUUID }).toEqual({ uuid: plan.uuid, ptuuid: plan.ptuuid });
      if (sentinel) expect(read(root, 'srv/immich/sentinel')).toBe('kept');
      expect(JSON.parse(read(root, 'srv/immich/.immich-firstboot/disk.json')).uuid).toBe(plan.uuid);
      expect(read(root, 'etc/fstab').split(COMMENT).length).toBe(2);
      expect(read(root, 'srv/immich/.immich-firstboot/env')).toBe(read(root, 'opt/immich/.env'));
    },
  );
});
