// `immich-firstboot status [--json]`: like `cloud-init status`, from the journal, the stamp and the lock.

import { EXIT, type ExitCode } from '../errors.js';
import { PATHS } from '../paths.js';
import {
  isAlive,
  readDoneStamp,
  readJournal,
  readLockHolder,
  type AddressChange,
  type CloneFacts,
  type InstanceIdUpgrade,
  type Journal,
  type LetsEncryptFacts,
  type StepError,
  type StepWarning,
} from '../state.js';
import { FIRST_BOOT_IDS } from '../steps/ids.js';
import type { System } from '../system/index.js';

export type Status = 'not started' | 'running' | 'done' | 'error';

export interface StatusReport {
  status: Status;
  /** The step running, the one that failed, or where an interrupted run will resume. */
  step: string | null;
  detail: string;
  errors: StepError[];
  warnings: StepWarning[];
  startedAt: string | null;
  updatedAt: string | null;
  finishedAt: string | null;
  completed: string[];
  pending: string[];
  instanceId: string | null;
  addresses: string[];
  certFingerprint: string | null;
  adminRegistered: boolean | null;
  /** `per-boot` found this VM to be a copy of another instance (and what it did about it). */
  clone: CloneFacts | null;
  /** `per-boot` found new addresses (and what became of the certificate). */
  addressChange: AddressChange | null;
  /** `per-boot` gave the done-stamp this VM's vmId (first boot ran while Azure IMDS did not answer). */
  instanceIdUpgrade: InstanceIdUpgrade | null;
  /** Let's Encrypt for the domain: state off | pending-dns | failed | issued, and why / until when. */
  letsencrypt: LetsEncryptStatus;
}

export interface LetsEncryptStatus {
  state: LetsEncryptFacts['state'];
  domain: string | null;
  reason: string | null;
  hint: string | null;
  nextAttemptAfter: string | null;
  rateLimitedUntil: string | null;
  notAfter: string | null;
  /** Once issued: what the browser and the mobile app are given. */
  urls: { web: string; mobile: string } | null;
}

function letsencryptStatus(facts: LetsEncryptFacts | undefined): LetsEncryptStatus {
  const issued = facts?.state === 'issued' && facts.domain !== null;
  return {
    state: facts?.state ?? 'off',
    domain: facts?.domain ?? null,
    reason: facts?.reason ?? null,
    hint: facts?.hint ?? null,
    nextAttemptAfter: facts?.nextAttemptAfter ?? null,
    rateLimitedUntil: facts?.rateLimitedUntil ?? null,
    notAfter: facts?.notAfter ?? null,
    urls: issued ? { web: `https://${facts.domain}/`, mobile: `https://${facts.domain}/api` } : null,
  };
}

/** One line on Let's Encrypt, for `status` and the MOTD (undefined when it is off). */
export function letsencryptLine(le: LetsEncryptStatus): string | undefined {
  if (le.state === 'off') return undefined;
  if (le.urls) return `issued for ${le.domain} (until ${le.notAfter}): ${le.urls.web} (mobile app: ${le.urls.mobile})`;
  const next = le.nextAttemptAfter ? `not before ${le.nextAttemptAfter}` : 'at the next boot';
  return `${le.state} for ${le.domain}: ${le.reason ?? 'no reason recorded'}; tried again ${next}`;
}

export async function statusReport(sys: System): Promise<StatusReport> {
  const [journal, stamp, holder] = await Promise.all([readJournal(sys), readDoneStamp(sys), readLockHolder(sys)]);
  const running = holder !== undefined && holder.command === 'run' && isAlive(sys, holder);
  const completed = FIRST_BOOT_IDS.filter((id) => journal?.completed[id]);
  const pending = FIRST_BOOT_IDS.filter((id) => !journal?.completed[id]);
  const base = fromJournal(journal, completed, pending);
  if (running)
    return { ...base, status: 'running', detail: `running step ${journal?.step ?? '(starting)'} (pid ${holder.pid})` };
  if (journal?.status === 'error') {
    const last = journal.errors.at(-1);
    return { ...base, status: 'error', detail: `failed at step ${journal.step}: ${last?.message ?? 'unknown error'}` };
  }
  if (stamp)
    return {
      ...base,
      status: 'done',
      step: null,
      finishedAt: stamp.completedAt,
      detail: `first boot done ${stamp.completedAt}`,
    };
  if (journal) {
    // A journal, no stamp, and nobody holds the lock: the run was killed (power cut, SIGKILL).
    const at = journal.status === 'done' ? null : journal.step;
    const error = {
      step: at ?? 'done-stamp',
      at: journal.updatedAt,
      code: 'interrupted',
      message: at
        ? `first boot was interrupted during step ${at}`
        : 'first boot was interrupted after its last step, before the done-stamp',
      hint: `it resumes at ${at ?? 'the done-stamp'} on the next boot; to resume now: systemctl start immich-firstboot.service (or immich-firstboot run)`,
    };
    return { ...base, status: 'error', step: error.step, errors: [error], detail: error.message };
  }
  return { ...base, status: 'not started', detail: 'first boot has not run yet' };
}

function fromJournal(journal: Journal | undefined, completed: string[], pending: string[]): StatusReport {
  const facts = journal?.facts ?? {};
  return {
    status: 'not started',
    step: journal?.step ?? null,
    detail: '',
    errors: journal?.errors ?? [],
    warnings: journal?.warnings ?? [],
    startedAt: journal?.startedAt ?? null,
    updatedAt: journal?.updatedAt ?? null,
    finishedAt: journal?.finishedAt ?? null,
    completed,
    pending,
    instanceId: facts.host?.instanceId ?? null,
    addresses: facts.host?.addresses ?? [],
    certFingerprint: facts.certFingerprint ?? null,
    adminRegistered: facts.adminRegistered ?? null,
    clone: facts.clone ?? null,
    addressChange: facts.addressChange ?? null,
    instanceIdUpgrade: facts.instanceIdUpgrade ?? null,
    letsencrypt: letsencryptStatus(facts.letsencrypt),
  };
}

export function statusExitCode(report: StatusReport): ExitCode {
  if (report.status === 'done') return EXIT.ok;
  if (report.status === 'error') return EXIT.failed;
  return EXIT.notDone;
}

export function formatStatus(report: StatusReport): string {
  const lines = [`status: ${report.status}`, `detail: ${report.detail}`];
  if (report.step) lines.push(`step: ${report.step}`);
  if (report.startedAt) lines.push(`started: ${report.startedAt}`);
  if (report.finishedAt) lines.push(`finished: ${report.finishedAt}`);
  if (report.instanceId) lines.push(`instance: ${report.instanceId}`);
  if (report.instanceIdUpgrade) {
    const { at, from, fromSource, to } = report.instanceIdUpgrade;
    lines.push(
      `instance id: ${at}: ${fromSource === 'machine-id' ? `machine-id ${from}` : 'none'} (Azure IMDS was down at first boot) → Azure vmId ${to}`,
    );
  }
  if (report.addresses.length) lines.push(`addresses: ${report.addresses.join(', ')}`);
  if (report.certFingerprint) lines.push(`certificate: SHA256 ${report.certFingerprint}`);
  const le = letsencryptLine(report.letsencrypt);
  if (le) lines.push(`let's encrypt: ${le}`);
  if (report.adminRegistered !== null)
    lines.push(
      `first admin: ${report.adminRegistered ? 'registered' : `not registered yet (open the claim link in ${PATHS.credentials}, then sign up)`}`,
    );
  if (report.clone) lines.push(`clone: ${cloneLine(report.clone)}`);
  if (report.addressChange) {
    const { at, from, to, certificate } = report.addressChange;
    lines.push(
      `address change: ${at}: ${from.join(', ') || '(none)'} → ${to.join(', ') || '(none)'}; certificate ${certificate}`,
    );
  }
  if (report.pending.length && report.status !== 'done') lines.push(`pending: ${report.pending.join(', ')}`);
  for (const e of report.errors)
    lines.push(`error: [${e.step}] ${e.message}`, ...(e.hint ? [`  hint: ${e.hint}`] : []));
  for (const w of report.warnings)
    lines.push(`warning: [${w.step}] ${w.message}`, ...(w.hint ? [`  hint: ${w.hint}`] : []));
  if (report.status === 'done') lines.push(`next: read ${PATHS.credentials}`);
  return `${lines.join('\n')}\n`;
}

/** One line on a clone, for `status` and the MOTD. */
export function cloneLine(clone: CloneFacts): string {
  return `a copy of instance ${clone.fromInstanceId}, noticed ${clone.at}: new certificate and credentials; Postgres secret ${clone.secret}`;
}
