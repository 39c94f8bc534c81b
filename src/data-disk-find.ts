// The data disk found: the Azure LUN link that names it, resolved to a whole disk, and refused (nothing
// written) when it is missing, ambiguous, a partition, the OS disk, the resource disk or the disk holding /.

import {
  devKey,
  disksUnder,
  kernelDevice,
  mountedOn,
  mounts,
  shown,
  sizeOf,
  wholeDisk,
  type KernelDisk,
} from './block-devices.js';
import { FirstbootError } from './errors.js';
import { DISKS, PATHS } from './paths.js';
import type { System } from './system/index.js';

export type DiskSelector = 'auto' | { lun: number };

export interface DataDisk {
  /** The Azure link it was found by (inside the root). */
  link: string;
  /** The disk's node, the link resolved (inside the root): /dev/sdc. */
  device: string;
  sysName: string;
  major: number;
  minor: number;
  sizeBytes: number;
}

export function lunLinks(lun: number): string[] {
  return [`${DISKS.lunDirs[0]}/lun${lun}`, `${DISKS.lunDirs[1]}/${lun}`];
}

interface Candidate {
  link: string;
  lun: number;
  device: string;
  major: number;
  minor: number;
}

/** Every LUN link under both schemes that leads to a block device, one per disk. */
async function attachedDataDisks(sys: System): Promise<Candidate[]> {
  const byDev = new Map<string, Candidate>();
  for (const [dir, pattern] of [
    [DISKS.lunDirs[0], /^lun(\d+)$/],
    [DISKS.lunDirs[1], /^(\d+)$/],
  ] as const) {
    for (const name of await sys.fs.list(dir)) {
      const lun = pattern.exec(name);
      if (!lun) continue;
      const info = await sys.fs.blockDevice(`${dir}/${name}`);
      if (info?.kind !== 'block') continue;
      const key = devKey(info);
      if (!byDev.has(key)) byDev.set(key, { link: `${dir}/${name}`, lun: Number(lun[1]), device: info.node, ...info });
    }
  }
  return [...byDev.values()].sort((a, b) => a.lun - b.lun);
}

export function refused(message: string, hint: string): FirstbootError {
  return new FirstbootError('data-disk-refused', `${message}; nothing was written`, {
    hint: `${hint}, then run \`immich-firstboot\` again`,
  });
}

export const NAME_A_DATA_DISK =
  'name the LUN of a data disk in dataDisk (`ls -l /dev/disk/azure/` shows what is attached)';

/**
 * The data disk the selector names: its link resolved, refused when it is not a whole-disk block device,
 * or is the OS disk, the resource disk or the disk holding /.
 */
export async function findDataDisk(sys: System, selector: DiskSelector): Promise<DataDisk> {
  let chosen: { link: string };
  if (selector === 'auto') {
    const found = await attachedDataDisks(sys);
    if (found.length !== 1) {
      const list = found.map((c) => `LUN ${c.lun} (${shown(c.device)})`).join(', ');
      throw new FirstbootError(
        'data-disk-ambiguous',
        found.length === 0
          ? `dataDisk is auto, but no data disk is attached (no link in ${DISKS.lunDirs.join(' or ')}); nothing was written`
          : `dataDisk is auto, but ${found.length} data disks are attached: ${list}; nothing was written`,
        {
          hint: `${found.length === 0 ? 'attach a data disk' : 'name one'} with dataDisk: { lun: N } in ${PATHS.config}, then run \`immich-firstboot\` again`,
        },
      );
    }
    chosen = found[0];
  } else {
    const links = lunLinks(selector.lun);
    const present: { link: string; node: string; dev?: string }[] = [];
    for (const link of links) {
      const info = await sys.fs.blockDevice(link);
      if (!info) continue;
      if (info.kind !== 'block')
        throw refused(
          `${link} leads to ${shown(info.node)}, which is ${info.what}, not a block device`,
          NAME_A_DATA_DISK,
        );
      present.push({ link, node: info.node, dev: devKey(info) });
    }
    if (present.length === 0) {
      throw new FirstbootError(
        'data-disk-not-found',
        `no disk is attached at LUN ${selector.lun}: neither ${links.join(' nor ')} exists; nothing was written`,
        {
          hint: `attach a disk at LUN ${selector.lun} (\`az vm disk attach --lun ${selector.lun} ...\`) or correct dataDisk in ${PATHS.config} (\`ls -l /dev/disk/azure/\` shows what is attached), then run \`immich-firstboot\` again`,
        },
      );
    }
    if (present.length === 2 && present[0].dev !== present[1].dev)
      throw refused(
        `${present[0].link} (${shown(present[0].node)}) and ${present[1].link} (${shown(present[1].node)}) name different disks for LUN ${selector.lun}`,
        'check the udev rules (WALinuxAgent and azure-vm-utils disagree)',
      );
    chosen = present[0];
  }
  return checkedDisk(sys, chosen.link);
}

async function checkedDisk(sys: System, link: string): Promise<DataDisk> {
  const info = await sys.fs.blockDevice(link);
  if (info?.kind !== 'block') throw refused(`${link} does not lead to a block device`, NAME_A_DATA_DISK);
  const device = await kernelDevice(sys, info);
  const named = `${link} (${shown(info.node)}, ${devKey(info)})`;
  if (!device) throw refused(`${named}: the kernel has no block device ${devKey(info)}`, NAME_A_DATA_DISK);
  if (device.partition)
    throw refused(`${named} is a partition (${shown(device.sysName)}), not a whole disk`, NAME_A_DATA_DISK);
  for (const other of DISKS.refusedLinks) {
    const at = await sys.fs.blockDevice(other);
    const disk = at?.kind === 'block' ? await wholeDisk(sys, at) : undefined;
    if (disk && devKey(disk) === devKey(device)) {
      const which = other.endsWith('resource')
        ? 'the resource disk (Azure wipes it when the VM is deallocated)'
        : 'the OS disk';
      throw refused(`${named} is ${which}, as ${other} says`, NAME_A_DATA_DISK);
    }
  }
  const root = mountedOn(await mounts(sys), '/');
  if (root && root.major !== 0) {
    for (const disk of await disksUnder(sys, root))
      if (devKey(disk) === devKey(device)) throw refused(`${named} holds / (the running system)`, NAME_A_DATA_DISK);
  }
  return {
    link,
    device: info.node,
    sysName: device.sysName,
    major: device.major,
    minor: device.minor,
    sizeBytes: await sizeOf(sys, device),
  };
}

export const kernelDiskOf = async (sys: System, disk: DataDisk): Promise<KernelDisk> => {
  const device = await kernelDevice(sys, disk);
  if (!device) throw refused(`${disk.link}: the kernel no longer has ${devKey(disk)}`, NAME_A_DATA_DISK);
  return device;
};
