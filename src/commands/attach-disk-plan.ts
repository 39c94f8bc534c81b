// attach-disk's checks, before anything changes: the VM (first boot done, .env naming the default places), the
// disk (blank, or one an earlier run began), and its size (the data × 1.3 + 1 GiB).

import { inspectDisk, notBlank, type DataDisk, type DiskInspection, type FormatPlan } from '../data-disk.js';
import { parseEnv, refuseMalformedEnv } from '../env-file-format.js';
import { FirstbootError } from '../errors.js';
import { PATHS } from '../paths.js';
import type { RunnerEnv } from '../runner.js';
import { bytes, namesPath, refused, TREES, usedBytes, type Move } from './attach-disk-move.js';

/**
 * The disk must hold the data ×1.3 + 1 GiB. ext4 keeps ~5 % for root and ~2 % for inode tables and its
 * journal, so with ×1.3 the moved data fills at most 1/(1.3×0.93) ≈ 83 % of what `df` shows: a VM just
 * moved starts under doctor's 85 % warning, with room to grow. The 1 GiB is for a small library: Postgres's
 * WAL at its first start on the disk, and the uploads of the next days.
 */
const HEADROOM_FACTOR = 1.3;
const HEADROOM_BYTES = 1024 ** 3;

/** First boot done, no data disk yet, .env on the default places, both trees there. Returns .env's text. */
export async function checkVm(move: Move): Promise<string> {
  const { sys, config } = move.env;
  if (config.dataDisk !== 'none')
    throw refused(`config.yaml already has dataDisk: ${JSON.stringify(config.dataDisk)}`, [
      `this VM already keeps its data on a disk (\`immich-firstboot status\`, \`immich-firstboot doctor\`); attach-disk moves a VM off its OS disk once`,
    ]);
  const text = await sys.fs.read(PATHS.envFile);
  if (text === undefined)
    throw refused(`${PATHS.envFile} does not exist`, ['run `immich-firstboot` to finish first boot']);
  refuseMalformedEnv(text);
  const values = parseEnv(text);
  for (const tree of TREES) {
    if (!namesPath(sys, values[tree.envKey], tree.old))
      throw refused(
        `${PATHS.envFile} has ${tree.envKey}=${values[tree.envKey] ?? '(unset)'}, not ${tree.old}: the data is not where attach-disk moves it from`,
        [
          `move it by hand (stop the stack, copy with \`cp -a\`, set ${tree.envKey}), or set ${tree.envKey}=${tree.old} again`,
        ],
      );
    const info = await sys.fs.info(tree.old);
    if (!info?.isDirectory)
      throw refused(`${tree.old} is ${info ? 'not a directory' : 'missing'}`, [
        `${tree.envKey} names it: restore it, or run \`immich-firstboot\` to create it`,
      ]);
  }
  move.did('check', `first boot done; ${PATHS.envFile} keeps the data at ${PATHS.uploadDir} and ${PATHS.postgresDir}`);
  return text;
}

/**
 * What is on the disk, read only: blank, the disk an earlier run of ours began (the plan's UUIDs) or
 * formatted and left empty, or refused (foreign, in use, another VM's data) before anything is written.
 */
export async function checkDisk(move: Move, disk: DataDisk, plan: FormatPlan | undefined): Promise<DiskInspection> {
  const found = await inspectDisk(move.env.sys, disk, plan);
  if (found.kind === 'blank') move.did('disk', `${disk.link} (${disk.device}) is blank`);
  else if (found.kind === 'partitioned' && plan)
    move.did('disk', `${disk.link} (${disk.device}) carries the partition table an earlier run made`);
  else if (found.kind === 'ours' && !found.mounted) {
    if (found.hasPostgresData)
      throw refused(`${disk.link} holds Postgres data (a disk from another VM)`, [
        `attach-disk moves this VM's data onto an empty disk; to run a new VM on that data, set dataDisk: { lun: ${move.lun} } in its config.yaml before its first boot`,
      ]);
    move.did('disk', `${disk.link} (${disk.device}) carries our filesystem (UUID ${found.uuid})`);
  } else {
    const error = notBlank(disk, found);
    throw new FirstbootError(error.code, `attach-disk: ${error.message}`, {
      hint: 'attach-disk formats a blank disk only: attach an empty one (another LUN), or wipe this one yourself (`wipefs -a`) if nothing on it is needed; then run attach-disk again',
    });
  }
  return found;
}

/** The disk must hold both trees (what they occupy, `du`) with headroom; refused naming both numbers. */
export async function checkSize(move: Move, disk: DataDisk): Promise<void> {
  const [libraryBytes, postgresBytes] = await usedBytes(move.env, [PATHS.uploadDir, PATHS.postgresDir]);
  const neededBytes = Math.ceil((libraryBytes + postgresBytes) * HEADROOM_FACTOR) + HEADROOM_BYTES;
  move.report.sizes = { libraryBytes, postgresBytes, neededBytes };
  const used = `library ${bytes(libraryBytes)} + Postgres ${bytes(postgresBytes)}`;
  if (disk.sizeBytes < neededBytes)
    throw new FirstbootError(
      'attach-disk-too-small',
      `attach-disk: ${disk.link} (${disk.device}) holds ${bytes(disk.sizeBytes)} (${disk.sizeBytes} bytes), but the data needs ${bytes(neededBytes)} (${neededBytes} bytes: ${used}, ×${HEADROOM_FACTOR} + 1 GiB of headroom); nothing changed`,
      {
        hint: `attach a disk of at least ${Math.ceil(neededBytes / 1024 ** 3)} GiB (or resize this one in Azure), then run attach-disk again`,
      },
    );
  move.did(
    'size',
    `${disk.link} (${disk.device}, ${bytes(disk.sizeBytes)}) holds the data: ${used} (needs ${bytes(neededBytes)})`,
  );
}

/** The plan an earlier run formatted by, if any. */
export async function readPlan(env: RunnerEnv): Promise<FormatPlan | undefined> {
  const text = await env.sys.fs.read(PATHS.attachPlan);
  try {
    const plan = text === undefined ? undefined : (JSON.parse(text) as Partial<FormatPlan>);
    return plan?.uuid && plan.ptuuid ? { uuid: plan.uuid, ptuuid: plan.ptuuid } : undefined;
  } catch {
    return undefined; // a torn file from a crash: the disk is then judged without it
  }
}
