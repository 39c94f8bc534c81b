// `attach-disk` on real block devices: a loop device plays the Azure data disk (its node and its LUN link made in
// the test root as udev would, see the CONTRACT's --root rule), real sgdisk, mkfs.ext4, mount and cp. The stack
// is the stand-in (test/fixtures/bin/docker, no engine): it records the data each `up -d` starts on (up.log), and
// its Immich answers the ping until `compose stop`. A real engine would need the machine-wide engine lock for
// every run of this file; what attach-disk asks of the stack (stop, up -d, the ping) is the same either way.
import { execFileSync, spawnSync } from 'node:child_process';
import {
  chownSync,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FIXTURE_BIN, killStandins, pathWith, runCli } from '../support/cli.js';
import { Disks } from '../support/loop-disk.js';
import { makeRoot, modeOf, readFile } from '../support/root.js';

const MiB = 1024 ** 2;
const cleanups: Array<() => void> = [];
afterEach(() => {
  while (cleanups.length) {
    try {
      cleanups.pop()!();
    } catch (error) {
      console.error(error);
    }
  }
});

const sh = (command: string): string =>
  execFileSync('bash', ['-c', command], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
const mounted = (dir: string): boolean => spawnSync('mountpoint', ['-q', dir]).status === 0;

const CONFIG = (port: number): string =>
  [
    '# the operator keeps this comment',
    'imds:',
    '  enabled: false',
    'stack:',
    `  serverUrl: http://127.0.0.1:${port}`,
    '  readyTimeoutSeconds: 10',
    '',
  ].join('\n');

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function pong(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    http
      .get(`http://127.0.0.1:${port}/api/server/ping`, { agent: false, timeout: 2000 }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve(body.includes('pong')));
      })
      .on('error', () => resolve(false));
  });
}

interface World {
  root: string;
  port: number;
  env: Record<string, string>;
  /** The loop device (host node) and its node inside the root. */
  dev: string;
  /** Every `up -d` of the stand-in, in order: the data it started on. */
  ups(): Array<{ UPLOAD_LOCATION?: string; DB_DATA_LOCATION?: string }>;
  argv(): string[];
  attach(...args: string[]): ReturnType<typeof runCli>;
}

/**
 * A VM after its first boot, Immich (the stand-in) answering, with data of every kind in the library and Postgres,
 * and a loop device of `diskBytes` (sparse) attached as LUN 0.
 */
/** The stand-in docker's `stop` and `up` calls after its first `from` calls: how the stack was touched since. */
const stackCalls = (w: World, from: number): string[] =>
  w
    .argv()
    .slice(from)
    .filter((c) => c.includes('"stop"') || c.includes('"up"'));

async function runningVm(diskBytes: number, extra: Record<string, string> = {}): Promise<World> {
  const port = await freePort();
  const root = makeRoot(CONFIG(port));
  const standin = mkdtempSync(path.join(os.tmpdir(), 'ifb-docker-'));
  const env = { PATH: pathWith(FIXTURE_BIN), STANDIN_DIR: standin, STANDIN_PING_PORT: String(port), ...extra };
  cleanups.push(() => rmSync(root, { recursive: true, force: true }));
  cleanups.push(() => killStandins(standin));
  const boot = await runCli(['--root', root], env);
  expect(boot.code, boot.stdout).toBe(0);

  const lib = `${root}/opt/immich/library`;
  const pg = `${root}/opt/immich/postgres`;
  mkdirSync(`${lib}/upload/user1`, { recursive: true });
  writeFileSync(`${lib}/upload/user1/a.jpg`, 'jpeg bytes'.repeat(100));
  chownSync(`${lib}/upload/user1/a.jpg`, 1000, 1000);
  sh(
    `chmod 640 '${lib}/upload/user1/a.jpg' && chmod 2750 '${lib}/upload/user1' && chown 1000:33 '${lib}/upload/user1'`,
  );
  sh(`setfattr -n user.immich.checksum -v sha1:abc '${lib}/upload/user1/a.jpg'`);
  writeFileSync(`${lib}/upload/user1/b.heic`, 'heic');
  linkSync(`${lib}/upload/user1/b.heic`, `${lib}/upload/user1/b-hardlink.heic`);
  symlinkSync('upload/user1', `${lib}/latest`);
  mkdirSync(`${pg}/base/16384`, { recursive: true });
  writeFileSync(`${pg}/PG_VERSION`, '14\n');
  writeFileSync(`${pg}/base/16384/1259`, Buffer.alloc(64 * 1024, 7));
  sh(`chown -R 999:999 '${pg}' && chmod 700 '${pg}' && chmod 600 '${pg}/base/16384/1259'`);

  const disks = new Disks();
  cleanups.push(() => {
    disks.unmountAll(root);
    spawnSync('chattr', ['-i', `${root}/srv/immich`]);
    disks.release();
  });
  const disk = disks.attach(diskBytes / MiB);
  disks.link(root, disk, 'dev/disk/azure/scsi1/lun0');
  const dev = disk.device;
  return {
    root,
    port,
    env,
    dev,
    ups: () =>
      readFileSync(path.join(standin, 'up.log'), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { UPLOAD_LOCATION?: string }),
    argv: () => readFileSync(path.join(standin, 'argv.log'), 'utf8').split('\n').filter(Boolean),
    attach: (...args) => runCli(['--root', root, 'attach-disk', ...args], env),
  };
}

/** Every entry of a tree with its owner, mode, link count, kind, link target and size (a directory's size aside). */
function manifest(dir: string): string {
  return sh(`cd '${dir}' && find . -printf '%p %U:%G %m %n %y %l %s\\n' | awk '$5 == "d" { $NF = "-" } 1' | sort`);
}
/** Every extended attribute in a tree (links not followed). */
function xattrs(dir: string): string {
  return sh(`cd '${dir}' && getfattr -R -h -d -m - . 2>/dev/null`);
}
const inode = (file: string): number => statSync(file).ino;

/** What attach-disk may change: config.yaml, .env (and its mode), fstab. */
function files(root: string): Record<string, string> {
  const read = (inside: string): string => (existsSync(`${root}${inside}`) ? readFile(root, inside) : '(none)');
  return {
    config: read('/etc/immich-firstboot/config.yaml'),
    env: read('/opt/immich/.env'),
    envMode: modeOf(root, '/opt/immich/.env'),
    fstab: read('/etc/fstab'),
  };
}

const lastUp = (w: World) => w.ups().at(-1);

describe('attach-disk --lun N on a running VM', () => {
  it('moves the library and Postgres onto the blank disk intact, switches .env, fstab and config.yaml, and Immich answers on it', async () => {
    const w = await runningVm(1536 * MiB);
    const lib = `${w.root}/opt/immich/library`;
    const pg = `${w.root}/opt/immich/postgres`;
    const before = { lib: manifest(lib), pg: manifest(pg), libX: xattrs(lib), pgX: xattrs(pg) };
    expect(before.libX).toContain('user.immich.checksum="sha1:abc"');
    const password = /^DB_PASSWORD=(.*)$/m.exec(readFile(w.root, '/opt/immich/.env'))![1];

    // --remove-old before any move: refused, the only copy untouched.
    const early = await w.attach('--remove-old', '--json');
    expect(early.code).toBe(1);
    expect(JSON.parse(early.stdout)).toMatchObject({ ok: false, error: { code: 'attach-disk-refused' } });
    expect(manifest(lib)).toBe(before.lib);

    const run = await w.attach('--lun', '0');
    expect(run.code, run.stdout + run.stderr).toBe(0);
    const steps = run.lines.map((l) => l.step).filter(Boolean);
    expect(steps).toEqual(
      expect.arrayContaining([
        'check',
        'size',
        'format',
        'stop',
        'copy-library',
        'copy-postgres',
        'verify',
        'switch',
        'start',
      ]),
    );
    expect(run.stdout).toContain('immich-firstboot attach-disk --remove-old');

    const srv = `${w.root}/srv/immich`;
    expect(mounted(srv)).toBe(true);
    expect(manifest(`${srv}/library`)).toBe(before.lib);
    expect(manifest(`${srv}/postgres`)).toBe(before.pg);
    expect(xattrs(`${srv}/library`)).toBe(before.libX);
    expect(xattrs(`${srv}/postgres`)).toBe(before.pgX);
    expect(inode(`${srv}/library/upload/user1/b.heic`)).toBe(inode(`${srv}/library/upload/user1/b-hardlink.heic`));
    expect(readFileSync(`${srv}/postgres/PG_VERSION`, 'utf8')).toBe('14\n');
    // The disk's copy of .env: root's alone, with the same secret.
    expect(modeOf(w.root, '/srv/immich/.immich-firstboot/env')).toBe('0600');
    expect(readFile(w.root, '/srv/immich/.immich-firstboot/env')).toContain(`DB_PASSWORD=${password}\n`);

    const env = readFile(w.root, '/opt/immich/.env');
    expect(env).toMatch(/^UPLOAD_LOCATION=\/srv\/immich\/library$/m);
    expect(env).toMatch(/^DB_DATA_LOCATION=\/srv\/immich\/postgres$/m);
    expect(env).toContain(`DB_PASSWORD=${password}\n`);
    expect(modeOf(w.root, '/opt/immich/.env')).toBe('0640');
    const uuid = sh(
      `blkid -p -s UUID -o value ${w.dev}p1 2>/dev/null || blkid -s UUID -o value ${w.root}/dev/$(basename ${w.dev})p1`,
    ).trim();
    expect(readFile(w.root, '/etc/fstab')).toContain(
      `UUID=${uuid} /srv/immich ext4 defaults,nofail,x-systemd.device-timeout=10s,x-systemd.before=docker.service 0 2`,
    );
    const config = readFile(w.root, '/etc/immich-firstboot/config.yaml');
    expect(config).toContain('# the operator keeps this comment\n');
    expect(config).toMatch(/^dataDisk:\n {2}lun: 0$/m);

    expect(lastUp(w)).toEqual({ UPLOAD_LOCATION: '/srv/immich/library', DB_DATA_LOCATION: '/srv/immich/postgres' });
    expect(await pong(w.port)).toBe(true);
    // The old data stays until --remove-old.
    expect(manifest(lib)).toBe(before.lib);

    const remove = await w.attach('--remove-old', '--json');
    expect(remove.code, remove.stdout + remove.stderr).toBe(0);
    expect(existsSync(lib)).toBe(false);
    expect(existsSync(pg)).toBe(false);
    expect(readdirSafe(`${w.root}/opt/immich`)).toEqual(expect.arrayContaining(['.env', 'docker-compose.yml']));
    expect(manifest(`${srv}/library`)).toBe(before.lib);
    expect(manifest(`${srv}/postgres`)).toBe(before.pg);
  }, 180_000);

  it('refuses a disk too small for the data with headroom, naming both sizes; nothing changes and the stack is not touched', async () => {
    const w = await runningVm(512 * MiB);
    const before = files(w.root);
    const calls = w.argv().length;
    const run = await w.attach('--lun', '0', '--json');
    expect(run.code).toBe(1);
    const report = JSON.parse(run.stdout) as {
      error: { code: string; message: string };
      sizes: { neededBytes: number };
    };
    expect(report.error.code).toBe('attach-disk-too-small');
    expect(report.error.message).toContain(`holds 512.0 MiB (${512 * MiB} bytes)`);
    expect(report.error.message).toContain(`(${report.sizes.neededBytes} bytes: library `);
    expect(files(w.root)).toEqual(before);
    expect(stackCalls(w, calls)).toEqual([]);
    expect(sh(`wipefs -n ${w.dev}`).trim()).toBe('');
    expect(await pong(w.port)).toBe(true);
  }, 120_000);

  it('refuses a disk that carries a filesystem: its content checksummed unchanged, the stack not touched', async () => {
    const w = await runningVm(64 * MiB);
    sh(`mkfs.ext4 -q -L photos-elsewhere ${w.dev}`);
    const mnt = mkdtempSync(path.join(os.tmpdir(), 'ifb-foreign-'));
    sh(`mount ${w.dev} ${mnt} && echo precious > ${mnt}/keep.txt && umount ${mnt}`);
    rmSync(mnt, { recursive: true });
    const sum = sh(`sha256sum ${w.dev}`).split(' ')[0];
    const before = files(w.root);
    const calls = w.argv().length;
    const run = await w.attach('--lun', '0', '--json');
    expect(run.code).toBe(1);
    expect(JSON.parse(run.stdout)).toMatchObject({ ok: false, error: { code: 'data-disk-foreign' } });
    expect(sh(`sha256sum ${w.dev}`).split(' ')[0]).toBe(sum);
    expect(files(w.root)).toEqual(before);
    expect(stackCalls(w, calls)).toEqual([]);
    expect(await pong(w.port)).toBe(true);
  }, 120_000);

  it('a copy that fails midway (the disk runs out of inodes) leaves the VM on its old data, running, every file as it was', async () => {
    // 1.1 GiB of ext4 has ~70,000 inodes; 75,000 empty files occupy no blocks, so the size check passes.
    const w = await runningVm(1126 * MiB);
    const many = `${w.root}/opt/immich/library/thumbs`;
    mkdirSync(many);
    for (let i = 0; i < 75_000; i++) writeFileSync(`${many}/${i}.webp`, '');
    const before = files(w.root);
    const lib = manifest(`${w.root}/opt/immich/library`);
    const run = await w.attach('--lun', '0', '--json');
    expect(run.code, run.stderr).toBe(1);
    const report = JSON.parse(run.stdout) as { error: { step: string; code: string; message: string } };
    expect(report.error).toMatchObject({ step: 'copy-library', code: 'attach-disk-copy-failed' });
    expect(report.error.message).toContain('No space left on device');
    await expectBackOnOldData(w, before);
    expect(manifest(`${w.root}/opt/immich/library`)).toBe(lib);
  }, 180_000);

  it('a stack that does not come up on the disk is put back on its old data, the disk emptied; a second run then succeeds', async () => {
    const w = await runningVm(1536 * MiB, { STANDIN_BROKEN_DATA: '/srv/immich' });
    const before = files(w.root);
    const run = await w.attach('--lun', '0', '--json');
    expect(run.code, run.stderr).toBe(1);
    const report = JSON.parse(run.stdout) as { error: { step: string; code: string }; now: object };
    expect(report.error).toMatchObject({ step: 'start', code: 'stack-not-ready' });
    expect(report.now).toEqual({
      upload: '/opt/immich/library',
      postgres: '/opt/immich/postgres',
      immichAnswers: true,
    });
    expect(w.ups().slice(-2)).toEqual([
      { UPLOAD_LOCATION: '/srv/immich/library', DB_DATA_LOCATION: '/srv/immich/postgres' },
      { UPLOAD_LOCATION: '/opt/immich/library', DB_DATA_LOCATION: '/opt/immich/postgres' },
    ]);
    await expectBackOnOldData(w, before);
    expect(existsSync(`${w.root}/srv/immich`)).toBe(false); // the mount point (and its guard) this run made

    // The disk stays ours and empty: taken again without formatting.
    const again = await runCli(['--root', w.root, 'attach-disk', '--lun', '0'], { ...w.env, STANDIN_BROKEN_DATA: '' });
    expect(again.code, again.stdout).toBe(0);
    expect(again.lines.find((l) => l.step === 'format')?.msg).toMatch(/our filesystem, empty/);
    expect(lastUp(w)).toEqual({ UPLOAD_LOCATION: '/srv/immich/library', DB_DATA_LOCATION: '/srv/immich/postgres' });
  }, 180_000);
});

function readdirSafe(dir: string): string[] {
  return sh(`ls -A '${dir}'`).split('\n').filter(Boolean);
}

/** config.yaml, .env and fstab as they were, nothing mounted, the stack's last start on the old data, Immich answering. */
async function expectBackOnOldData(w: World, before: Record<string, string>): Promise<void> {
  expect(files(w.root)).toEqual(before);
  expect(mounted(`${w.root}/srv/immich`)).toBe(false);
  expect(existsSync(`${w.root}/run/immich-firstboot-attach`)).toBe(false);
  expect(lastUp(w)).toEqual({ UPLOAD_LOCATION: '/opt/immich/library', DB_DATA_LOCATION: '/opt/immich/postgres' });
  expect(await pong(w.port)).toBe(true);
  // The disk holds no copy: mounted read-only, nothing but lost+found and our marker.
  const part = `${w.root}/dev/${path.basename(w.dev)}p1`;
  const mnt = mkdtempSync(path.join(os.tmpdir(), 'ifb-check-'));
  sh(`mount -o ro ${part} ${mnt}`);
  try {
    expect(readdirSafe(mnt).filter((n) => n !== 'lost+found' && n !== '.immich-firstboot')).toEqual([]);
    // Nor the secret: the copy of .env went with the data.
    expect(existsSync(`${mnt}/.immich-firstboot/env`)).toBe(false);
  } finally {
    sh(`umount ${mnt}`);
    rmSync(mnt, { recursive: true });
  }
}
