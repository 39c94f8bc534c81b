// doctor's checks of where the data lives: the data disk mounted as configured (by UUID, nofail, the empty
// mount point underneath guarded), the filesystem holding the library and Postgres not (nearly) full, and
// neither of them on the resource disk, which Azure wipes when the VM is deallocated.
//
// They read the tree (config.yaml, fstab) and the running kernel's mounts of the tree's paths, so they
// run under --root too: a test mounts loop devices in a temp root.

import path from 'node:path';
import { devKey, disksUnder, mountedOn, mounts, wholeDisk, type DevNumber } from '../block-devices.js';
import type { Config } from '../config.js';
import { dataDiskState, FSTAB_OPTIONS } from '../data-disk.js';
import { dataDirs } from '../immich-env.js';
import { PATHS, RESOURCE_DISK } from '../paths.js';
import { readDoneStamp } from '../state.js';
import type { System } from '../system/index.js';
import { bad, COMPOSE, pass, skip, type Audit, type DoctorCheck, type Verdict } from './doctor-audit.js';

/** Used space (percent) above which data-space warns, and from which it fails. */
export const SPACE_WARN_ABOVE = 85;
export const SPACE_FAIL_FROM = 95;

const gib = (bytes: number): string => `${(bytes / 2 ** 30).toFixed(1)} GiB`;
const host = (sys: System, inside: string): string => sys.fs.path(inside);
/** A mount point from mountinfo (a host path) as the tree names it. */
const insideRoot = (sys: System, hostPath: string): string =>
  sys.onHost ? hostPath : `/${path.posix.relative(sys.fs.root, hostPath)}`;
const named = (config: Pick<Config, 'dataDisk'>): string =>
  config.dataDisk === 'auto' ? 'the data disk (dataDisk: auto)' : `the data disk at LUN ${lunOf(config)}`;
const lunOf = (config: Pick<Config, 'dataDisk'>): string =>
  typeof config.dataDisk === 'object' ? String(config.dataDisk.lun) : 'N';
const REMOUNT = `mount ${PATHS.dataMount}, then \`${COMPOSE} up -d\` (or reboot)`;

/** fstab's lines that mount something on the data disk's mount point (comments skipped). */
function fstabLinesFor(text: string, target: string): string[][] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.trim().startsWith('#'))
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f[1]?.replace(/\\040/g, ' ') === target);
}

/** The configured data disk: mounted on /srv/immich, by the UUID fstab names, with nofail, its empty mount point guarded. */
export const dataDiskCheck: DoctorCheck = {
  id: 'data-disk',
  needsHost: false,
  async run({ sys, config }) {
    if (config.dataDisk === 'none')
      return pass(`no data disk configured (dataDisk: none): the library and Postgres are under ${PATHS.immichDir}`);
    if (!(await readDoneStamp(sys)))
      return skip('first boot has not finished: it sets the data disk up (immich-firstboot status)');
    // The library's one view of the disk's state (what is mounted, its UUID as blkid -p reads it).
    const state = await dataDiskState(sys, config, { probe: true }).catch(() => dataDiskState(sys, config));
    const mounted = state.mounted;
    const fails: string[] = [];
    const fixes: string[] = [];
    if (!mounted) {
      fails.push(
        `dataDisk is configured but nothing is mounted on ${PATHS.dataMount}: ${named(config)} is missing or did not mount, so Immich has no library and no database (\`journalctl -b -u srv-immich.mount\` says why)`,
      );
      fixes.push(`reattach ${named(config)} (\`ls -l /dev/disk/azure/\` shows what is attached); then ${REMOUNT}`);
    }
    const uuid = state.mountedUuid;
    const line = fstabLinesFor((await sys.fs.read(PATHS.fstab)) ?? '', PATHS.dataMount).at(-1);
    const fstabWrong: string[] = [];
    if (!line) {
      fstabWrong.push(
        `${PATHS.fstab} has no line for ${PATHS.dataMount}: the data disk is not mounted at the next boot`,
      );
    } else {
      if (!line[0].startsWith('UUID='))
        fstabWrong.push(
          `${PATHS.fstab} mounts ${line[0]} on ${PATHS.dataMount}, not a filesystem UUID: a device name can name another disk after a reboot`,
        );
      else if (uuid && line[0] !== `UUID=${uuid}`)
        fstabWrong.push(
          `the filesystem mounted on ${PATHS.dataMount} (${mounted!.source}, UUID ${uuid}) is not the one ${PATHS.fstab} names (${line[0]}): the next boot mounts the other one`,
        );
      if (!(line[3] ?? '').split(',').includes('nofail'))
        fstabWrong.push(
          `${PATHS.fstab}'s line for ${PATHS.dataMount} lacks nofail: with the disk missing the VM stops booting (emergency mode)`,
        );
    }
    if (fstabWrong.length) {
      fails.push(...fstabWrong);
      const want = `UUID=${uuid ?? '<UUID from blkid>'} ${PATHS.dataMount} ext4 ${FSTAB_OPTIONS} 0 2`;
      fixes.push(`make ${PATHS.fstab}'s line for ${PATHS.dataMount}: ${want}`);
    }
    const guard = await guardOf(sys, mounted !== undefined);
    const warns: string[] = [];
    if (guard === 'unguarded') {
      fails.push(
        `the empty mount point ${PATHS.dataMount} underneath is not immutable: with the disk missing at a boot, Docker would create the library and Postgres there, on the OS disk`,
      );
      fixes.push(
        mounted
          ? `\`${COMPOSE} stop && umount ${PATHS.dataMount} && chattr +i ${PATHS.dataMount} && mount ${PATHS.dataMount} && ${COMPOSE} start\``
          : `\`chattr +i ${PATHS.dataMount}\` while it is empty and nothing is mounted on it`,
      );
    } else if (guard !== 'guarded')
      warns.push(`cannot tell whether ${PATHS.dataMount} underneath is guarded: ${guard.unknown}`);
    if (fails.length) return bad('fail', fails.join('; '), fixes.join('; '));
    if (warns.length)
      return bad('warn', warns.join('; '), `run \`lsattr -d ${PATHS.dataMount}\` with nothing mounted on it`);
    return pass(
      `${mounted!.source} (UUID ${uuid ?? '?'}) is mounted on ${PATHS.dataMount}, by UUID in ${PATHS.fstab} with nofail; the empty mount point underneath is immutable`,
    );
  },
};

/** The guard is there, is not, or cannot be told (why). */
type Guard = 'guarded' | 'unguarded' | { unknown: string };

/**
 * Whether the directory on the OS disk under the mount point is immutable (the guard). With the disk
 * mounted the directory is hidden; a non-recursive bind of its parent, in a mount namespace of its own
 * (`unshare -m`, private: nothing is left behind), shows it.
 */
async function guardOf(sys: System, mounted: boolean): Promise<Guard> {
  const target = host(sys, PATHS.dataMount);
  let result;
  if (!mounted) result = await sys.exec('lsattr', ['-d', target], { timeoutMs: 10_000 });
  else {
    const scratch = await sys.hostScratch('ifb-guard-');
    try {
      result = await sys.exec(
        'unshare',
        ['-m', '--', 'sh', '-c', 'mount --bind "$1" "$2" && exec lsattr -d "$2/$3"', 'sh'].concat([
          path.posix.dirname(target),
          scratch.dir,
          path.posix.basename(target),
        ]),
        { timeoutMs: 10_000 },
      );
    } finally {
      await scratch.remove();
    }
  }
  if (result.notFound) return { unknown: `${result.command.split(' ')[0]} is not installed` };
  const flags = /^(\S+)\s/.exec(result.stdout)?.[1];
  if (result.exitCode !== 0 || !flags)
    return { unknown: (result.stderr.trim() || `exit ${result.exitCode}`).split('\n')[0] };
  return flags.includes('i') ? 'guarded' : 'unguarded';
}

/** A data directory, or the nearest directory above it that exists (before first boot made it). */
async function existing(sys: System, inside: string): Promise<string> {
  let at = inside;
  while (at !== '/' && !(await sys.fs.exists(at))) at = path.posix.dirname(at);
  return at;
}

interface Place {
  what: string;
  dir: string;
  /** The directory measured: the data directory or the nearest one above it. */
  at: string;
  fs: DevNumber | undefined;
}

async function places(sys: System, config: Pick<Config, 'dataDisk'>): Promise<Place[]> {
  const dirs = dataDirs(config);
  const out: Place[] = [];
  for (const [what, dir] of [
    ['the library', dirs.upload],
    ['Postgres', dirs.postgres],
  ] as const) {
    const at = await existing(sys, dir);
    out.push({ what, dir, at, fs: await sys.fs.filesystemOf(at) });
  }
  return out;
}

/** The filesystem holding the library and Postgres (the data disk or the OS disk): warn above 85 % used, fail from 95 %. */
export const dataSpaceCheck: DoctorCheck = {
  id: 'data-space',
  needsHost: false,
  async run({ sys, config }) {
    if (config.dataDisk !== 'none' && !mountedOn(await mounts(sys), host(sys, PATHS.dataMount)))
      return skip(`the data disk is not mounted on ${PATHS.dataMount} (see data-disk): its space is not known`);
    const all = await mounts(sys);
    const byFs = new Map<string, Place[]>();
    for (const place of await places(sys, config)) {
      const key = place.fs ? devKey(place.fs) : place.at;
      byFs.set(key, [...(byFs.get(key) ?? []), place]);
    }
    const verdicts: { level: 0 | 1 | 2; text: string }[] = [];
    for (const group of byFs.values()) {
      const usage = await sys.fs.usage(group[0].at);
      const fs = group[0].fs;
      // The mount the directory sits on, for a person: the last mount of that device (bind mounts alike).
      const mount = fs ? all.filter((m) => devKey(m) === devKey(fs)).at(-1) : undefined;
      const on = mount ? ` (${mount.source} on ${insideRoot(sys, mount.target)})` : '';
      const text = `${group.map((p) => `${p.what} (${p.dir})`).join(' and ')} ${group.length > 1 ? 'are' : 'is'} on a filesystem${on} ${usage.usedPercent} % used: ${gib(usage.availableBytes)} free of ${gib(usage.sizeBytes)}`;
      verdicts.push({
        level: usage.usedPercent >= SPACE_FAIL_FROM ? 2 : usage.usedPercent > SPACE_WARN_ABOVE ? 1 : 0,
        text,
      });
    }
    const worst = Math.max(...verdicts.map((v) => v.level));
    const detail = verdicts.map((v) => v.text).join('; ');
    if (worst === 0) return pass(detail);
    const limits = `warns above ${SPACE_WARN_ABOVE} %, fails from ${SPACE_FAIL_FROM} %: a full disk stops Postgres`;
    const fix =
      config.dataDisk === 'none'
        ? `free space, or move the library and Postgres onto an Azure data disk: attach one, then \`immich-firstboot attach-disk --lun N\``
        : `free space, or grow the disk: \`az disk update --size-gb N\` on the data disk, then \`growpart <disk> 1 && resize2fs <partition>\` (\`findmnt ${PATHS.dataMount}\` names them)`;
    return bad(worst === 2 ? 'fail' : 'warn', `${detail} (${limits})`, fix);
  },
};

interface ResourceDisk {
  /** How it was recognised, for a person. */
  by: string;
  /** Its whole disk, when a link names it. */
  disk?: DevNumber;
  /** A filesystem mounted where the agent mounts it, carrying the agent's warning file. */
  fs?: DevNumber;
}

/** The resource disk as its links and the agent's warning file show it; [] when this VM has none (or it is not Azure). */
async function resourceDisks(sys: System): Promise<ResourceDisk[]> {
  const found: ResourceDisk[] = [];
  for (const link of RESOURCE_DISK.links) {
    const info = await sys.fs.blockDevice(link);
    const disk = info?.kind === 'block' ? await wholeDisk(sys, info) : undefined;
    if (disk) found.push({ by: `${link} (${info!.node})`, disk });
  }
  const all = await mounts(sys);
  for (const at of RESOURCE_DISK.mountPoints) {
    const mount = mountedOn(all, host(sys, at));
    if (mount && (await sys.fs.exists(`${at}/${RESOURCE_DISK.warningFile}`)))
      found.push({ by: `${mount.source} on ${at} (it holds ${RESOURCE_DISK.warningFile})`, fs: mount });
  }
  return found;
}

/** Neither the library nor Postgres on the resource disk: Azure wipes it when the VM is deallocated. */
export const dataOnResourceDiskCheck: DoctorCheck = {
  id: 'data-on-resource-disk',
  needsHost: false,
  async run(audit: Audit): Promise<Verdict> {
    const { sys, config } = audit;
    const resource = await resourceDisks(sys);
    const where = await places(sys, config);
    if (resource.length === 0)
      return pass(
        `no resource disk here (no ${RESOURCE_DISK.links.join(' or ')}, no ${RESOURCE_DISK.warningFile} on ${RESOURCE_DISK.mountPoints.join(' or ')})`,
      );
    const onIt: string[] = [];
    for (const place of where) {
      if (!place.fs) continue;
      const disks = place.fs.major === 0 ? [] : await disksUnder(sys, place.fs);
      const hit = resource.find(
        (r) =>
          (r.fs && devKey(r.fs) === devKey(place.fs!)) || (r.disk && disks.some((d) => devKey(d) === devKey(r.disk!))),
      );
      if (hit) onIt.push(`${place.what} (${place.dir}) is on the resource disk, ${hit.by}`);
    }
    if (onIt.length)
      return bad(
        'fail',
        `${onIt.join('; ')}: Azure wipes it when the VM is deallocated or moved, and the photos and the database with it`,
        `move them onto an Azure data disk now: attach one, then \`immich-firstboot attach-disk --lun N\` (and set ${PATHS.uploadDir} and ${PATHS.postgresDir} back to plain directories if you linked them to ${RESOURCE_DISK.mountPoints[0]})`,
      );
    return pass(`the library and Postgres are not on the resource disk (${resource.map((r) => r.by).join('; ')})`);
  },
};
