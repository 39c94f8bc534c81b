// The data disk: an Azure data disk found by its LUN link, formatted only when blank (one GPT partition,
// ext4 labelled immich-data), mounted on /srv/immich by UUID with nofail, its empty mount point made
// immutable first. A disk that carries anything not ours is never written.
//
// Resumable: the partition table's GUID and the filesystem's UUID are chosen (and recorded by the caller)
// before anything is written, so a crash after sgdisk or after mkfs leaves a disk we recognise as ours and
// finish, and a filesystem that exists is never made again.

import path from 'node:path';
import {
  devKey,
  disksUnder,
  holdersOf,
  kernelDevice,
  mountedOn,
  mounts,
  parseSwaps,
  partitionsOf,
  probe,
  shown,
  signatures,
  sizeOf,
  tool,
  unescapeOctal,
  wholeDisk,
  type KernelDisk,
  type KernelPartition,
} from './block-devices.js';
import type { Config } from './config.js';
import { dbPasswordOf } from './env-file-format.js';
import { SECRET_CHARSET } from './secret.js';
import { FirstbootError } from './errors.js';
import { DISKS, PATHS } from './paths.js';
import type { System } from './system/index.js';

/** The filesystem's label and the GPT partition's name. */
export const DATA_LABEL = 'immich-data';
/** GPT's "Linux filesystem" partition type (sgdisk's 8300). */
const GPT_LINUX_FS = '0fc63daf-8483-4772-8e79-3d69d8477de4';
export const FSTAB_OPTIONS = 'defaults,nofail,x-systemd.device-timeout=10s,x-systemd.before=docker.service';
const FSTAB_COMMENT = '# immich-firstboot: the data disk (dataDisk in config.yaml); nofail: the VM boots without it';

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

const hostNode = (sys: System, inside: string): string => sys.fs.path(inside);
/** A path on the data disk's filesystem, from its root (as debugfs names it). */
const onDisk = (inside: string): string => inside.slice(PATHS.dataMount.length);
const gib = (bytes: number): string => `${(bytes / 2 ** 30).toFixed(1)} GiB`;

export function lunLinks(lun: number): string[] {
  return [`${DISKS.lunDirs[0]}/lun${lun}`, `${DISKS.lunDirs[1]}/${lun}`];
}

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

function refused(message: string, hint: string): FirstbootError {
  return new FirstbootError('data-disk-refused', `${message}; nothing was written`, {
    hint: `${hint}, then run \`immich-firstboot\` again`,
  });
}

const NAME_A_DATA_DISK = 'name the LUN of a data disk in dataDisk (`ls -l /dev/disk/azure/` shows what is attached)';

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

const kernelDiskOf = async (sys: System, disk: DataDisk): Promise<KernelDisk> => {
  const device = await kernelDevice(sys, disk);
  if (!device) throw refused(`${disk.link}: the kernel no longer has ${devKey(disk)}`, NAME_A_DATA_DISK);
  return device;
};

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
async function rereadPartitions(sys: System, disk: DataDisk, kdisk: KernelDisk): Promise<KernelPartition[]> {
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

export interface MountOutcome {
  changed: string[];
  warnings: string[];
}

/** fstab's line for the data disk (and the comment line above it). */
export function fstabLine(uuid: string): string {
  return `UUID=${uuid} ${PATHS.dataMount} ext4 ${FSTAB_OPTIONS} 0 2`;
}

/**
 * fstab with our line for `uuid` (the comment above it), every other line kept: unchanged when it is there;
 * our earlier line replaced; a line of someone else's for /srv/immich refused (undefined + the line).
 */
export function fstabWith(text: string, uuid: string): { text: string; changed: boolean } | { conflict: string } {
  const lines = text === '' ? [] : text.replace(/\n$/, '').split('\n');
  const want = fstabLine(uuid);
  const kept: string[] = [];
  let found = false;
  for (const [i, line] of lines.entries()) {
    const fields = line.trim().split(/\s+/);
    const forUs = !line.trim().startsWith('#') && fields.length >= 2 && unescapeOctal(fields[1]) === PATHS.dataMount;
    if (line === FSTAB_COMMENT) continue; // re-added above our line
    if (!forUs) {
      kept.push(line);
      continue;
    }
    if (line === want && !found) {
      kept.push(FSTAB_COMMENT, line);
      found = true;
      continue;
    }
    if (lines[i - 1] !== FSTAB_COMMENT) return { conflict: line };
    // Our own earlier line (another disk's UUID, other options): replaced below.
  }
  if (!found) kept.push(FSTAB_COMMENT, want);
  const out = `${kept.join('\n')}\n`;
  return { text: out, changed: out !== text };
}

/**
 * Mounts our filesystem on /srv/immich: the empty mount point made immutable (so nothing lands on the OS
 * disk when the disk is missing at a boot), the fstab line, the mount now, the marker (with `mark`), and
 * the library and Postgres directories. Each part is skipped when already done.
 */
export async function mountDataDisk(
  sys: System,
  target: { partition: Partition; uuid: string },
  options: { mark: boolean },
): Promise<MountOutcome> {
  const { fs } = sys;
  const outcome: MountOutcome = { changed: [], warnings: [] };
  const mountHost = hostNode(sys, PATHS.dataMount);
  const current = mountedOn(await mounts(sys), mountHost);
  if (current && devKey(current) !== devKey(target.partition))
    throw new FirstbootError(
      'data-disk-in-use',
      `${PATHS.dataMount} already has ${shown(current.source)} (${devKey(current)}, ${shown(current.fstype)}) mounted on it, not the data disk; nothing was written`,
      {
        hint: `unmount it (\`umount ${PATHS.dataMount}\`) or remove what mounts it, then run \`immich-firstboot\` again`,
      },
    );
  if (!current) {
    const info = await fs.info(PATHS.dataMount);
    if (!info) {
      await fs.mkdir(PATHS.dataMount, 0o755);
      outcome.changed.push(`created ${PATHS.dataMount}`);
    } else if (!info.isDirectory || (await fs.list(PATHS.dataMount)).length > 0) {
      throw new FirstbootError(
        'data-disk-mount-point',
        `${PATHS.dataMount} on the OS disk is ${info.isDirectory ? 'not empty' : 'not a directory'}: mounting the data disk over it would hide what is there; nothing was mounted`,
        {
          hint: `move what is in ${PATHS.dataMount} elsewhere (\`chattr -i ${PATHS.dataMount}\` first if it is immutable) and leave an empty directory, then run \`immich-firstboot\` again`,
        },
      );
    }
    // Before the first mount: once the disk is on it, chattr would mark the disk's root instead.
    const guard = await sys.exec('chattr', ['+i', mountHost], { timeoutMs: 30_000 });
    if (guard.exitCode !== 0)
      outcome.warnings.push(
        `could not make the empty mount point ${PATHS.dataMount} immutable (chattr +i: ${(guard.notFound ? 'not installed' : guard.stderr.trim().split('\n')[0]) || `exit ${guard.exitCode}`}): if the data disk is missing at a boot, Docker may create the library and Postgres there, on the OS disk`,
      );
  }

  const fstabText = (await fs.read(PATHS.fstab)) ?? '';
  const edited = fstabWith(fstabText, target.uuid);
  if ('conflict' in edited)
    throw new FirstbootError(
      'data-disk-in-use',
      `${PATHS.fstab} already mounts something on ${PATHS.dataMount}: ${shown(edited.conflict, 200)}; left as it is`,
      {
        hint: `remove or comment out that line (the data disk takes ${PATHS.dataMount}), then run \`immich-firstboot\` again`,
      },
    );
  if (edited.changed) {
    const mode = (await fs.info(PATHS.fstab, { follow: true }))?.mode ?? 0o644;
    await fs.write(PATHS.fstab, edited.text, { mode, rootOwned: true });
    outcome.changed.push(`${PATHS.fstab}: UUID=${target.uuid} on ${PATHS.dataMount}`);
    if (sys.onHost && sys.hostHasSystemd()) {
      // systemd makes srv-immich.mount from fstab; without a reload it warns that fstab changed.
      const reload = await sys.exec('systemctl', ['daemon-reload'], { timeoutMs: 120_000 });
      if (reload.exitCode !== 0)
        outcome.warnings.push(`systemctl daemon-reload failed after ${PATHS.fstab} changed: ${reload.stderr.trim()}`);
    }
  }
  sys.crashPoint('data-disk:fstab');

  if (!current) {
    // The node we checked, not UUID= (another disk may carry the same UUID: a copy of this one).
    await tool(sys, 'mount', ['-t', 'ext4', '-o', 'defaults', hostNode(sys, target.partition.node), mountHost]);
    const now = mountedOn(await mounts(sys), mountHost);
    if (!now || devKey(now) !== devKey(target.partition))
      throw new FirstbootError(
        'data-disk-not-mounted',
        `mount said it mounted the data disk on ${PATHS.dataMount}, but /proc/self/mountinfo does not show it (it shows ${now ? `${now.source} ${devKey(now)}, ${now.fstype}` : 'nothing'} there; the partition is ${target.partition.node} ${devKey(target.partition)})`,
        {
          hint: `check \`findmnt ${PATHS.dataMount}\`, then run \`immich-firstboot\` again`,
        },
      );
    outcome.changed.push(`mounted ${target.partition.node} on ${PATHS.dataMount}`);
  }
  sys.crashPoint('data-disk:mounted');

  if (options.mark && parseMarker(await fs.read(PATHS.dataMarker))?.uuid !== target.uuid) {
    await fs.mkdir(PATHS.dataMarkerDir, 0o700);
    const marker: DiskMarker = {
      formattedBy: 'immich-firstboot',
      version: 1,
      uuid: target.uuid,
      formattedAt: sys.now().toISOString(),
    };
    await fs.write(PATHS.dataMarker, `${JSON.stringify(marker, null, 2)}\n`, {
      mode: 0o644,
      rootOwned: true,
      dirMode: 0o700,
    });
    outcome.changed.push(`marked the disk as ours (${PATHS.dataMarker})`);
  }
  sys.crashPoint('data-disk:marked');
  await ensureMarkerDir(sys);
  for (const [dir, mode] of [
    [PATHS.dataUploadDir, 0o750],
    [PATHS.dataPostgresDir, 0o700],
  ] as const) {
    if (await fs.exists(dir)) continue;
    await fs.mkdir(dir, mode);
    outcome.changed.push(`created ${dir}`);
  }
  return outcome;
}

/** Our marker directory, root's alone (0700): it holds the copy of .env. */
async function ensureMarkerDir(sys: System): Promise<void> {
  const info = await sys.fs.info(PATHS.dataMarkerDir);
  if (!info) return sys.fs.mkdir(PATHS.dataMarkerDir, 0o700);
  if (!info.isDirectory)
    throw new FirstbootError('not-a-regular-file', `${PATHS.dataMarkerDir} is not a directory; left untouched`, {
      hint: `move it aside, then run \`immich-firstboot\` again`,
    });
  if (info.mode !== 0o700 || info.uid !== 0) {
    await sys.fs.chown(PATHS.dataMarkerDir, 0, 0);
    await sys.fs.chmod(PATHS.dataMarkerDir, 0o700, 'directory');
  }
}

export interface DataDiskState {
  configured: boolean;
  /** What is mounted on /srv/immich (major:minor, source), if anything. */
  mounted?: { source: string; device: string; fstype: string };
  /** The UUID in our fstab line, if there is one. */
  fstabUuid?: string;
  /** The UUID in our marker on the mounted disk, if any. */
  markerUuid?: string;
  /** The mounted filesystem's own UUID (`blkid -p`), with `probe` only: doctor's check, not every boot's. */
  mountedUuid?: string;
  usedPercent?: number;
  sizeBytes?: number;
}

/** For per-boot, status and doctor: is the configured disk mounted, by the UUID fstab names, and how full. */
export async function dataDiskState(
  sys: System,
  config: Pick<Config, 'dataDisk'>,
  options: { probe?: boolean } = {},
): Promise<DataDiskState> {
  if (config.dataDisk === 'none') return { configured: false };
  const state: DataDiskState = { configured: true };
  const fstab = (await sys.fs.read(PATHS.fstab)) ?? '';
  for (const line of fstab.split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (
      !line.trim().startsWith('#') &&
      unescapeOctal(fields[1] ?? '') === PATHS.dataMount &&
      fields[0].startsWith('UUID=')
    )
      state.fstabUuid = fields[0].slice('UUID='.length);
  }
  const now = mountedOn(await mounts(sys), hostNode(sys, PATHS.dataMount));
  if (now) {
    state.mounted = { source: now.source, device: devKey(now), fstype: now.fstype };
    state.markerUuid = parseMarker(await sys.fs.read(PATHS.dataMarker))?.uuid;
    if (options.probe && now.source.startsWith('/')) state.mountedUuid = (await probe(sys, now.source)).UUID;
    const usage = await sys.fs.usage(PATHS.dataMount);
    state.usedPercent = usage.usedPercent;
    state.sizeBytes = usage.sizeBytes;
  }
  return state;
}

/** Refuses to go on when the data disk is configured but not mounted: the OS disk underneath is not the place. */
export async function requireDataDiskMounted(sys: System, config: Pick<Config, 'dataDisk'>): Promise<void> {
  if (config.dataDisk === 'none') return;
  if (mountedOn(await mounts(sys), hostNode(sys, PATHS.dataMount))) return;
  throw new FirstbootError(
    'data-disk-not-mounted',
    `dataDisk is configured but nothing is mounted on ${PATHS.dataMount}: the library and Postgres are not written to the OS disk underneath`,
    {
      hint: `attach the data disk (or \`mount ${PATHS.dataMount}\`; \`findmnt ${PATHS.dataMount}\` shows it), then run \`immich-firstboot\` again`,
    },
  );
}

/** The DB_PASSWORD of the disk's copy of .env (validated as .env's is); undefined without a data disk or a copy. */
export async function envCopySecret(sys: System, config: Pick<Config, 'dataDisk'>): Promise<string | undefined> {
  if (config.dataDisk === 'none') return undefined;
  const copy = await sys.fs.read(PATHS.dataEnvCopy);
  if (copy === undefined) return undefined;
  const password = dbPasswordOf(copy);
  if (password === undefined || !SECRET_CHARSET.test(password))
    throw new FirstbootError(
      'data-disk-secret-missing',
      `${PATHS.dataEnvCopy} (the data disk's copy of .env) holds no usable DB_PASSWORD (a line DB_PASSWORD=<A-Za-z0-9>)`,
      {
        hint: `put the password the disk's Postgres was initialised with in ${PATHS.envFile} (the old VM's .env, or ${PATHS.credentials}), then run \`immich-firstboot\` again: the copy follows it`,
      },
    );
  return password;
}

/**
 * Keeps the disk's copy of .env equal to .env, root's alone (0600 in the 0700 marker directory), so a VM the
 * disk is attached to next knows the secret Postgres was initialised with. False when nothing changed.
 */
export async function syncEnvCopy(sys: System, config: Pick<Config, 'dataDisk'>, envText: string): Promise<boolean> {
  if (config.dataDisk === 'none') return false;
  await requireDataDiskMounted(sys, config);
  const info = await sys.fs.info(PATHS.dataEnvCopy);
  if (
    info?.isFile &&
    info.mode === 0o600 &&
    info.uid === 0 &&
    info.gid === 0 &&
    (await sys.fs.read(PATHS.dataEnvCopy)) === envText
  )
    return false;
  await ensureMarkerDir(sys);
  await sys.fs.write(PATHS.dataEnvCopy, envText, { mode: 0o600, rootOwned: true, dirMode: 0o700 });
  return true;
}

/**
 * Undoes mountDataDisk, for attach-disk's revert: the disk unmounted from /srv/immich, our fstab line (and its
 * comment) for `uuid` out with every other line kept, the guard off, and the mount point removed when the caller
 * made it (empty). What it did, one phrase each. The disk itself and what is on it are left alone.
 */
export async function unmountDataDisk(
  sys: System,
  target: { uuid: string; removeMountPoint: boolean },
): Promise<string[]> {
  const { fs } = sys;
  const done: string[] = [];
  const mountHost = hostNode(sys, PATHS.dataMount);
  if (mountedOn(await mounts(sys), mountHost)) {
    await tool(sys, 'umount', [mountHost]);
    done.push(`unmounted ${PATHS.dataMount}`);
  }
  const fstabText = await fs.read(PATHS.fstab);
  if (fstabText !== undefined) {
    const ours = (line: string): boolean => {
      const fields = line.trim().split(/\s+/);
      return fields[0] === `UUID=${target.uuid}` && unescapeOctal(fields[1] ?? '') === PATHS.dataMount;
    };
    const lines = fstabText.split('\n');
    const kept = lines.filter((line, i) => !ours(line) && !(line === FSTAB_COMMENT && ours(lines[i + 1] ?? '')));
    if (kept.length !== lines.length) {
      const mode = (await fs.info(PATHS.fstab, { follow: true }))?.mode ?? 0o644;
      await fs.write(PATHS.fstab, kept.join('\n'), { mode, rootOwned: true });
      done.push(`${PATHS.fstab}: the line for UUID=${target.uuid} removed`);
      if (sys.onHost && sys.hostHasSystemd()) await sys.exec('systemctl', ['daemon-reload'], { timeoutMs: 120_000 });
    }
  }
  const info = await fs.info(PATHS.dataMount);
  if (info?.isDirectory) {
    // The guard mountDataDisk set (a no-op where chattr is missing or the flag is not set).
    await sys.exec('chattr', ['-i', mountHost], { timeoutMs: 30_000 });
    if (target.removeMountPoint && (await fs.list(PATHS.dataMount)).length === 0) {
      await fs.remove(PATHS.dataMount);
      done.push(`${PATHS.dataMount} removed (made by this run)`);
    } else done.push(`${PATHS.dataMount} no longer immutable`);
  }
  return done;
}
