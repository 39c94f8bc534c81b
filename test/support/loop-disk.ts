// A loop device as an Azure data disk inside a test root: a sparse file attached with `losetup -f --show`
// (never a fixed /dev/loopN), its node made in the root with the real device's major:minor, and the LUN
// link to it as WALinuxAgent's udev rules make it (`dev/disk/azure/scsi1/lun<N> -> ../../../loopM`).

import { execFileSync, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface LoopDisk {
  /** The loop device's host node (/dev/loop7). */
  dev: string;
  /** Unmounts what a test mounted from it in the root, removes the guard, detaches the device. */
  detach(): void;
}

const mounted = (dir: string): boolean => spawnSync('mountpoint', ['-q', dir]).status === 0;

export function attachLoopDisk(root: string, bytes: number, lun = 0): LoopDisk {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ifb-disk-'));
  const backing = path.join(dir, 'disk.img');
  writeFileSync(backing, '');
  truncateSync(backing, bytes);
  const dev = execFileSync('losetup', ['-f', '--show', backing], { encoding: 'utf8' }).trim();
  const name = path.basename(dev);
  // A partition the kernel kept from this device's last use (partx adds them; detaching does not drop them).
  dropPartitions(dev);
  const [major, minor] = readFileSync(`/sys/class/block/${name}/dev`, 'utf8').trim().split(':');
  mkdirSync(`${root}/dev/disk/azure/scsi1`, { recursive: true });
  execFileSync('mknod', [`${root}/dev/${name}`, 'b', major, minor]);
  symlinkSync(`../../../${name}`, `${root}/dev/disk/azure/scsi1/lun${lun}`);
  return {
    dev,
    detach() {
      for (const where of [`${root}/srv/immich`, `${root}/run/immich-firstboot-attach`])
        if (existsSync(where) && mounted(where)) execFileSync('umount', [where]);
      spawnSync('chattr', ['-i', `${root}/srv/immich`]);
      dropPartitions(dev);
      execFileSync('losetup', ['-d', dev]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function dropPartitions(dev: string): void {
  const name = path.basename(dev);
  if (readdirSync(`/sys/class/block/${name}`).some((entry) => entry.startsWith(`${name}p`)))
    execFileSync('partx', ['-d', dev]);
}
