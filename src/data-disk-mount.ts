// The data disk mounted on /srv/immich and unmounted again: the empty mount point made immutable, our fstab line
// (every other line kept), the mount, our marker and directories; and attach-disk's undo of all of it.

import { devKey, mountedOn, mounts, shown, tool, unescapeOctal } from './block-devices.js';
import { hostNode, parseMarker, type DiskMarker, type Partition } from './data-disk-inspect.js';
import { FirstbootError } from './errors.js';
import { PATHS } from './paths.js';
import type { System } from './system/index.js';

export const FSTAB_OPTIONS = 'defaults,nofail,x-systemd.device-timeout=10s,x-systemd.before=docker.service';
const FSTAB_COMMENT = '# immich-firstboot: the data disk (dataDisk in config.yaml); nofail: the VM boots without it';

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
export async function ensureMarkerDir(sys: System): Promise<void> {
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
