// per-boot and the data disk, on a real loop device in a temp --root after a real first boot with
// dataDisk: { lun: 0 }: the disk missing at a boot (nothing mounted on /srv/immich) is a warning in
// `status` and the MOTD saying what to do, nothing is written under the empty mount point, and the
// warning goes once a boot finds the disk mounted again. The every-boot fast path reads
// /proc/self/mountinfo once with a data disk, and not at all without one (strace).
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BUNDLE, runCli } from '../support/cli.js';
import { Disks, type LoopDisk } from '../support/loop-disk.js';
import { makeRoot } from '../support/root.js';
import { STRACE_NEEDED } from '../support/strace.js';

const LUN0 = 'dev/disk/azure/scsi1/lun0';
const CONFIG = 'imds:\n  enabled: false\ndataDisk: { lun: 0 }\n';
const MISSING =
  "the data disk at LUN 0 is not mounted on /srv/immich at this boot (missing, or it did not mount): Immich's library and Postgres are on it, so Immich is down; nothing was written to the empty mount point";
const WHAT_TO_DO =
  'reattach the data disk at LUN 0 (`ls -l /dev/disk/azure/` shows what is attached; `journalctl -b -u srv-immich.mount` says why it did not mount), then `mount /srv/immich` and `cd /opt/immich && docker compose -p immich up -d` (or reboot)';

let disks: Disks;
beforeEach(() => {
  disks = new Disks();
});
afterEach(() => disks.release());
beforeAll(() => {
  if (!existsSync(BUNDLE)) throw new Error('run `npm run build` first (npm test does)');
});

/** A root after a first boot (--skip-stack) that put the library and Postgres on a blank loop disk at LUN 0. */
async function onDataDisk(): Promise<{ root: string; disk: LoopDisk; mountPoint: string }> {
  const disk = disks.attach();
  const root = disks.root(CONFIG);
  disks.link(root, disk, LUN0);
  const run = await runCli(['--root', root, 'run', '--skip-stack']);
  if (run.code !== 0) throw new Error(`first boot failed: ${run.stdout}${run.stderr}`);
  return { root, disk, mountPoint: path.join(root, 'srv/immich') };
}

const status = async (root: string) =>
  JSON.parse((await runCli(['--root', root, 'status', '--json'])).stdout) as {
    status: string;
    warnings: { step: string; message: string; hint?: string }[];
  };
const motd = async (root: string) => (await runCli(['--root', root, 'motd'])).stdout;

/** Every file, directory and link under the root (the mounted disk's included) with its content and times; device nodes by their number. */
function snapshot(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const full = path.join(dir, name);
      const st = lstatSync(full);
      const meta = `${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} ${st.mtimeMs} ${st.ctimeMs}`;
      const key = path.relative(root, full);
      if (st.isSymbolicLink()) out[key] = `${meta} -> ${readlinkSync(full)}`;
      else if (st.isDirectory()) {
        out[key] = `${meta} dir`;
        walk(full);
      } else if (st.isFile()) out[key] = `${meta} ${readFileSync(full, 'utf8')}`;
      else out[key] = `${meta} device ${st.rdev}`;
    }
  };
  walk(root);
  return out;
}

/** The files per-boot opened (strace openat), and its stdout. */
function tracedPerBoot(root: string): { opened: string[]; stdout: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ifb-strace-'));
  try {
    const trace = path.join(dir, 'openat.log');
    const run = spawnSync(
      'strace',
      ['-f', '-qq', '-e', 'trace=openat,open', '-o', trace, process.execPath, BUNDLE, '--root', root, 'per-boot'],
      { encoding: 'utf8', env: { PATH: process.env.PATH } },
    );
    expect(run.error, STRACE_NEEDED).toBeUndefined();
    expect(run.status, run.stderr).toBe(0);
    const opened = readFileSync(trace, 'utf8')
      .split('\n')
      .map((l) => /open(?:at)?\((?:AT_FDCWD, )?"([^"]+)"/.exec(l)?.[1])
      .filter((f): f is string => f !== undefined);
    return { opened, stdout: run.stdout };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('per-boot with a data disk', () => {
  it('when the disk is mounted: nothing to do, nothing written, one read of /proc/self/mountinfo', async () => {
    const { root } = await onDataDisk();
    const before = snapshot(root);
    const { opened, stdout } = tracedPerBoot(root);
    expect(stdout).toContain('per-boot check: same instance, same addresses; nothing to do');
    expect(opened.filter((f) => f.endsWith('/mountinfo'))).toEqual(['/proc/self/mountinfo']);
    expect(snapshot(root)).toEqual(before);
  });

  it('without a data disk (dataDisk: none) reads no mountinfo at all', async () => {
    const root = makeRoot();
    const run = await runCli(['--root', root, 'run', '--skip-stack']);
    expect(run.code, run.stdout).toBe(0);
    const { opened, stdout } = tracedPerBoot(root);
    expect(stdout).toContain('nothing to do');
    expect(opened.filter((f) => f.includes('mountinfo'))).toEqual([]);
  });

  it('when the disk is missing at boot: a warning in status and the MOTD saying what to do, nothing written under the empty mount point; cleared once it is back', async () => {
    const { root, disk, mountPoint } = await onDataDisk();
    disks.unmountAll(root);
    expect(readdirSync(mountPoint)).toEqual([]);

    const missing = await runCli(['--root', root, 'per-boot']);
    expect(missing.code, missing.stdout).toBe(0);
    expect(missing.lines.find((l) => l.level === 40)).toMatchObject({ msg: MISSING, hint: WHAT_TO_DO });
    expect(readdirSync(mountPoint)).toEqual([]);
    const report = await status(root);
    expect(report.status).toBe('done');
    expect(report.warnings).toEqual([
      { step: 'per-boot-data-disk', at: expect.any(String), message: MISSING, hint: WHAT_TO_DO },
    ]);
    expect((await runCli(['--root', root, 'status'])).stdout).toContain(
      `warning: [per-boot-data-disk] ${MISSING}\n  hint: ${WHAT_TO_DO}\n`,
    );
    expect(await motd(root)).toContain(`WARNING: ${MISSING}\n  what to do: ${WHAT_TO_DO}\n`);

    // Reattached and mounted (as `mount /srv/immich` or the next boot does): the next per-boot clears it.
    spawnSync('mount', [disks.partition(disk), mountPoint]);
    const back = await runCli(['--root', root, 'per-boot']);
    expect(back.code, back.stdout).toBe(0);
    expect(back.lines.map((l) => l.msg)).toContain(
      'the data disk is mounted on /srv/immich again; its warning is cleared',
    );
    expect((await status(root)).warnings).toEqual([]);
    expect(await motd(root)).not.toContain('WARNING');
    // And the boot after that is the fast path again.
    expect((await runCli(['--root', root, 'per-boot'])).stdout).toContain('nothing to do');
  });

  it('when the disk is missing but the unit sandbox bind-mounts the empty mount point onto itself (ReadWritePaths=): still missing', async () => {
    const { root, mountPoint } = await onDataDisk();
    disks.unmountAll(root);
    // What systemd does for the per-boot unit's ReadWritePaths=-/srv/immich: a bind of the OS disk's directory.
    expect(spawnSync('mount', ['--bind', mountPoint, mountPoint]).status).toBe(0);
    try {
      const missing = await runCli(['--root', root, 'per-boot']);
      expect(missing.code, missing.stdout).toBe(0);
      expect(missing.lines.find((l) => l.level === 40)).toMatchObject({ msg: MISSING, hint: WHAT_TO_DO });
      expect(readdirSync(mountPoint)).toEqual([]);
    } finally {
      spawnSync('umount', [mountPoint]);
    }
  });

  it('on a clone whose disk is missing: the secret is not decided (Postgres is on the disk), nothing is made new until a boot with the disk', async () => {
    const { root } = await onDataDisk();
    disks.unmountAll(root);
    const env = readFileSync(path.join(root, 'opt/immich/.env'), 'utf8');
    const stamp = readFileSync(path.join(root, 'var/lib/immich-firstboot/done'), 'utf8');
    rmSync(path.join(root, 'etc/machine-id'));
    spawnSync('sh', ['-c', 'echo fedcba9876543210fedcba9876543210 > "$1"', 'sh', path.join(root, 'etc/machine-id')]);
    const run = await runCli(['--root', root, 'per-boot']);
    expect(run.code, run.stdout).toBe(0);
    expect(run.lines.map((l) => l.msg)).toContain(
      "this VM is a clone, but its data disk is missing: handled at a boot with the disk mounted (/srv/immich holds Postgres's data, which decides the secret)",
    );
    expect(readFileSync(path.join(root, 'opt/immich/.env'), 'utf8')).toBe(env);
    expect(readFileSync(path.join(root, 'var/lib/immich-firstboot/done'), 'utf8')).toBe(stamp);
    expect(readdirSync(path.join(root, 'srv/immich'))).toEqual([]);
  });
});
