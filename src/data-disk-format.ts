// The data disk formatted: the plan's UUIDs chosen before a byte is written, one GPT partition and ext4 made only
// on a blank disk (or one the plan began), and the error for a disk that is not ours to format.

import { shown, tool } from './block-devices.js';
import { kernelDiskOf, type DataDisk } from './data-disk-find.js';
import {
  DATA_LABEL,
  hostNode,
  inspectDisk,
  rereadPartitions,
  type DiskInspection,
  type FormatPlan,
  type Partition,
} from './data-disk-inspect.js';
import { FirstbootError } from './errors.js';
import type { System } from './system/index.js';

const gib = (bytes: number): string => `${(bytes / 2 ** 30).toFixed(1)} GiB`;

/** A random version-4 UUID from the CSPRNG (the filesystem's and the partition table's). */
export function newUuid(sys: Pick<System, 'randomBytes'>): string {
  const b = sys.randomBytes(16);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export function newFormatPlan(sys: Pick<System, 'randomBytes'>): FormatPlan {
  return { ptuuid: newUuid(sys), uuid: newUuid(sys) };
}

/**
 * Formats a blank disk (or finishes one the plan began): one GPT partition named immich-data, ext4 with the
 * plan's UUID. Never runs mkfs where anything is found: a disk that is not blank is refused before sgdisk.
 */
export async function formatDisk(
  sys: System,
  disk: DataDisk,
  plan: FormatPlan,
): Promise<{ partition: Partition; uuid: string }> {
  let seen = await inspectDisk(sys, disk, plan);
  if (seen.kind === 'ours' && seen.uuid === plan.uuid) return { partition: seen.partition, uuid: seen.uuid };
  if (seen.kind === 'blank') {
    await tool(sys, 'sgdisk', [
      `--disk-guid=${plan.ptuuid}`,
      '--new=1:0:0',
      '--typecode=1:8300',
      `--change-name=1:${DATA_LABEL}`,
      hostNode(sys, disk.device),
    ]);
    sys.crashPoint('data-disk:partitioned');
    const parts = await rereadPartitions(sys, disk, await kernelDiskOf(sys, disk));
    if (parts.length !== 1)
      throw new FirstbootError(
        'data-disk-tool-failed',
        `the kernel does not show the partition sgdisk made on ${shown(disk.device)} (${parts.length} partitions after partx -u and 10 s)`,
        {
          hint: `check \`lsblk ${disk.device}\` and \`dmesg\`, then run \`immich-firstboot\` again: the disk is recognised as ours and finished`,
        },
      );
    seen = await inspectDisk(sys, disk, plan);
  }
  if (seen.kind !== 'partitioned') throw notBlank(disk, seen);
  await tool(
    sys,
    'mkfs.ext4',
    ['-q', '-L', DATA_LABEL, '-U', plan.uuid, hostNode(sys, seen.partition.node)],
    [0],
    30 * 60_000,
  );
  sys.crashPoint('data-disk:formatted');
  return { partition: seen.partition, uuid: plan.uuid };
}

/** The error for a disk that is not ours to format, naming it, what is on it and the fix. */
export function notBlank(disk: DataDisk, seen: DiskInspection): FirstbootError {
  const named = `${disk.link} (${shown(disk.device)}, ${gib(disk.sizeBytes)})`;
  if (seen.kind === 'in-use')
    return new FirstbootError('data-disk-in-use', `${named} is in use: ${seen.what}; nothing was written`, {
      hint: 'free it (umount, swapoff, vgchange -an) or name another LUN in dataDisk, then run `immich-firstboot` again',
    });
  const what = seen.kind === 'foreign' ? seen.what : seen.kind;
  return new FirstbootError(
    'data-disk-foreign',
    `${named} is not blank and not ours: ${what}; it was not formatted, nothing was written to it`,
    {
      hint: `if its content is really unwanted, wipe it yourself (\`wipefs -a\` on each partition, then \`wipefs -a ${disk.device}\`), or name another LUN in dataDisk; then run \`immich-firstboot\` again`,
    },
  );
}
