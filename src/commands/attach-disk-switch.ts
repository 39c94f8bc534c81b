// attach-disk's switch: the disk mounted on /srv/immich (fstab, marker), then config.yaml's dataDisk, .env's two
// locations and the disk's copy of .env, each written whole and each undone on a failure.

import { setKey } from '../config-edit.js';
import { parseConfig, type Config } from '../config.js';
import { mountDataDisk, syncEnvCopy, unmountDataDisk, type Partition } from '../data-disk.js';
import { parseEnv } from '../env-file-format.js';
import { FirstbootError } from '../errors.js';
import { ENV_MODE } from '../immich-env.js';
import { PATHS } from '../paths.js';
import type { System } from '../system/index.js';
import { TREES, type Move } from './attach-disk-move.js';

export async function mount(move: Move, uuid: string, partition: Partition): Promise<void> {
  const { sys, log } = move.env;
  move.current = 'mount';
  const made = !(await sys.fs.exists(PATHS.dataMount));
  const fstabWas = await sys.fs.exists(PATHS.fstab);
  move.undo.push({
    step: 'mount',
    run: async () => {
      const done = await unmountDataDisk(sys, { uuid, removeMountPoint: made });
      // A tree that had no fstab (a test root, a container) gets none back.
      if (!fstabWas && (await sys.fs.read(PATHS.fstab))?.trim() === '') await sys.fs.remove(PATHS.fstab);
      return done.join('; ');
    },
  });
  const outcome = await mountDataDisk(sys, { uuid, partition }, { mark: true });
  for (const warning of outcome.warnings) log.warn({ step: 'mount' }, warning);
  move.did('mount', `UUID=${uuid} mounted on ${PATHS.dataMount} (fstab: nofail; the empty mount point guarded)`);
}

/** config.yaml's dataDisk and .env's two locations, each written whole (atomic), each undone on failure. */
export async function switchFiles(move: Move, envText: string, switched: string): Promise<Config> {
  const { sys } = move.env;
  move.current = 'switch';
  const before = (await sys.fs.read(PATHS.config)) ?? '';
  const text = setKey(before, ['dataDisk', 'lun'], String(move.lun));
  const config = parseConfig(text, { displayPath: `${sys.fs.path(PATHS.config)} (with dataDisk)`, env: sys.env });
  if (typeof config.dataDisk !== 'object' || config.dataDisk.lun !== move.lun)
    throw new FirstbootError('config-invalid', `${PATHS.config}: could not set dataDisk in it`, {
      hint: `set it by hand (dataDisk: { lun: ${move.lun} }) after this run has put the VM back, then run attach-disk again`,
    });
  const configInfo = await sys.fs.info(PATHS.config, { follow: true });
  const configMode = configInfo?.mode ?? 0o644;
  move.undo.push({
    step: 'switch-config',
    run: async () => {
      await sys.fs.write(PATHS.config, before, { mode: configMode, dirMode: 0o755 });
      return `${PATHS.config} as it was`;
    },
  });
  await sys.fs.write(PATHS.config, text, { mode: configMode, dirMode: 0o755 });
  const envMode = (await sys.fs.info(PATHS.envFile, { follow: true }))?.mode ?? ENV_MODE;
  move.undo.push({
    step: 'switch-env',
    run: async () => {
      await sys.fs.write(PATHS.envFile, envText, { mode: envMode, rootOwned: true });
      return `${PATHS.envFile} as it was (UPLOAD_LOCATION=${PATHS.uploadDir}, DB_DATA_LOCATION=${PATHS.postgresDir})`;
    },
  });
  await sys.fs.write(PATHS.envFile, switched, { mode: envMode, rootOwned: true });
  // The disk's copy of .env (0600): a VM the disk is attached to later takes the Postgres secret from it.
  move.undo.push({
    step: 'env-copy',
    run: async () => {
      await sys.fs.remove(PATHS.dataEnvCopy);
      return `${PATHS.dataEnvCopy} removed (the secret does not stay on a disk that holds no data)`;
    },
  });
  await syncEnvCopy(sys, config, switched);
  move.did(
    'switch',
    `${PATHS.config}: dataDisk: { lun: ${move.lun} }; ${PATHS.envFile}: UPLOAD_LOCATION=${PATHS.dataUploadDir}, DB_DATA_LOCATION=${PATHS.dataPostgresDir}`,
  );
  return config;
}

/** .env with UPLOAD_LOCATION and DB_DATA_LOCATION on the disk, in the form they had; every other line as it was. */
export function switchedEnv(sys: System, text: string): string {
  const before = parseEnv(text);
  const want = (tree: (typeof TREES)[number]): string =>
    before[tree.envKey] === tree.old ? tree.disk : sys.fs.path(tree.disk);
  let out = text;
  for (const tree of TREES) {
    const line = new RegExp(`^(\\s*(?:export\\s+)?${tree.envKey}\\s*=)[^\\r\\n]*`, 'gm');
    out = out.replace(line, `$1${want(tree)}`);
  }
  const values = parseEnv(out);
  if (TREES.some((t) => values[t.envKey] !== want(t)))
    throw new FirstbootError(
      'env-malformed',
      `${PATHS.envFile}: UPLOAD_LOCATION or DB_DATA_LOCATION could not be set`,
      {
        hint: `write them as KEY=VALUE lines in ${PATHS.envFile}, then run attach-disk again`,
      },
    );
  return out;
}
