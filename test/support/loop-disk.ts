// Real block devices for the data-disk tests: a loop device over a sparse file (losetup -P -f --show, never
// a fixed /dev/loopN), put in a temp root as udev would (its node made with mknod, Azure's links relative).
// Everything attached, mounted or made immutable here is undone by release().

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  existsSync,
  openSync,
  readSync,
  closeSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface LoopDisk {
  image: string;
  /** /dev/loopN on this host. */
  device: string;
  name: string;
  major: number;
  minor: number;
}

const run = (file: string, args: string[], input?: string): string =>
  execFileSync(file, args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });

/** Runs a tool and returns its exit code and output, never throwing. */
export function tryRun(file: string, args: string[]): { code: number; stdout: string; stderr: string } {
  try {
    return { code: 0, stdout: run(file, args), stderr: '' };
  } catch (error) {
    const e = error as { status?: number; stdout?: string; stderr?: string };
    return { code: e.status ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

export class Disks {
  private readonly loops: LoopDisk[] = [];
  private readonly roots: string[] = [];
  private readonly nodes: string[] = [];
  private readonly scratch = mkdtempSync(path.join(os.tmpdir(), 'ifb-disks-'));

  /** A blank disk of `mib` MiB (a sparse file: zeros). */
  attach(mib = 64): LoopDisk {
    const image = path.join(this.scratch, `disk${this.loops.length}.img`);
    run('truncate', ['-s', `${mib}M`, image]);
    const device = run('losetup', ['-P', '-f', '--show', image]).trim();
    const name = path.basename(device);
    const [major, minor] = readFileSync(`/sys/class/block/${name}/dev`, 'utf8').trim().split(':').map(Number);
    const disk = { image, device, name, major, minor };
    this.loops.push(disk);
    return disk;
  }

  /** A temp root with the disk's node (mknod, as devtmpfs would) and the links udev's Azure rules make. */
  root(config: string): string {
    const root = mkdtempSync(path.join(os.tmpdir(), 'ifb-disk-root-'));
    this.roots.push(root);
    mkdirSync(path.join(root, 'etc/immich-firstboot'), { recursive: true });
    run('sh', ['-c', 'cat > "$1"', 'sh', path.join(root, 'etc/immich-firstboot/config.yaml')], config);
    run('sh', ['-c', 'echo 0123456789abcdef0123456789abcdef > "$1"', 'sh', path.join(root, 'etc/machine-id')]);
    run('sh', [
      '-c',
      'printf "# /etc/fstab\\nLABEL=cloudimg-rootfs / ext4 discard,errors=remount-ro 0 1\\n" > "$1"',
      'sh',
      path.join(root, 'etc/fstab'),
    ]);
    return root;
  }

  /** The disk's node in the root and the link to it (e.g. dev/disk/azure/scsi1/lun0), relative as udev's. */
  link(root: string, disk: LoopDisk, link: string): void {
    const node = path.join(root, 'dev', disk.name);
    mkdirSync(path.dirname(node), { recursive: true });
    if (!existsSync(node)) run('mknod', ['-m', '0600', node, 'b', String(disk.major), String(disk.minor)]);
    const at = path.join(root, link);
    mkdirSync(path.dirname(at), { recursive: true });
    symlinkSync(path.relative(path.dirname(at), node), at);
  }

  /** sha256 of every byte of the device. */
  sha256(disk: LoopDisk): string {
    const hash = createHash('sha256');
    const fd = openSync(disk.device, 'r');
    try {
      const buffer = Buffer.alloc(4 * 1024 * 1024);
      for (;;) {
        const n = readSync(fd, buffer, 0, buffer.length, null);
        if (n === 0) break;
        hash.update(buffer.subarray(0, n));
      }
    } finally {
      closeSync(fd);
    }
    return hash.digest('hex');
  }

  /** The partition's node on this host (/dev/loopNp1), made if devtmpfs did not. */
  partition(disk: LoopDisk, n = 1): string {
    const name = `${disk.name}p${n}`;
    const node = `/dev/${name}`;
    if (!existsSync(node)) {
      const [major, minor] = readFileSync(`/sys/class/block/${name}/dev`, 'utf8').trim().split(':');
      run('mknod', ['-m', '0600', node, 'b', major, minor]);
      this.nodes.push(node);
    }
    return node;
  }

  /** Unmounts what is mounted under a root (deepest first). */
  unmountAll(root: string): void {
    const targets = readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[4])
      .filter((t): t is string => t !== undefined && (t === root || t.startsWith(`${root}/`)))
      .sort((a, b) => b.length - a.length);
    for (const t of targets) tryRun('umount', [t]);
  }

  /** Mounts a device on a fresh temp directory, runs `work` there, unmounts. */
  withMounted<T>(device: string, work: (dir: string) => T): T {
    const dir = mkdtempSync(path.join(this.scratch, 'mnt-'));
    run('mount', [device, dir]);
    try {
      return work(dir);
    } finally {
      run('umount', [dir]);
      rmSync(dir, { recursive: true, force: true });
    }
  }

  release(): void {
    for (const root of this.roots.splice(0)) {
      this.unmountAll(root);
      tryRun('chattr', ['-i', path.join(root, 'srv/immich')]);
      rmSync(root, { recursive: true, force: true });
    }
    for (const node of this.nodes.splice(0)) rmSync(node, { force: true });
    for (const disk of this.loops.splice(0)) tryRun('losetup', ['-d', disk.device]);
    rmSync(this.scratch, { recursive: true, force: true });
  }
}
