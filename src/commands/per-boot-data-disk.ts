// per-boot's look at the data disk: configured but not mounted on /srv/immich at this boot (detached,
// failed; fstab's nofail let the VM boot without it) → a warning in the journal, so `status` and the MOTD
// say what to do, until a boot finds it mounted again. Nothing is written under the empty mount point:
// its guard (immutable) keeps Docker from making the library and Postgres there, and per-boot puts
// nothing there either (a clone's secret waits for the disk, where Postgres's data is).

import type { Config } from '../config.js';
import { DISKS, PATHS } from '../paths.js';
import { DATA_DISK_MISSING, type Journal, type StepWarning } from '../state.js';
import type { System } from '../system/index.js';

/**
 * Whether the configured data disk is missing at this boot; undefined when none is configured (dataDisk:
 * none: no file is read). One read of /proc/self/mountinfo otherwise.
 */
export async function dataDiskMissing(sys: System, config: Pick<Config, 'dataDisk'>): Promise<boolean | undefined> {
  if (config.dataDisk === 'none') return undefined;
  // mountinfo's 5th field is the mount point (a space written \040): read here, not through block-devices.ts,
  // so the every-boot check loads no chunk more than it must.
  // The 4th field is the path inside the mounted filesystem: "/" for the disk itself, and the directory's own
  // path for a bind mount of the empty mount point. A unit with ReadWritePaths=/srv/immich (per-boot's) sees
  // such a bind of the OS disk's directory there when the disk is missing; only the last mount there counts.
  const target = sys.fs.path(PATHS.dataMount).replace(/ /g, '\\040');
  const text = (await sys.kernel.read(DISKS.mountinfo)) ?? '';
  const last = text
    .split('\n')
    .map((line) => line.split(' '))
    .filter((fields) => fields[4] === target)
    .at(-1);
  return last?.[3] !== '/';
}

/** The journal's warning about a missing data disk, if an earlier boot left one. */
export const missingWarning = (journal: Journal | undefined): StepWarning | undefined =>
  journal?.warnings.find((w) => w.step === DATA_DISK_MISSING);

/** The warning for this boot: what is wrong and what to do. */
export function missingDiskWarning(config: Pick<Config, 'dataDisk'>, at: string): StepWarning {
  const disk =
    typeof config.dataDisk === 'object'
      ? `the data disk at LUN ${config.dataDisk.lun}`
      : 'the data disk (dataDisk: auto)';
  return {
    step: DATA_DISK_MISSING,
    at,
    message: `${disk} is not mounted on ${PATHS.dataMount} at this boot (missing, or it did not mount): Immich's library and Postgres are on it, so Immich is down; nothing was written to the empty mount point`,
    hint: `reattach ${disk} (\`ls -l /dev/disk/azure/\` shows what is attached; \`journalctl -b -u srv-immich.mount\` says why it did not mount), then \`mount ${PATHS.dataMount}\` and \`cd ${PATHS.immichDir} && docker compose -p immich up -d\` (or reboot)`,
  };
}

/** The journal with this boot's finding: the warning set (missing) or cleared (mounted again). */
export function withDiskFinding(journal: Journal, warning: StepWarning | undefined): Journal {
  const others = journal.warnings.filter((w) => w.step !== DATA_DISK_MISSING);
  return { ...journal, warnings: warning ? [...others, warning] : others };
}
