// `immich-firstboot prepare-image [--pull] [--force]`: before an image is captured, remove everything that
// makes this VM "this VM" (a test boot's containers and volumes, state, .env and its secret, certificates,
// credentials, rendered site) so every clone runs its own first boot, re-arm the unit, then prove no
// secret material of ours is left in the tree. Under the lock, so never during a first boot.

import type { Config } from '../config.js';
import { readDbPassword } from '../env-file-format.js';
import { EXIT, FirstbootError } from '../errors.js';
import { dataDirs } from '../immich-env.js';
import { PATHS } from '../paths.js';
import { acquireLock } from '../state.js';
import type { System } from '../system/index.js';
import { prepareDocker, type DockerReport } from './prepare-docker.js';
import { imageLeftovers, type ImageWarning } from './prepare-leftovers.js';
import { blockingSkips, formatScan, scanForSecrets, scanVerdict, type ScanReport } from './prepare-scan.js';

// The state directory is emptied, not removed: the lock inside it is held until the very end.
const REMOVE = [
  PATHS.envFile,
  PATHS.tlsDir,
  // The claim token is per VM: each VM's first boot makes its own.
  PATHS.claimTokenDir,
  PATHS.credentials,
  PATHS.nginxSite,
  PATHS.nginxSiteEnabled,
] as const;

export interface PrepareReport {
  docker: DockerReport;
  removed: string[];
  restoredDefaultSite: boolean;
  /** The enablement link we created (it was missing), if any. */
  enabledUnit: string | null;
  /** Why the unit will not run at the next boot, if it will not. */
  unitProblem: string | null;
  /** Files holding a copy of the old secret or key (the scan's `found`). */
  leftovers: string[];
  scan: ScanReport;
  /** What image certifications flag, with the fix: warnings, not failures. */
  warnings: ImageWarning[];
  /** No copy found and everything that could hold one was read. */
  verified: boolean;
}

export interface PrepareOptions {
  force: boolean;
  pull: boolean;
  /** Use the running host's Docker even though the root is not / (it is always used with root /). */
  hostDocker: boolean;
}

export async function prepareImage(sys: System, config: Config, opts: PrepareOptions): Promise<PrepareReport> {
  const lock = await acquireLock(sys, 'prepare-image');
  try {
    await refuseData(sys, config, opts.force);
    const password = await passwordOf(sys);
    if (password === undefined && (await sys.fs.exists(PATHS.envFile))) {
      throw new FirstbootError(
        'image-secret-unknown',
        `${PATHS.envFile} exists but no DB_PASSWORD could be read from it, so the scan would not know what to look for; nothing was removed`,
        {
          hint: `give ${PATHS.envFile} its DB_PASSWORD line back (the value the test boot used), or remove the file and every copy of it yourself, then run \`immich-firstboot prepare-image\` again`,
        },
      );
    }
    const needles = [...(password === undefined ? [] : [password]), ...(await keyBodiesOf(sys))];
    // Docker first: a failed pull or down leaves every file as it was, so the builder can just rerun.
    const docker = await prepareDocker(sys, config, { pull: opts.pull, useDocker: sys.onHost || opts.hostDocker });
    const removed: string[] = [];
    for (const name of (await sys.fs.list(PATHS.stateDir)).sort()) {
      const inside = `${PATHS.stateDir}/${name}`;
      if (inside === PATHS.lock) continue;
      await sys.fs.remove(inside);
      removed.push(inside);
    }
    for (const inside of REMOVE) {
      if ((await sys.fs.info(inside)) === undefined) continue;
      await sys.fs.remove(inside);
      removed.push(inside);
    }
    // We removed nginx's default site when we enabled ours; give the image back the distro's default.
    let restoredDefaultSite = false;
    if (
      removed.includes(PATHS.nginxSiteEnabled) &&
      (await sys.fs.exists(PATHS.nginxDefaultSite)) &&
      (await sys.fs.readlink(PATHS.nginxDefaultEnabled)) === undefined
    ) {
      await sys.fs.symlink(PATHS.nginxDefaultSite, PATHS.nginxDefaultEnabled);
      restoredDefaultSite = true;
    }
    const unit = await rearmUnit(sys);
    const scan = await scanForSecrets(sys, needles);
    const warnings = await imageLeftovers(sys);
    const verified = scan.sought > 0 && !scan.found.length && !blockingSkips(scan).length;
    return { docker, removed, restoredDefaultSite, ...unit, leftovers: scan.found, scan, warnings, verified };
  } finally {
    await lock.release();
  }
}

async function refuseData(sys: System, config: Config, force: boolean): Promise<void> {
  const held = [];
  // Where the data is now, and the OS disk's own places (a data disk configured after a first boot without one).
  const dirs = new Set([...Object.values(dataDirs(config)), PATHS.uploadDir, PATHS.postgresDir]);
  for (const dir of dirs) if ((await sys.fs.list(dir)).length) held.push(dir);
  if (held.length && !force) {
    throw new FirstbootError(
      'image-has-data',
      `${held.join(' and ')} hold data: an image must not ship a user's photos or database; nothing was removed`,
      {
        exitCode: EXIT.failed,
        hint: 'move the data away (or boot a fresh VM to build the image); `prepare-image --force` removes our files anyway and leaves the data',
      },
    );
  }
}

/**
 * The done-stamp is gone, so ConditionPathExists=! lets the unit run; it also has to be enabled (the
 * package enables it; someone may have disabled it on the build VM) and not masked.
 */
async function rearmUnit(sys: System): Promise<{ enabledUnit: string | null; unitProblem: string | null }> {
  const unitFile = (await sys.fs.exists(PATHS.unitFile))
    ? PATHS.unitFile
    : (await sys.fs.exists(PATHS.unitFileUsr))
      ? PATHS.unitFileUsr
      : undefined;
  if (!unitFile)
    return {
      enabledUnit: null,
      unitProblem: `${PATHS.unitFile} is not installed in this tree (install the immich-firstboot package)`,
    };
  if ((await sys.fs.readlink(PATHS.unitMask)) === PATHS.devNull)
    return {
      enabledUnit: null,
      unitProblem: `the unit is masked (${PATHS.unitMask} -> /dev/null; \`systemctl unmask immich-firstboot.service\`)`,
    };
  if ((await sys.fs.readlink(PATHS.unitWants)) !== undefined) return { enabledUnit: null, unitProblem: null };
  await sys.fs.symlink(unitFile, PATHS.unitWants);
  return { enabledUnit: PATHS.unitWants, unitProblem: null };
}

/** The Postgres password in .env, read as the run reads it (bare, quoted, export, spaced), if one comes out of it. */
async function passwordOf(sys: System): Promise<string | undefined> {
  return readDbPassword(sys);
}

/** The base64 body of every private key we made, line by line, as it would appear in a copy. */
async function keyBodiesOf(sys: System): Promise<string[]> {
  const needles: string[] = [];
  for (const gen of await sys.fs.list(PATHS.tlsDir)) {
    const key = await sys.fs.read(`${PATHS.tlsDir}/${gen}/key.pem`);
    for (const line of key?.split('\n') ?? []) if (/^[A-Za-z0-9+/=]{40,}$/.test(line)) needles.push(line);
  }
  return needles;
}

export function formatPrepare(report: PrepareReport): string {
  const { docker } = report;
  const lines = docker.pulled.map((image) => `pulled ${image}`);
  if (docker.skipped) lines.push(`skipped Docker: ${docker.skipped}`);
  else
    lines.push(
      ...(docker.removed.length
        ? docker.removed.map((o) => `${o.startsWith('container ') ? 'stopped and removed' : 'removed'} ${o}`)
        : ['no container, volume or network of project immich to remove']),
    );
  lines.push(...report.removed.map((p) => `removed ${p}`));
  if (!report.removed.length) lines.push('no file of ours to remove');
  if (report.restoredDefaultSite) lines.push(`restored ${PATHS.nginxDefaultEnabled}`);
  if (report.enabledUnit) lines.push(`re-enabled immich-firstboot.service: created ${report.enabledUnit}`);
  lines.push(
    report.unitProblem
      ? `WARNING: not re-armed: ${report.unitProblem}`
      : `re-armed: ${PATHS.doneStamp} is gone, so immich-firstboot.service runs at the next boot`,
  );
  lines.push(...formatScan(report.scan));
  lines.push(...report.warnings.map((w) => `WARNING: ${w.path}: ${w.what}; fix: ${w.fix}`));
  lines.push(scanVerdict(report.scan));
  return `${lines.join('\n')}\n`;
}

/** Exit 1 when a copy remains, or when something that may hold one could not be read. */
export function prepareFailed(report: PrepareReport): boolean {
  return report.scan.found.length > 0 || blockingSkips(report.scan).length > 0;
}
