// The data disk: an Azure data disk found by its LUN link, formatted only when blank (one GPT partition,
// ext4 labelled immich-data), mounted on /srv/immich by UUID with nofail, its empty mount point made
// immutable first. A disk that carries anything not ours is never written.
//
// Resumable: the partition table's GUID and the filesystem's UUID are chosen (and recorded by the caller)
// before anything is written, so a crash after sgdisk or after mkfs leaves a disk we recognise as ours and
// finish, and a filesystem that exists is never made again.

// The disk is found (data-disk-find.ts), inspected (data-disk-inspect.ts), formatted (data-disk-format.ts) and
// mounted (data-disk-mount.ts); this module is the one the rest imports, and holds what per-boot, status, doctor
// and .env ask of a disk already in place.

import { devKey, mountedOn, mounts, probe, unescapeOctal } from './block-devices.js';
import type { Config } from './config.js';
import { ensureMarkerDir } from './data-disk-mount.js';
import { hostNode, parseMarker } from './data-disk-inspect.js';
import { dbPasswordOf } from './env-file-format.js';
import { SECRET_CHARSET } from './secret.js';
import { FirstbootError } from './errors.js';
import { PATHS } from './paths.js';
import type { System } from './system/index.js';

export { findDataDisk, lunLinks, type DataDisk, type DiskSelector } from './data-disk-find.js';
export {
  DATA_LABEL,
  inspectDisk,
  parseMarker,
  type DiskInspection,
  type DiskMarker,
  type FormatPlan,
  type Partition,
} from './data-disk-inspect.js';
export { formatDisk, newFormatPlan, newUuid, notBlank } from './data-disk-format.js';
export {
  FSTAB_OPTIONS,
  fstabLine,
  fstabWith,
  mountDataDisk,
  unmountDataDisk,
  type MountOutcome,
} from './data-disk-mount.js';

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
