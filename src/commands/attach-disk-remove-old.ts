// `attach-disk --remove-old`: the old library and Postgres deleted from the OS disk, only once the move is proven
// (config.yaml names the disk, it is mounted, .env points there, Immich answers).

import { dataDiskState } from '../data-disk.js';
import { parseEnv } from '../env-file-format.js';
import { asFirstbootError } from '../errors.js';
import { PATHS } from '../paths.js';
import type { RunnerEnv } from '../runner.js';
import { ping } from '../stack.js';
import { bytes, isMounted, namesPath, refused, TREES, usedBytes, type AttachDiskReport } from './attach-disk-move.js';

// --- --remove-old ---------------------------------------------------------------------------------

/**
 * Deletes /opt/immich/library and /opt/immich/postgres, and only when the move is proven: config.yaml names
 * the disk, it is mounted on /srv/immich, .env points there, Immich answers, and neither old tree is on the disk.
 */
export async function removeOld(env: RunnerEnv): Promise<AttachDiskReport> {
  const { sys, config, log } = env;
  const report: AttachDiskReport = {
    command: 'attach-disk --remove-old',
    ok: false,
    steps: [],
    reverted: [],
    now: { upload: PATHS.uploadDir, postgres: PATHS.postgresDir, immichAnswers: null },
  };
  try {
    if (config.dataDisk === 'none')
      throw refused('config.yaml has no dataDisk: this VM was not moved onto a data disk', [
        'run `immich-firstboot attach-disk --lun N` first; the old data is the only copy',
      ]);
    const values = parseEnv((await sys.fs.read(PATHS.envFile)) ?? '');
    report.now = {
      upload: values.UPLOAD_LOCATION ?? '(unset)',
      postgres: values.DB_DATA_LOCATION ?? '(unset)',
      immichAnswers: null,
    };
    for (const tree of TREES)
      if (!namesPath(sys, values[tree.envKey], tree.disk))
        throw refused(`${PATHS.envFile} has ${tree.envKey}=${values[tree.envKey] ?? '(unset)'}, not ${tree.disk}`, [
          'the VM still uses the old data: finish the move with `immich-firstboot attach-disk --lun N`',
        ]);
    const state = await dataDiskState(sys, config);
    if (!state.mounted)
      throw refused(`the data disk is not mounted on ${PATHS.dataMount}`, [
        `see \`immich-firstboot doctor\`; mount it (\`mount ${PATHS.dataMount}\`) and check Immich first`,
      ]);
    if (!state.markerUuid || state.markerUuid !== state.fstabUuid)
      throw refused(
        `the filesystem on ${PATHS.dataMount} is not the one ${PATHS.fstab} names (marker ${state.markerUuid ?? 'missing'}, fstab ${state.fstabUuid ?? 'no line'})`,
        [`see \`findmnt ${PATHS.dataMount}\` and \`immich-firstboot doctor\``],
      );
    report.now.immichAnswers = await ping(env);
    if (!report.now.immichAnswers)
      throw refused(`Immich does not answer ${config.stack.serverUrl}/api/server/ping`, [
        'start the stack and check that Immich shows your photos, then run --remove-old again',
      ]);
    report.steps.push({ step: 'check', summary: `the VM runs on ${PATHS.dataMount} and Immich answers` });
    for (const tree of TREES) {
      const info = await sys.fs.info(tree.old);
      if (!info) {
        report.steps.push({ step: `remove-${tree.name}`, summary: `${tree.old} is already gone` });
        continue;
      }
      if (
        !info.isDirectory ||
        (await isMounted(env, tree.old)) ||
        (await sameFilesystem(env, tree.old, PATHS.dataMount))
      )
        throw refused(`${tree.old} is not a plain directory on the OS disk (a link, a mount, or on the data disk)`, [
          `look at it (\`findmnt ${tree.old}\`, \`ls -la ${tree.old}\`) and remove it by hand if it is the old copy`,
        ]);
      const [size] = await usedBytes(env, [tree.old]);
      await sys.fs.remove(tree.old);
      report.steps.push({ step: `remove-${tree.name}`, summary: `${tree.old} removed (${bytes(size)} freed)` });
    }
    for (const step of report.steps) log.info({ step: step.step }, step.summary);
    report.ok = true;
  } catch (thrown) {
    const error = asFirstbootError(thrown);
    report.error = {
      step: 'check',
      code: error.code,
      message: error.message,
      ...(error.hint ? { hint: error.hint } : {}),
    };
  }
  return report;
}

async function sameFilesystem(env: RunnerEnv, a: string, b: string): Promise<boolean> {
  const result = await env.sys.exec('stat', ['-c', '%d', env.sys.fs.path(a), env.sys.fs.path(b)], {
    timeoutMs: 30_000,
  });
  const [da, db] = result.stdout.split('\n');
  return result.exitCode !== 0 || da === db;
}
