// Block devices as the running kernel and util-linux see them: sysfs (a disk, its partitions, its
// holders), /proc/self/mountinfo, /proc/swaps, and `blkid -p`/`wipefs -n` (what is written on a device).
// Read-only: nothing here writes to a disk. Everything a disk says (labels, types) is the disk's text.

import { DISKS } from './paths.js';
import { FirstbootError } from './errors.js';
import { printable } from './redact.js';
import type { System } from './system/index.js';

export interface DevNumber {
  major: number;
  minor: number;
}

export const devKey = (d: DevNumber): string => `${d.major}:${d.minor}`;

/** A string from a disk or a link, for a message: control characters escaped, length bounded, quoted. */
export function shown(text: string, max = 64): string {
  const cut = text.length > max ? `${text.slice(0, max)}...` : text;
  return `"${printable(cut).replace(/"/g, '\\"')}"`;
}

export interface MountEntry extends DevNumber {
  /** The mount point, as the host sees it (octal escapes decoded). */
  target: string;
  fstype: string;
  source: string;
}

/** /proc/self/mountinfo's lines (proc(5)): "id parent major:minor root target options ... - fstype source super". */
export function parseMountinfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    const dash = fields.indexOf('-');
    const dev = /^(\d+):(\d+)$/.exec(fields[2] ?? '');
    if (!dev || dash < 6 || fields.length < dash + 3) continue;
    entries.push({
      major: Number(dev[1]),
      minor: Number(dev[2]),
      target: unescapeOctal(fields[4]),
      fstype: fields[dash + 1],
      source: unescapeOctal(fields[dash + 2]),
    });
  }
  return entries;
}

/** mountinfo and fstab write a space as \040, a tab as \011, a newline as \012, a backslash as \134. */
export function unescapeOctal(text: string): string {
  return text.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

export async function mounts(sys: System): Promise<MountEntry[]> {
  return parseMountinfo((await sys.kernel.read(DISKS.mountinfo)) ?? '');
}

/** What is mounted on `hostTarget` now (the last mount there is the one in sight), if anything. */
export function mountedOn(entries: readonly MountEntry[], hostTarget: string): MountEntry | undefined {
  return entries.filter((m) => m.target === hostTarget).at(-1);
}

/** The device names /proc/swaps lists (/dev/sdc1 → sdc1), its header skipped. */
export function parseSwaps(text: string): string[] {
  return text
    .split('\n')
    .slice(1)
    .map((line) => line.split(/\s+/)[0])
    .filter((name) => name?.startsWith(`${DISKS.dev}/`))
    .map((name) => unescapeOctal(name).slice(DISKS.dev.length + 1));
}

export interface KernelDisk extends DevNumber {
  /** The kernel's name for it (sdc, nvme0n2, loop3). */
  sysName: string;
  /** Its sysfs directory (a host path). */
  sysPath: string;
}

export interface KernelPartition extends KernelDisk {
  number: number;
}

const sysPathOf = (d: DevNumber): string => `${DISKS.sysBlockDev}/${devKey(d)}`;

function parseDev(text: string | undefined): DevNumber | undefined {
  const match = /^(\d+):(\d+)\s*$/.exec(text ?? '');
  return match ? { major: Number(match[1]), minor: Number(match[2]) } : undefined;
}

/** The kernel's block device with this number; undefined when there is none. */
export async function kernelDevice(
  sys: System,
  dev: DevNumber,
): Promise<(KernelDisk & { partition: boolean }) | undefined> {
  const sysPath = await sys.kernel.realpath(sysPathOf(dev));
  if (!sysPath) return undefined;
  const partition = (await sys.kernel.read(`${sysPath}/partition`)) !== undefined;
  return { ...dev, sysName: sysPath.slice(sysPath.lastIndexOf('/') + 1), sysPath, partition };
}

/** The whole disk a device is (or is a partition of). */
export async function wholeDisk(sys: System, dev: DevNumber): Promise<KernelDisk | undefined> {
  const device = await kernelDevice(sys, dev);
  if (!device?.partition) return device;
  const parent = device.sysPath.slice(0, device.sysPath.lastIndexOf('/'));
  const parentDev = parseDev(await sys.kernel.read(`${parent}/dev`));
  return parentDev ? kernelDevice(sys, parentDev) : undefined;
}

/** The partitions the kernel knows on a disk (sysfs subdirectories with a `partition` file). */
export async function partitionsOf(sys: System, disk: KernelDisk): Promise<KernelPartition[]> {
  const found: KernelPartition[] = [];
  for (const name of await sys.kernel.list(disk.sysPath)) {
    const number = Number((await sys.kernel.read(`${disk.sysPath}/${name}/partition`))?.trim());
    const dev = parseDev(await sys.kernel.read(`${disk.sysPath}/${name}/dev`));
    if (Number.isInteger(number) && number > 0 && dev)
      found.push({ ...dev, sysName: name, sysPath: `${disk.sysPath}/${name}`, number });
  }
  return found.sort((a, b) => a.number - b.number);
}

/** The devices holding this one (LVM, RAID, dm-crypt): sysfs's holders/. */
export async function holdersOf(sys: System, device: KernelDisk): Promise<string[]> {
  return sys.kernel.list(`${device.sysPath}/holders`);
}

/** The whole disks a filesystem's device sits on: through device-mapper and RAID (slaves/) down to disks. */
export async function disksUnder(sys: System, dev: DevNumber, depth = 0): Promise<KernelDisk[]> {
  const device = await kernelDevice(sys, dev);
  if (!device || depth > 8) return [];
  const slaves = await sys.kernel.list(`${device.sysPath}/slaves`);
  if (slaves.length === 0) {
    const disk = await wholeDisk(sys, dev);
    return disk ? [disk] : [];
  }
  const below: KernelDisk[] = [];
  for (const slave of slaves) {
    const slaveDev = parseDev(await sys.kernel.read(`${device.sysPath}/slaves/${slave}/dev`));
    if (slaveDev) below.push(...(await disksUnder(sys, slaveDev, depth + 1)));
  }
  return below;
}

/** A disk's size in bytes (sysfs counts 512-byte sectors whatever the disk's own sector size). */
export async function sizeOf(sys: System, disk: KernelDisk): Promise<number> {
  return Number((await sys.kernel.read(`${disk.sysPath}/size`))?.trim() ?? 0) * 512;
}

/** `blkid -p -o export` (low-level probe, no cache): KEY=VALUE lines; {} when it finds nothing (exit 2). */
export async function probe(sys: System, hostNode: string): Promise<Record<string, string>> {
  const result = await tool(sys, 'blkid', ['-p', '-o', 'export', hostNode], [0, 2]);
  if (result.exitCode === 2) return {};
  return parseExport(result.stdout);
}

/** blkid's export format: KEY=VALUE, the value with shell-special characters backslash-escaped. */
export function parseExport(text: string): Record<string, string> {
  const values: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) values[line.slice(0, eq)] = line.slice(eq + 1).replace(/\\(.)/g, '$1');
  }
  return values;
}

/** The signatures `wipefs -n` finds (each its type, e.g. gpt, PMBR, ext4); [] when none. */
export async function signatures(sys: System, hostNode: string): Promise<string[]> {
  const result = await tool(sys, 'wipefs', ['--no-act', '--parsable', hostNode]);
  // offset,uuid,label,type: the type is last, and a label may hold commas.
  return result.stdout
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.startsWith('#'))
    .map((line) => line.slice(line.lastIndexOf(',') + 1));
}

/** Runs a disk tool; a missing tool or an exit outside `ok` is data-disk-tool-failed, with its first error line. */
export async function tool(
  sys: System,
  file: string,
  args: readonly string[],
  ok: readonly number[] = [0],
  timeoutMs = 120_000,
): Promise<{ exitCode: number | undefined; stdout: string; stderr: string }> {
  const result = await sys.exec(file, args, { input: '', timeoutMs, env: { ...sys.env, LC_ALL: 'C' } });
  if (result.notFound) {
    throw new FirstbootError('data-disk-tool-failed', `${file} is not installed`, {
      hint: `install it (apt install ${PACKAGE_OF[file] ?? 'util-linux'}), then run \`immich-firstboot\` again`,
    });
  }
  if (result.exitCode === undefined || !ok.includes(result.exitCode)) {
    const line = printable((result.stderr || result.stdout).trim().split('\n')[0] ?? '');
    throw new FirstbootError(
      'data-disk-tool-failed',
      `\`${result.command}\` ${result.timedOut ? 'timed out' : `failed (exit ${result.exitCode})`}${line ? `: ${line}` : ''}`,
      {
        hint: 'fix what it names, then run `immich-firstboot` again: a disk we began to format is finished, never formatted twice',
      },
    );
  }
  return result;
}

/** Which Debian package ships each tool (Depends/Recommends in debian/control say the same). */
const PACKAGE_OF: Record<string, string> = {
  sgdisk: 'gdisk',
  'mkfs.ext4': 'e2fsprogs',
  debugfs: 'e2fsprogs',
  chattr: 'e2fsprogs',
  lsattr: 'e2fsprogs',
};
