// `immich-firstboot attach-disk --lun N`: a running VM's library and Postgres moved from the OS disk onto a
// blank Azure data disk, and `--remove-old` to delete the old copies once the VM runs on the disk. Every step
// is printed; a failure at any point undoes what this run did, in reverse, and starts the stack on the old
// data: the VM ends on the disk with Immich answering, or where it was, running. Under our lock throughout.

import { findDataDisk, type DataDisk, type DiskInspection, type FormatPlan } from '../data-disk.js';
import { EXIT, FirstbootError } from '../errors.js';
import { PATHS } from '../paths.js';
import type { RunnerEnv } from '../runner.js';
import { acquireLock, readDoneStamp } from '../state.js';
import { Move, refused, type AttachDiskReport } from './attach-disk-move.js';
import { copy, place, prepareDisk, verify } from './attach-disk-copy.js';
import { checkDisk, checkSize, checkVm, readPlan } from './attach-disk-plan.js';
import { removeOld } from './attach-disk-remove-old.js';
import { failure, refusal } from './attach-disk-revert.js';
import { start, stop } from './attach-disk-stack.js';
import { mount, switchedEnv, switchFiles } from './attach-disk-switch.js';

export type { AttachDiskReport, AttachStep } from './attach-disk-move.js';

export interface AttachDiskRequest {
  lun: string | undefined;
  removeOld: boolean;
  /** --config FILE: attach-disk writes only the root's config.yaml. */
  configPath: string | undefined;
}

export async function attachDisk(env: RunnerEnv, request: AttachDiskRequest): Promise<AttachDiskReport> {
  if (request.configPath !== undefined)
    throw new FirstbootError('usage', `attach-disk writes ${PATHS.config}; it does not take --config`, {
      exitCode: EXIT.usage,
      hint: 'leave --config out (use --root DIR for another tree)',
    });
  if (request.removeOld && request.lun !== undefined)
    throw new FirstbootError('usage', 'attach-disk --remove-old takes no --lun: it removes the old copies only', {
      exitCode: EXIT.usage,
      hint: 'immich-firstboot attach-disk --remove-old',
    });
  const lun = request.removeOld ? undefined : lunOf(request.lun);
  if (!(await readDoneStamp(env.sys)))
    throw refused('first boot has not finished: there is no running Immich to move', [
      'wait for it (`immich-firstboot status`); to put a new VM on a data disk, set dataDisk: { lun: N } in config.yaml before first boot',
    ]);
  const lock = await acquireLock(env.sys, request.removeOld ? 'attach-disk --remove-old' : 'attach-disk');
  try {
    return lun === undefined ? await removeOld(env) : await run(new Move(env, lun));
  } finally {
    await lock.release();
  }
}

function lunOf(text: string | undefined): number {
  if (text === undefined)
    throw new FirstbootError('usage', 'attach-disk needs --lun N (or --remove-old)', {
      exitCode: EXIT.usage,
      hint: "immich-firstboot attach-disk --lun 0 (the LUN Azure gave the disk: `az vm show -d ... --query 'storageProfile.dataDisks[].lun'`)",
    });
  if (!/^\d{1,2}$/.test(text) || Number(text) > 63)
    throw new FirstbootError('usage', `--lun ${text}: must be a whole number from 0 to 63 (an Azure LUN)`, {
      exitCode: EXIT.usage,
      hint: 'immich-firstboot attach-disk --lun 0',
    });
  return Number(text);
}

/**
 * One move, in order: the checks (a refusal changes nothing), then each step of the copy and the switch, each
 * registering its undo; a failure undoes them in reverse and starts the stack on the old data.
 */
async function run(move: Move): Promise<AttachDiskReport> {
  const { sys } = move.env;
  let disk: DataDisk;
  let envText: string;
  let plan: FormatPlan | undefined;
  let found: DiskInspection;
  // Nothing is changed before these checks pass: a refusal leaves the disk, the stack and every file alone.
  try {
    envText = await checkVm(move);
    disk = await findDataDisk(sys, { lun: move.lun });
    move.report.disk = { link: disk.link, device: disk.device, sizeBytes: disk.sizeBytes };
    plan = await readPlan(move.env);
    found = await checkDisk(move, disk, plan);
    await checkSize(move, disk);
  } catch (error) {
    return refusal(move, error);
  }
  try {
    const { uuid, partition } = await prepareDisk(move, disk, found, plan);
    move.report.disk.uuid = uuid;
    await stop(move);
    await copy(move);
    await verify(move);
    const switched = switchedEnv(sys, envText);
    await place(move, partition);
    await mount(move, uuid, partition);
    const config = await switchFiles(move, envText, switched);
    await start(move, config);
    await move.env.sys.fs.remove(PATHS.attachPlan); // the disk carries our marker now
    move.report.ok = true;
    move.report.now = { upload: PATHS.dataUploadDir, postgres: PATHS.dataPostgresDir, immichAnswers: true };
    move.report.next = `the old data is still at ${PATHS.uploadDir} and ${PATHS.postgresDir}; once you have checked Immich, \`immich-firstboot attach-disk --remove-old\` deletes it`;
    move.env.log.info(`attach-disk: done; ${move.report.next}`);
    return move.report;
  } catch (error) {
    return failure(move, error);
  }
}

/** The text `attach-disk` prints (without --json): the steps are already in the log. */
export function formatAttachDisk(report: AttachDiskReport): string {
  const lines: string[] = [];
  if (report.error) {
    lines.push(`attach-disk: ${report.error.step} failed: ${report.error.message}`);
    if (report.error.hint) lines.push(`hint: ${report.error.hint}`);
  }
  for (const r of report.reverted) lines.push(`${r.failed ? 'NOT undone' : 'undone'}: ${r.summary}`);
  lines.push(
    `now: library ${report.now.upload}, Postgres ${report.now.postgres}${report.now.immichAnswers === null ? '' : report.now.immichAnswers ? ', Immich answers' : ', Immich does NOT answer'}`,
  );
  if (report.next) lines.push(report.next);
  return `${lines.join('\n')}\n`;
}
