// What is on the data disk, read without writing to it: blank, ours (our GPT entry, ext4 labelled immich-data,
// our marker), a disk we began, foreign or in use; and the partition nodes and table re-read it needs.

import path from 'node:path';
import {
  devKey,
  holdersOf,
  mountedOn,
  mounts,
  parseSwaps,
  partitionsOf,
  probe,
  shown,
  signatures,
  tool,
  type KernelDisk,
  type KernelPartition,
} from './block-devices.js';
import { kernelDiskOf, refused, type DataDisk } from './data-disk-find.js';
import { DISKS, PATHS } from './paths.js';
import type { System } from './system/index.js';

/** The filesystem's label and the GPT partition's name. */
export const DATA_LABEL = 'immich-data';
/** GPT's "Linux filesystem" partition type (sgdisk's 8300). */
const GPT_LINUX_FS = '0fc63daf-8483-4772-8e79-3d69d8477de4';

export interface Partition {
  /** Its node inside the root, beside the disk's: /dev/sdc1. */
  node: string;
  major: number;
  minor: number;
}

/** What we chose before writing a byte: recorded by the caller so a rerun knows the disk it began. */
export interface FormatPlan {
  /** The GPT disk GUID given to sgdisk. */
  ptuuid: string;
  /** The ext4 UUID given to mkfs. */
  uuid: string;
}

export type DiskInspection =
  | { kind: 'blank' }
  /** Our partition table (its GUID is the plan's), no filesystem yet: a run that stopped before mkfs. */
  | { kind: 'partitioned'; partition: Partition }
  | {
      kind: 'ours';
      partition: Partition;
      uuid: string;
      /** Our marker (disk.json with this UUID) is on it; false only for the plan's own disk before the marker. */
      marked: boolean;
      hasPostgresData: boolean;
      /** Mounted on /srv/immich now. */
      mounted: boolean;
    }
  | { kind: 'foreign'; what: string }
  | { kind: 'in-use'; what: string };

/** The marker we write on a disk we formatted. */
export interface DiskMarker {
  formattedBy: 'immich-firstboot';
  version: 1;
  uuid: string;
  formattedAt: string;
}

export const hostNode = (sys: System, inside: string): string => sys.fs.path(inside);
/** A path on the data disk's filesystem, from its root (as debugfs names it). */
const onDisk = (inside: string): string => inside.slice(PATHS.dataMount.length);

/** Mounted elsewhere, held (LVM, RAID, dm-crypt) or swap: the disk or one of its partitions is in use. */
async function inUse(sys: System, disk: KernelDisk, parts: KernelPartition[]): Promise<string | undefined> {
  const mine = new Map([disk, ...parts].map((d) => [devKey(d), d]));
  const mountTarget = hostNode(sys, PATHS.dataMount);
  for (const m of await mounts(sys)) {
    const d = mine.get(devKey(m));
    if (d && m.target !== mountTarget) return `${shown(d.sysName)} is mounted on ${shown(m.target)}`;
  }
  for (const d of mine.values()) {
    const holders = await holdersOf(sys, d);
    if (holders.length) return `${shown(d.sysName)} is held by ${holders.map((h) => shown(h)).join(', ')}`;
  }
  const swaps = parseSwaps((await sys.kernel.read(DISKS.swaps)) ?? '');
  for (const d of mine.values()) if (swaps.includes(d.sysName)) return `${shown(d.sysName)} is in use as swap`;
  return undefined;
}

/** What blkid says is on a device, for a person: type and label only (a plain type as it is, else quoted). */
function described(values: Record<string, string>): string {
  const type = values.TYPE ?? values.PTTYPE;
  if (!type) return 'no filesystem';
  const name = /^[A-Za-z0-9_.-]{1,32}$/.test(type) ? type : shown(type);
  const label = values.LABEL ? ` labelled ${shown(values.LABEL)}` : '';
  return values.PTTYPE && !values.TYPE ? `partition table ${name}` : `filesystem ${name}${label}`;
}

/**
 * Looks at the disk without writing to it: blank (neither `blkid -p` nor `wipefs -n` finds anything, and
 * the kernel sees no partition), ours, a disk we began (the plan's partition table), foreign, or in use.
 */
export async function inspectDisk(sys: System, disk: DataDisk, plan?: FormatPlan): Promise<DiskInspection> {
  const kdisk = await kernelDiskOf(sys, disk);
  let parts = await partitionsOf(sys, kdisk);
  const busy = await inUse(sys, kdisk, parts);
  if (busy) return { kind: 'in-use', what: busy };
  const top = await probe(sys, hostNode(sys, disk.device));
  const sigs = await signatures(sys, hostNode(sys, disk.device));
  if (Object.keys(top).length === 0 && sigs.length === 0 && parts.length === 0) return { kind: 'blank' };
  const ourTable = top.PTTYPE === 'gpt' && top.PTUUID !== undefined && top.PTUUID === plan?.ptuuid;
  if (ourTable && parts.length === 0) {
    // Written by us before a crash, before the kernel re-read it.
    parts = await rereadPartitions(sys, disk, kdisk);
  }
  const describeAll = async (): Promise<string> => {
    const pieces = [described(top)];
    if (!top.TYPE && !top.PTTYPE && sigs.length) pieces[0] = `signatures ${sigs.map((s) => shown(s)).join(', ')}`;
    for (const part of parts) {
      const values = await probe(sys, hostNode(sys, await partitionNode(sys, disk, part)));
      pieces.push(`partition ${part.number} (${shown(part.sysName)}): ${described(values)}`);
    }
    return pieces.join('; ');
  };
  if (top.PTTYPE !== 'gpt' || top.TYPE || parts.length !== 1) return { kind: 'foreign', what: await describeAll() };

  const partition = await partitionNode(sys, disk, parts[0]);
  const values = await probe(sys, hostNode(sys, partition));
  const part: Partition = { node: partition, major: parts[0].major, minor: parts[0].minor };
  const ourEntry = values.PART_ENTRY_NAME === DATA_LABEL && values.PART_ENTRY_TYPE?.toLowerCase() === GPT_LINUX_FS;
  if (ourEntry && values.TYPE === 'ext4' && values.LABEL === DATA_LABEL && values.UUID) {
    const mounted = mountedOn(await mounts(sys), hostNode(sys, PATHS.dataMount));
    const isMounted = mounted !== undefined && devKey(mounted) === devKey(part);
    const marker = parseMarker(await readOnDisk(sys, part, isMounted, PATHS.dataMarker));
    const marked = marker?.uuid === values.UUID;
    if (marked || values.UUID === plan?.uuid) {
      const pgVersion = await readOnDisk(sys, part, isMounted, `${PATHS.dataPostgresDir}/PG_VERSION`);
      return {
        kind: 'ours',
        partition: part,
        uuid: values.UUID,
        marked,
        hasPostgresData: pgVersion !== undefined,
        mounted: isMounted,
      };
    }
    return {
      kind: 'foreign',
      what: `${await describeAll()}, without our marker (${PATHS.dataMarker})`,
    };
  }
  if (ourEntry && ourTable && !values.TYPE && (await signatures(sys, hostNode(sys, partition))).length === 0)
    return { kind: 'partitioned', partition: part };
  return { kind: 'foreign', what: await describeAll() };
}

/** A file on the disk's filesystem: through the mount when mounted, else read by debugfs (no mount, no write). */
async function readOnDisk(
  sys: System,
  partition: Partition,
  mounted: boolean,
  inside: string,
): Promise<string | undefined> {
  if (mounted) return (await sys.fs.info(inside))?.isFile ? sys.fs.read(inside) : undefined;
  // -c: catastrophic mode, read-only, bitmaps not read; a missing file is "File not found" on stderr.
  const result = await tool(sys, 'debugfs', ['-c', '-R', `cat ${onDisk(inside)}`, hostNode(sys, partition.node)]);
  return /File not found|not a regular file/i.test(result.stderr) ? undefined : result.stdout;
}

export function parseMarker(text: string | undefined): DiskMarker | undefined {
  if (text === undefined) return undefined;
  try {
    const value = JSON.parse(text) as Partial<DiskMarker>;
    return value.formattedBy === 'immich-firstboot' && typeof value.uuid === 'string'
      ? (value as DiskMarker)
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A partition's node inside the root, beside the disk's (/dev/sdc → /dev/sdc1, the kernel's name): made
 * with mknod from sysfs's major:minor when missing, as udev would (containers and test roots have no udev).
 */
async function partitionNode(sys: System, disk: DataDisk, part: KernelPartition): Promise<string> {
  const node = `${path.posix.dirname(disk.device)}/${part.sysName}`;
  const info = await sys.fs.blockDevice(node);
  if (info?.kind === 'block' && devKey(info) === devKey(part)) return node;
  if (info)
    throw refused(
      `${shown(node)} is not the partition ${devKey(part)} the kernel has (${info.kind === 'block' ? devKey(info) : info.what})`,
      `remove ${node} (udev makes it again)`,
    );
  await tool(sys, 'mknod', ['-m', '0600', hostNode(sys, node), 'b', String(part.major), String(part.minor)]);
  return node;
}

/** Makes the kernel read a partition table we wrote, and waits (bounded) for the partition to appear. */
export async function rereadPartitions(sys: System, disk: DataDisk, kdisk: KernelDisk): Promise<KernelPartition[]> {
  const node = hostNode(sys, disk.device);
  // partx -u adds the partitions one by one (BLKPG), where a busy disk refuses a whole re-read.
  const partx = await sys.exec('partx', ['-u', node], { timeoutMs: 60_000 });
  if (partx.exitCode !== 0) await sys.exec('blockdev', ['--rereadpt', node], { timeoutMs: 60_000 });
  await sys.exec('udevadm', ['settle', '--timeout=10'], { timeoutMs: 15_000 }); // absent without udev: fine
  for (let i = 0; i < 50; i++) {
    const parts = await partitionsOf(sys, kdisk);
    if (parts.length > 0) return parts;
    await sys.sleep(200);
  }
  return [];
}
