// `immich-firstboot attach-disk --lun N`: a running VM's library and Postgres moved from the OS disk onto a
// blank Azure data disk, and `--remove-old` to delete the old copies once the VM runs on the disk. Every step
// is printed; a failure at any point undoes what this run did, in reverse, and starts the stack on the old
// data: the VM ends on the disk with Immich answering, or where it was, running. Under our lock throughout.

import { setKey } from '../config-edit.js';
import { parseConfig, type Config } from '../config.js';
import {
  dataDiskState,
  findDataDisk,
  formatDisk,
  inspectDisk,
  mountDataDisk,
  newFormatPlan,
  notBlank,
  syncEnvCopy,
  unmountDataDisk,
  type DataDisk,
  type DiskInspection,
  type FormatPlan,
  type Partition,
} from '../data-disk.js';
import { parseEnv, refuseMalformedEnv } from '../env-file-format.js';
import { asFirstbootError, EXIT, FirstbootError } from '../errors.js';
import type { ErrorCode } from '../error-codes.js';
import { ENV_MODE } from '../immich-env.js';
import { PATHS } from '../paths.js';
import { runOutOfSequence, type RunnerEnv } from '../runner.js';
import { composeArgs, composeCommand, ping, PROJECT, tail } from '../stack.js';
import { acquireLock, readDoneStamp } from '../state.js';
import { stackReady, stackStart } from '../steps/stack.js';
import type { System } from '../system/index.js';

/**
 * The disk must hold the data ×1.3 + 1 GiB. ext4 keeps ~5 % for root and ~2 % for inode tables and its
 * journal, so with ×1.3 the moved data fills at most 1/(1.3×0.93) ≈ 83 % of what `df` shows: a VM just
 * moved starts under doctor's 85 % warning, with room to grow. The 1 GiB is for a small library: Postgres's
 * WAL at its first start on the disk, and the uploads of the next days.
 */
const HEADROOM_FACTOR = 1.3;
const HEADROOM_BYTES = 1024 ** 3;

/**
 * Where the new filesystem is mounted while the data is copied: /srv/immich shows nothing until the copy is
 * verified, and fstab is not touched before.
 */
const STAGING = PATHS.attachStaging;
/** On the disk, beside our marker: the copy in progress. Data found here on a rerun is known to be a copy. */
const INCOMING = `${STAGING}/.immich-firstboot/incoming`;

const TREES = [
  { name: 'library', old: PATHS.uploadDir, disk: PATHS.dataUploadDir, envKey: 'UPLOAD_LOCATION' },
  { name: 'postgres', old: PATHS.postgresDir, disk: PATHS.dataPostgresDir, envKey: 'DB_DATA_LOCATION' },
] as const;

export interface AttachDiskRequest {
  lun: string | undefined;
  removeOld: boolean;
  /** --config FILE: attach-disk writes only the root's config.yaml. */
  configPath: string | undefined;
}

export interface AttachStep {
  step: string;
  summary: string;
}

/** `attach-disk --json` prints this object. */
export interface AttachDiskReport {
  command: 'attach-disk' | 'attach-disk --remove-old';
  ok: boolean;
  lun?: number;
  disk?: { link: string; device: string; sizeBytes: number; uuid?: string };
  sizes?: { libraryBytes: number; postgresBytes: number; neededBytes: number };
  /** What was done, in order. */
  steps: AttachStep[];
  /** The failure, with the step it happened in. */
  error?: { step: string; code: ErrorCode; message: string; hint?: string };
  /** After a failure: what was undone, in order; `failed` when an undo itself failed (see its summary). */
  reverted: Array<AttachStep & { failed?: boolean }>;
  /** Where Immich's data is now, and whether Immich answers. */
  now: { upload: string; postgres: string; immichAnswers: boolean | null };
  /** What to do next, in one sentence. */
  next?: string;
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
    return lun === undefined ? await removeOld(env) : await new Move(env, lun).run();
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

function refused(message: string, hints: string[]): FirstbootError {
  return new FirstbootError('attach-disk-refused', `attach-disk: ${message}; nothing changed`, {
    hint: hints.join('; '),
  });
}

/** One move, step by step: each step that changes something registers how to undo it. */
class Move {
  private readonly report: AttachDiskReport;
  private readonly undo: Array<{ step: string; run: () => Promise<string> }> = [];
  private current = 'check';
  private stopped = false;

  constructor(
    private readonly env: RunnerEnv,
    private readonly lun: number,
  ) {
    this.report = {
      command: 'attach-disk',
      ok: false,
      lun,
      steps: [],
      reverted: [],
      now: { upload: PATHS.uploadDir, postgres: PATHS.postgresDir, immichAnswers: null },
    };
  }

  private did(step: string, summary: string): void {
    this.report.steps.push({ step, summary });
    this.env.log.info({ step }, summary);
  }

  async run(): Promise<AttachDiskReport> {
    const { sys } = this.env;
    let disk: DataDisk;
    let envText: string;
    let plan: FormatPlan | undefined;
    let found: DiskInspection;
    // Nothing is changed before these checks pass: a refusal leaves the disk, the stack and every file alone.
    try {
      envText = await this.checkVm();
      disk = await findDataDisk(sys, { lun: this.lun });
      this.report.disk = { link: disk.link, device: disk.device, sizeBytes: disk.sizeBytes };
      plan = await readPlan(this.env);
      found = await this.checkDisk(disk, plan);
      await this.checkSize(disk);
    } catch (error) {
      return this.refusal(error);
    }
    try {
      const { uuid, partition } = await this.prepareDisk(disk, found, plan);
      this.report.disk.uuid = uuid;
      await this.stop();
      await this.copy();
      await this.verify();
      const switched = switchedEnv(sys, envText);
      await this.place(partition);
      await this.mount(uuid, partition);
      const config = await this.switchFiles(envText, switched);
      await this.start(config);
      await this.env.sys.fs.remove(PATHS.attachPlan); // the disk carries our marker now
      this.report.ok = true;
      this.report.now = { upload: PATHS.dataUploadDir, postgres: PATHS.dataPostgresDir, immichAnswers: true };
      this.report.next = `the old data is still at ${PATHS.uploadDir} and ${PATHS.postgresDir}; once you have checked Immich, \`immich-firstboot attach-disk --remove-old\` deletes it`;
      this.env.log.info(`attach-disk: done; ${this.report.next}`);
      return this.report;
    } catch (error) {
      return this.failure(error);
    }
  }

  // --- the checks ---------------------------------------------------------------------------------

  /** First boot done, no data disk yet, .env on the default places, both trees there. Returns .env's text. */
  private async checkVm(): Promise<string> {
    const { sys, config } = this.env;
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
    this.did(
      'check',
      `first boot done; ${PATHS.envFile} keeps the data at ${PATHS.uploadDir} and ${PATHS.postgresDir}`,
    );
    return text;
  }

  /** The disk must hold both trees (what they occupy, `du`) with headroom; refused naming both numbers. */
  private async checkSize(disk: DataDisk): Promise<void> {
    const [libraryBytes, postgresBytes] = await usedBytes(this.env, [PATHS.uploadDir, PATHS.postgresDir]);
    const neededBytes = Math.ceil((libraryBytes + postgresBytes) * HEADROOM_FACTOR) + HEADROOM_BYTES;
    this.report.sizes = { libraryBytes, postgresBytes, neededBytes };
    const used = `library ${bytes(libraryBytes)} + Postgres ${bytes(postgresBytes)}`;
    if (disk.sizeBytes < neededBytes)
      throw new FirstbootError(
        'attach-disk-too-small',
        `attach-disk: ${disk.link} (${disk.device}) holds ${bytes(disk.sizeBytes)} (${disk.sizeBytes} bytes), but the data needs ${bytes(neededBytes)} (${neededBytes} bytes: ${used}, ×${HEADROOM_FACTOR} + 1 GiB of headroom); nothing changed`,
        {
          hint: `attach a disk of at least ${Math.ceil(neededBytes / 1024 ** 3)} GiB (or resize this one in Azure), then run attach-disk again`,
        },
      );
    this.did(
      'size',
      `${disk.link} (${disk.device}, ${bytes(disk.sizeBytes)}) holds the data: ${used} (needs ${bytes(neededBytes)})`,
    );
  }

  // --- the move -----------------------------------------------------------------------------------

  /**
   * A blank disk is formatted; a disk we formatted is taken only when it holds no data but an unfinished
   * copy of ours (INCOMING, from a run that was killed: the data it copied is still at its old place, which
   * .env names), which is removed. Anything else is refused, nothing written to it.
   */
  /**
   * What is on the disk, read only: blank, the disk an earlier run of ours began (the plan's UUIDs) or
   * formatted and left empty, or refused (foreign, in use, another VM's data) before anything is written.
   */
  private async checkDisk(disk: DataDisk, plan: FormatPlan | undefined): Promise<DiskInspection> {
    const found = await inspectDisk(this.env.sys, disk, plan);
    if (found.kind === 'blank') this.did('disk', `${disk.link} (${disk.device}) is blank`);
    else if (found.kind === 'partitioned' && plan)
      this.did('disk', `${disk.link} (${disk.device}) carries the partition table an earlier run made`);
    else if (found.kind === 'ours' && !found.mounted) {
      if (found.hasPostgresData)
        throw refused(`${disk.link} holds Postgres data (a disk from another VM)`, [
          `attach-disk moves this VM's data onto an empty disk; to run a new VM on that data, set dataDisk: { lun: ${this.lun} } in its config.yaml before its first boot`,
        ]);
      this.did('disk', `${disk.link} (${disk.device}) carries our filesystem (UUID ${found.uuid})`);
    } else {
      const error = notBlank(disk, found);
      throw new FirstbootError(error.code, `attach-disk: ${error.message}`, {
        hint: 'attach-disk formats a blank disk only: attach an empty one (another LUN), or wipe this one yourself (`wipefs -a`) if nothing on it is needed; then run attach-disk again',
      });
    }
    return found;
  }

  /**
   * A blank disk is formatted; a disk we formatted is taken only when it holds no data but an unfinished
   * copy of ours (INCOMING, from a run that was killed: the data it copied is still at its old place, which
   * .env names), which is removed.
   */
  private async prepareDisk(
    disk: DataDisk,
    found: DiskInspection,
    plan: FormatPlan | undefined,
  ): Promise<{ uuid: string; partition: Partition; formatted: boolean }> {
    const { sys } = this.env;
    this.current = 'format';
    let target: { uuid: string; partition: Partition };
    let formatted = false;
    if (found.kind === 'blank' || (found.kind === 'partitioned' && plan)) {
      // Recorded before the first byte is written, and kept until the move is done: a rerun takes this disk
      // as the one it began (finishing a partition table a crash left, or reusing the empty filesystem).
      const chosen = found.kind === 'blank' || !plan ? newFormatPlan(sys) : plan;
      await sys.fs.write(PATHS.attachPlan, `${JSON.stringify({ lun: this.lun, ...chosen })}\n`, {
        mode: 0o600,
        dirMode: 0o700,
      });
      target = await formatDisk(sys, disk, chosen);
      formatted = true;
      this.did('format', `${disk.device}: one GPT partition, ext4 labelled immich-data (UUID ${target.uuid})`);
    } else if (found.kind === 'ours') {
      target = { uuid: found.uuid, partition: found.partition };
    } else throw new Error(`internal: attach-disk prepares a disk checkDisk refused (${found.kind})`);
    this.current = 'mount-staging';
    await sys.fs.mkdir(STAGING, 0o700);
    await this.mountStaging(target.partition);
    this.undo.push({ step: 'mount-staging', run: async () => this.unmountStaging() });
    if (!formatted) await this.refuseData(disk);
    await sys.fs.mkdir(INCOMING, 0o700);
    this.did('mount-staging', `${target.partition.node} mounted on ${STAGING} for the copy`);
    return { ...target, formatted };
  }

  private async mountStaging(partition: Partition): Promise<void> {
    const { sys } = this.env;
    const args = ['-t', 'ext4', sys.fs.path(partition.node), sys.fs.path(STAGING)];
    await this.exec('mount', args, `mount ${partition.node} on ${STAGING}`);
  }

  /** An existing filesystem of ours: only lost+found, our marker and an unfinished copy may be there. */
  private async refuseData(disk: DataDisk): Promise<void> {
    const { sys } = this.env;
    const extra = (await sys.fs.list(STAGING)).filter((n) => n !== 'lost+found' && n !== '.immich-firstboot');
    if (extra.length > 0)
      throw refused(`${disk.link} was formatted by immich-firstboot and holds ${extra.join(', ')}`, [
        `attach-disk fills an empty disk; mount it (\`mount ${disk.device}1 /mnt\`), keep what you need, then wipe it (\`wipefs -a ${disk.device}\`) and run attach-disk again`,
      ]);
    if ((await sys.fs.list(INCOMING)).length > 0) {
      await sys.fs.remove(INCOMING);
      this.did(
        'format',
        `${disk.link}: our filesystem, empty but for an unfinished copy from an earlier run (removed)`,
      );
    } else this.did('format', `${disk.link}: our filesystem, empty (kept)`);
  }

  private async stop(): Promise<void> {
    this.current = 'stop';
    // Marked first: whatever fails from here on, the stack is started again on what .env names then.
    this.stopped = true;
    await this.composeStop();
    this.did('stop', `\`docker compose -p ${PROJECT} stop\`: Immich and Postgres stopped, their data at rest`);
  }

  private async composeStop(): Promise<void> {
    const [file, ...base] = await composeCommand(this.env);
    await this.exec(
      file,
      [...base, ...composeArgs(this.env, 'stop')],
      `${[file, ...base].join(' ')} -p ${PROJECT} stop`,
      {
        cwd: this.env.sys.fs.path(PATHS.immichDir),
        timeoutMs: 10 * 60_000,
      },
    );
  }

  /**
   * GNU cp, in coreutils (Essential: on every Debian and Ubuntu image; rsync is not). `-a` keeps links, modes,
   * owners, times and hard links within each tree; `--preserve=all` adds xattrs (ACLs with them) and, on a
   * kernel that has one, the SELinux context.
   */
  private async copy(): Promise<void> {
    const { sys } = this.env;
    for (const tree of TREES) {
      this.current = `copy-${tree.name}`;
      const to = `${INCOMING}/${tree.name}`;
      await this.exec('cp', ['-a', '--preserve=all', sys.fs.path(tree.old), sys.fs.path(to)], `copy ${tree.old}`, {
        timeoutMs: 24 * 3600_000,
      });
      this.did(`copy-${tree.name}`, `${tree.old} copied to the disk (cp -a --preserve=all)`);
    }
  }

  /** Each tree: the same count of each kind of entry and the same bytes; Postgres's PG_VERSION the same. */
  private async verify(): Promise<void> {
    const { sys } = this.env;
    this.current = 'verify';
    const said: string[] = [];
    for (const tree of TREES) {
      const [before, after] = [
        await treeStats(this.env, tree.old),
        await treeStats(this.env, `${INCOMING}/${tree.name}`),
      ];
      if (before.text !== after.text)
        throw new FirstbootError(
          'attach-disk-copy-mismatch',
          `attach-disk: the copy of ${tree.old} differs: ${before.text} there, ${after.text} on the disk`,
          { hint: `is something still writing to ${tree.old}? Run attach-disk again (the copy starts over)` },
        );
      said.push(`${tree.name} ${before.text}`);
    }
    const version = async (dir: string): Promise<string | undefined> =>
      (await sys.fs.read(`${dir}/PG_VERSION`))?.trim();
    const [pgOld, pgNew] = [await version(PATHS.postgresDir), await version(`${INCOMING}/postgres`)];
    if (pgOld !== pgNew)
      throw new FirstbootError(
        'attach-disk-copy-mismatch',
        `attach-disk: PG_VERSION differs: ${pgOld ?? 'none'} in ${PATHS.postgresDir}, ${pgNew ?? 'none'} on the disk`,
        { hint: 'run attach-disk again (the copy starts over)' },
      );
    this.did(
      'verify',
      `the copies match: ${said.join('; ')}; PG_VERSION ${pgOld ?? '(none: Postgres not initialised)'}`,
    );
  }

  /** The copies take their place at the disk's top; the staging mount goes. */
  private async place(partition: Partition): Promise<void> {
    const { sys } = this.env;
    this.current = 'place';
    // From here the copies are at the disk's top, where a rerun would refuse them: undone by mounting the
    // disk again and removing them (this run made them; the originals never moved).
    this.undo.push({
      step: 'place',
      run: async () => {
        await sys.fs.mkdir(STAGING, 0o700);
        if (!(await isMounted(this.env, STAGING))) await this.mountStaging(partition);
        for (const tree of TREES) await sys.fs.remove(`${STAGING}/${tree.name}`);
        await this.unmountStaging();
        return 'the copies removed from the disk (it stays formatted, empty, for a rerun)';
      },
    });
    for (const tree of TREES) await sys.fs.rename(`${INCOMING}/${tree.name}`, `${STAGING}/${tree.name}`);
    await sys.fs.remove(INCOMING);
    // mountDataDisk mounts the disk where it belongs.
    await this.unmountStaging();
    this.did('place', 'library and postgres in place on the disk');
  }

  private async mount(uuid: string, partition: Partition): Promise<void> {
    const { sys, log } = this.env;
    this.current = 'mount';
    const made = !(await sys.fs.exists(PATHS.dataMount));
    const fstabWas = await sys.fs.exists(PATHS.fstab);
    this.undo.push({
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
    this.did('mount', `UUID=${uuid} mounted on ${PATHS.dataMount} (fstab: nofail; the empty mount point guarded)`);
  }

  /** config.yaml's dataDisk and .env's two locations, each written whole (atomic), each undone on failure. */
  private async switchFiles(envText: string, switched: string): Promise<Config> {
    const { sys } = this.env;
    this.current = 'switch';
    const before = (await sys.fs.read(PATHS.config)) ?? '';
    const text = setKey(before, ['dataDisk', 'lun'], String(this.lun));
    const config = parseConfig(text, { displayPath: `${sys.fs.path(PATHS.config)} (with dataDisk)`, env: sys.env });
    if (typeof config.dataDisk !== 'object' || config.dataDisk.lun !== this.lun)
      throw new FirstbootError('config-invalid', `${PATHS.config}: could not set dataDisk in it`, {
        hint: `set it by hand (dataDisk: { lun: ${this.lun} }) after this run has put the VM back, then run attach-disk again`,
      });
    const configInfo = await sys.fs.info(PATHS.config, { follow: true });
    const configMode = configInfo?.mode ?? 0o644;
    this.undo.push({
      step: 'switch-config',
      run: async () => {
        await sys.fs.write(PATHS.config, before, { mode: configMode, dirMode: 0o755 });
        return `${PATHS.config} as it was`;
      },
    });
    await sys.fs.write(PATHS.config, text, { mode: configMode, dirMode: 0o755 });
    const envMode = (await sys.fs.info(PATHS.envFile, { follow: true }))?.mode ?? ENV_MODE;
    this.undo.push({
      step: 'switch-env',
      run: async () => {
        await sys.fs.write(PATHS.envFile, envText, { mode: envMode, rootOwned: true });
        return `${PATHS.envFile} as it was (UPLOAD_LOCATION=${PATHS.uploadDir}, DB_DATA_LOCATION=${PATHS.postgresDir})`;
      },
    });
    await sys.fs.write(PATHS.envFile, switched, { mode: envMode, rootOwned: true });
    // The disk's copy of .env (0600): a VM the disk is attached to later takes the Postgres secret from it.
    this.undo.push({
      step: 'env-copy',
      run: async () => {
        await sys.fs.remove(PATHS.dataEnvCopy);
        return `${PATHS.dataEnvCopy} removed (the secret does not stay on a disk that holds no data)`;
      },
    });
    await syncEnvCopy(sys, config, switched);
    this.did(
      'switch',
      `${PATHS.config}: dataDisk: { lun: ${this.lun} }; ${PATHS.envFile}: UPLOAD_LOCATION=${PATHS.dataUploadDir}, DB_DATA_LOCATION=${PATHS.dataPostgresDir}`,
    );
    return config;
  }

  /** `up -d` and the first boot's own wait for Immich's ping. */
  private async start(config: Config): Promise<void> {
    this.current = 'start';
    // Containers that came up on the disk hold it: they stop before the disk can be unmounted.
    this.undo.push({
      step: 'start',
      run: async () => {
        await this.composeStop();
        return `the stack stopped (it had started on ${PATHS.dataMount})`;
      },
    });
    const error = await startStack({ ...this.env, config });
    if (error) throw error;
    this.stopped = false;
    this.did(
      'start',
      `the stack runs on ${PATHS.dataMount} and Immich answers ${config.stack.serverUrl}/api/server/ping`,
    );
  }

  // --- the end --------------------------------------------------------------------------------------

  private refusal(thrown: unknown): AttachDiskReport {
    const error = asFirstbootError(thrown);
    this.record(error);
    this.report.now.immichAnswers = null;
    return this.report;
  }

  /** Undoes this run's changes in reverse, then starts the stack on the old data; says where the VM is. */
  private async failure(thrown: unknown): Promise<AttachDiskReport> {
    const error = asFirstbootError(thrown);
    this.record(error);
    const { log } = this.env;
    log.error(
      { step: this.current, code: error.code, hint: error.hint },
      `attach-disk: ${this.current} failed: ${error.message}`,
    );
    for (const action of this.undo.reverse()) {
      try {
        const summary = await action.run();
        this.report.reverted.push({ step: action.step, summary });
        log.info({ step: action.step }, `undone: ${summary}`);
      } catch (undoError) {
        const e = asFirstbootError(undoError);
        this.report.reverted.push({ step: action.step, summary: e.message, failed: true });
        log.error({ step: action.step, code: e.code }, `could not undo ${action.step}: ${e.message}`);
      }
    }
    if (this.stopped) {
      const startError = await startStack(this.env);
      const summary = startError
        ? `the stack did not come back on the old data: ${startError.message}`
        : `the stack runs on ${PATHS.uploadDir} and ${PATHS.postgresDir} again and Immich answers`;
      this.report.reverted.push({ step: 'start', summary, ...(startError ? { failed: true } : {}) });
      if (startError) log.error({ hint: startError.hint }, summary);
      else log.info({ step: 'start' }, summary);
    }
    this.report.now.immichAnswers = await ping(this.env);
    const undoFailed = this.report.reverted.filter((r) => r.failed);
    this.report.next = undoFailed.length
      ? `not everything could be undone (${undoFailed.map((r) => r.step).join(', ')}): see each line above; the data is still at ${PATHS.uploadDir} and ${PATHS.postgresDir}`
      : `the VM is on its old data (${PATHS.uploadDir}, ${PATHS.postgresDir})${this.report.now.immichAnswers ? ', Immich answering' : ''}; fix the cause, then run attach-disk again`;
    log.error(`attach-disk: ${this.report.next}`);
    return this.report;
  }

  private record(error: FirstbootError): void {
    this.report.error = {
      step: this.current,
      code: error.code,
      message: error.message,
      ...(error.hint ? { hint: error.hint } : {}),
    };
  }

  private async unmountStaging(): Promise<string> {
    const { sys } = this.env;
    if (await isMounted(this.env, STAGING)) {
      await sys.fs.remove(INCOMING);
      await this.exec('umount', [sys.fs.path(STAGING)], `unmount ${STAGING}`);
    }
    await sys.fs.remove(STAGING);
    return `${STAGING} unmounted (the partial copy on the disk removed)`;
  }

  private async exec(
    file: string,
    args: string[],
    what: string,
    options: { cwd?: string; timeoutMs?: number } = {},
  ): Promise<void> {
    const result = await this.env.sys.exec(file, args, { timeoutMs: 5 * 60_000, ...options });
    if (result.exitCode === 0) return;
    const code: ErrorCode = this.current.startsWith('copy') ? 'attach-disk-copy-failed' : 'attach-disk-step-failed';
    throw new FirstbootError(
      code,
      `attach-disk: ${what} failed (${result.notFound ? `${file} is not installed` : `exit ${result.exitCode}`}): ${tail(result.stderr || result.stdout, 3).replace(/\n/g, ' / ')}`,
      { hint: 'fix the cause it names (space, inodes, Docker), then run attach-disk again' },
    );
  }
}

/** The plan an earlier run formatted by, if any. */
async function readPlan(env: RunnerEnv): Promise<FormatPlan | undefined> {
  const text = await env.sys.fs.read(PATHS.attachPlan);
  try {
    const plan = text === undefined ? undefined : (JSON.parse(text) as Partial<FormatPlan>);
    return plan?.uuid && plan.ptuuid ? { uuid: plan.uuid, ptuuid: plan.ptuuid } : undefined;
  } catch {
    return undefined; // a torn file from a crash: the disk is then judged without it
  }
}

/**
 * Whether a .env value names `inside`: as first boot writes it, or as the host path under --root (Docker
 * bind-mounts host paths, so a tree run against a real engine names them so; with root / both are the same).
 */
function namesPath(sys: System, value: string | undefined, inside: string): boolean {
  return value === inside || value === sys.fs.path(inside);
}

/** .env with UPLOAD_LOCATION and DB_DATA_LOCATION on the disk, in the form they had; every other line as it was. */
function switchedEnv(sys: System, text: string): string {
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

/** stack-start and stack-ready, as first boot runs them; the error, or undefined once Immich answers. */
async function startStack(env: RunnerEnv): Promise<FirstbootError | undefined> {
  const errors = await runOutOfSequence(env, 'attach-disk', [stackStart, stackReady], {
    skipStack: false,
    newCert: false,
  });
  const last = errors.at(-1);
  return last ? new FirstbootError(last.code as ErrorCode, last.message, { hint: last.hint }) : undefined;
}

/** What each directory occupies on its disk (`du -s -B1`: blocks, hard links once). */
async function usedBytes(env: RunnerEnv, dirs: string[]): Promise<number[]> {
  const { sys } = env;
  const result = await sys.exec('du', ['-s', '-B1', ...dirs.map((d) => sys.fs.path(d))], { timeoutMs: 3600_000 });
  const sizes = result.stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => Number(line.split('\t')[0]));
  if (result.exitCode !== 0 || sizes.length !== dirs.length || sizes.some((n) => !Number.isFinite(n)))
    throw new FirstbootError(
      'attach-disk-step-failed',
      `attach-disk: \`du\` could not measure ${dirs.join(' and ')}: ${tail(result.stderr, 2)}`,
      {
        hint: 'fix what du names, then run attach-disk again; nothing changed',
      },
    );
  return sizes;
}

/** A tree's entries by kind and the bytes of its files and links (directory sizes differ between filesystems). */
async function treeStats(env: RunnerEnv, dir: string): Promise<{ text: string }> {
  const { sys } = env;
  const result = await sys.exec('find', [sys.fs.path(dir), '-printf', '%y %s\\n'], { timeoutMs: 3600_000 });
  if (result.exitCode !== 0)
    throw new FirstbootError(
      'attach-disk-copy-mismatch',
      `attach-disk: could not list ${dir}: ${tail(result.stderr, 2)}`,
      {
        hint: 'run attach-disk again (the copy starts over)',
      },
    );
  const counts = new Map<string, number>();
  let total = 0;
  for (const line of result.stdout.split('\n')) {
    if (!line) continue;
    const [kind, size] = line.split(' ');
    counts.set(kind, (counts.get(kind) ?? 0) + 1);
    if (kind !== 'd') total += Number(size);
  }
  const kinds: Record<string, string> = { f: 'files', d: 'directories', l: 'links' };
  const parts = [...counts.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([kind, n]) => `${n} ${kinds[kind] ?? `of kind ${kind}`}`);
  return { text: `${parts.join(', ')}, ${total} bytes` };
}

/** Whether `inside` is a mount point now (the running kernel's table). */
async function isMounted(env: RunnerEnv, inside: string): Promise<boolean> {
  const result = await env.sys.exec('mountpoint', ['-q', env.sys.fs.path(inside)], { timeoutMs: 30_000 });
  return result.exitCode === 0;
}

function bytes(n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${n} bytes` : `${value.toFixed(1)} ${units[unit]}`;
}

// --- --remove-old ---------------------------------------------------------------------------------

/**
 * Deletes /opt/immich/library and /opt/immich/postgres, and only when the move is proven: config.yaml names
 * the disk, it is mounted on /srv/immich, .env points there, Immich answers, and neither old tree is on the disk.
 */
async function removeOld(env: RunnerEnv): Promise<AttachDiskReport> {
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
