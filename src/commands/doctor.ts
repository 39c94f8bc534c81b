// `immich-firstboot doctor [--json] [--live]`: audits the claims the image makes, each as pass / warn /
// fail with the fix, or "skipped (why)" when it cannot run here. A check never passes because it could
// not run.
//
// The tree (modes, daemon.json, the certificate, `nginx -t`) is audited wherever --root points. The
// host (sockets, containers, the door, Immich's answers, the units) is audited on `/`, and under
// --root only with --live: an image builder auditing an offline tree gets "skipped", never a failure
// caused by the build machine. With --live the ports and URLs still come from the tree: the site's
// `listen` lines, config.yaml's stack.serverUrl, the certificate the site names.

import { DEFAULT_CONFIG, type Config } from '../config.js';
import { loadConfig } from '../config-file.js';
import type { Ground } from '../context.js';
import { projectContainers } from '../docker.js';
import { asFirstbootError, EXIT, type ExitCode } from '../errors.js';
import { secretsOnDisk } from '../env-file-format.js';
import { createLogger, type LogSink } from '../log.js';
import { PATHS } from '../paths.js';
import type { System } from '../system/index.js';
import { skip, type Audit, type DoctorCheck, type Finding } from './doctor-audit.js';
import {
  containersHealthyCheck,
  loopbackCheck,
  nginxOnlyCheck,
  pingThroughNginxCheck,
  signUpCheck,
} from './doctor-host.js';
import {
  certExpiryCheck,
  certNamesCheck,
  composeModeCheck,
  credentialsModeCheck,
  envModeCheck,
  immichDirModeCheck,
  keyModeCheck,
  logRotationCheck,
  nginxConfigCheck,
} from './doctor-tree.js';
import { unattendedUpgradesCheck } from './doctor-apt.js';
import { dataDiskCheck, dataOnResourceDiskCheck, dataSpaceCheck } from './doctor-data-disk.js';
import { fail2banCheck } from './doctor-fail2ban.js';
import { apparmorCheck, auditdCheck } from './doctor-services.js';
import { ufwCheck } from './doctor-ufw.js';
import { perbootUnitStateCheck, unitStateCheck } from './doctor-units.js';

export type { Finding } from './doctor-audit.js';

/**
 * Every check, in the order doctor reports them: the tree's, then the running host's, then the seed image's
 * host hardening (read from the tree, and from the host when live).
 */
export const DOCTOR: readonly DoctorCheck[] = [
  immichDirModeCheck,
  envModeCheck,
  composeModeCheck,
  credentialsModeCheck,
  keyModeCheck,
  logRotationCheck,
  certExpiryCheck,
  certNamesCheck,
  nginxConfigCheck,
  dataDiskCheck,
  dataSpaceCheck,
  dataOnResourceDiskCheck,
  loopbackCheck,
  nginxOnlyCheck,
  containersHealthyCheck,
  pingThroughNginxCheck,
  signUpCheck,
  unitStateCheck,
  perbootUnitStateCheck,
  ufwCheck,
  fail2banCheck,
  apparmorCheck,
  unattendedUpgradesCheck,
  auditdCheck,
];

const NEEDS_HOST = 'needs the running host: --root is not /; add --live to audit this host against the tree';

export interface DoctorRequest {
  /** `--config FILE`, if given. */
  configPath: string | undefined;
  env: NodeJS.ProcessEnv;
  /** `--live`: audit this running host too under --root (always on with root /). */
  live: boolean;
  /** Where the checks' warnings are logged: not stdout, which holds the report. */
  logSink: LogSink;
}

/** config.yaml's finding first, then every check's. */
export async function doctor(sys: System, request: DoctorRequest): Promise<Finding[]> {
  const { config, finding } = await configOrDefaults(sys, request);
  const log = createLogger({ level: 'warn', format: 'json', sink: request.logSink, secrets: await secretsOnDisk(sys) });
  return [finding, ...(await audit({ sys, config, log }, request.live || sys.onHost))];
}

/** A broken config.yaml is itself a finding; the audit goes on with the defaults. */
async function configOrDefaults(
  sys: System,
  { configPath, env }: DoctorRequest,
): Promise<{ config: Config; finding: Finding }> {
  try {
    const config = await loadConfig(sys, configPath, env);
    return {
      config,
      finding: { id: 'config', result: 'pass', detail: `${configPath ?? PATHS.config} is valid (or absent: defaults)` },
    };
  } catch (error) {
    const e = asFirstbootError(error);
    const finding: Finding = {
      id: 'config',
      result: 'fail',
      detail: `${e.message}; the checks below use the defaults`,
      fix: e.hint ?? `fix ${PATHS.config}`,
    };
    return { config: DEFAULT_CONFIG, finding };
  }
}

/** Runs DOCTOR in order; without the live host, the checks that need it are skipped, saying why. */
async function audit(ground: Ground, live: boolean): Promise<Finding[]> {
  const site = await ground.sys.fs.read(PATHS.nginxSite);
  const containers = live ? await projectContainers(ground).catch((e: unknown) => asFirstbootError(e)) : undefined;
  const done = new Map<(audit: Audit) => Promise<unknown>, Promise<unknown>>();
  const view: Audit = {
    ...ground,
    live,
    site,
    containers,
    once<T>(work: (audit: Audit) => Promise<T>): Promise<T> {
      if (!done.has(work)) done.set(work, work(view));
      // The work itself is the key, so what it left there is its own T.
      return done.get(work) as Promise<T>;
    },
  };
  const findings: Finding[] = [];
  for (const check of DOCTOR) {
    const verdict = check.needsHost && !live ? skip(NEEDS_HOST) : await check.run(view);
    findings.push({ id: check.id, ...verdict });
  }
  return findings;
}

export function doctorExitCode(findings: readonly Finding[]): ExitCode {
  return findings.some((f) => f.result === 'fail') ? EXIT.failed : EXIT.ok;
}

export function formatDoctor(findings: readonly Finding[]): string {
  return (
    findings
      .map(
        (f) =>
          `${f.result === 'skipped' ? `skipped (${f.detail})` : f.result}: ${f.id}${f.result === 'skipped' ? '' : ` — ${f.detail}`}${f.fix ? `\n  fix: ${f.fix}` : ''}`,
      )
      .join('\n') + '\n'
  );
}
