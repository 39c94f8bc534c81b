// The state journal (what completed, what failed, what we found and rendered), the done-stamp, and
// the lock that keeps two runs from interleaving. All under /var/lib/immich-firstboot/.

import type { Config } from './config.js';
import { PATHS } from './paths.js';
import { FirstbootError, EXIT } from './errors.js';
import type { SecretRegistry } from './redact.js';
import type { System } from './system/index.js';
import { VERSION } from './version.js';

export interface HostFacts {
  hostname: string;
  /** Addresses to serve and to name in the certificate, most public first. */
  addresses: string[];
  publicIp: string | null;
  privateIp: string | null;
  instanceId: string;
  instanceIdSource: 'azure-imds' | 'machine-id' | 'none';
}

export interface Facts {
  host?: HostFacts;
  certFingerprint?: string;
  certNames?: string[];
  /** The fingerprint of our certificate when nginx last loaded the site (to reload only when it changed). */
  nginxCertFingerprint?: string;
  /** When the claim token in PATHS.claimToken was made (never the token itself: it is a secret). */
  claimTokenAt?: string;
  /** claimTokenAt when nginx last loaded the site (to reload when the token changed). */
  nginxClaimTokenAt?: string;
  /** The certificate the live site serves when it is not ours (certbot's); absent when it is ours. */
  servedCertificate?: string | null;
  /** null: unknown (stack not started or not asked). */
  adminRegistered?: boolean | null;
  stack?: 'started' | 'skipped';
  /** Set by `per-boot` when the instance id differs from the done-stamp's: this VM is a copy of another. */
  clone?: CloneFacts;
  /** Set by `per-boot` when the host's addresses or names changed since they were last recorded. */
  addressChange?: AddressChange;
  /** Set by `per-boot` when the done-stamp, made while Azure IMDS did not answer, took the vmId. */
  instanceIdUpgrade?: InstanceIdUpgrade;
  /** Let's Encrypt for config.domain: what the last attempt found (absent: never tried, as off). */
  letsencrypt?: LetsEncryptFacts;
  /** The data disk (config dataDisk), set by the data-disk step. */
  dataDisk?: DataDiskFacts;
}

/**
 * `plan` is recorded before the first byte is written to a blank disk (the partition table's GUID and the
 * filesystem's UUID), so a run that resumes finishes that disk and recognises it as ours; `uuid` is the
 * filesystem mounted on /srv/immich.
 */
export interface DataDiskFacts {
  link: string;
  device: string;
  plan?: { ptuuid: string; uuid: string };
  uuid?: string;
  /** This VM formatted it (else: a disk of ours from an earlier VM, reused). */
  formatted?: boolean;
}

/**
 * `status --json`'s `letsencrypt` is this object. off: no domain or e-mail configured; pending-dns: the
 * domain does not resolve to this VM (no request was sent to the CA); failed: certbot failed (reason);
 * issued: nginx serves the certificate (notAfter).
 */
export interface LetsEncryptFacts {
  state: 'off' | 'pending-dns' | 'failed' | 'issued';
  domain: string | null;
  /** Why it is not issued, in one line (certbot's reason, or what the domain resolved to). */
  reason?: string;
  hint?: string;
  /** Not before this time does per-boot try again (absent: at the next boot). */
  nextAttemptAfter?: string;
  /** The CA said this domain is rate-limited until then: nothing asks it before. */
  rateLimitedUntil?: string;
  /** The certificate's expiry (issued). */
  notAfter?: string;
  /** Failed attempts in a row that reached certbot (the backoff's exponent). */
  failures?: number;
  lastAttemptAt?: string;
  /** The boot id of the last attempt: per-boot tries at most once per boot. */
  lastAttemptBoot?: string;
}

/** The same instance under a better id: not a clone, nothing made new. */
export interface InstanceIdUpgrade {
  at: string;
  from: string;
  fromSource: Exclude<HostFacts['instanceIdSource'], 'azure-imds'>;
  to: string;
}

export interface CloneFacts {
  at: string;
  fromInstanceId: string;
  toInstanceId: string;
  /** See commands/per-boot-secret.ts: Postgres, .env and the containers always end up with the same one. */
  secret: 'kept (Postgres holds data)' | 'kept (Postgres initialised at this boot)' | 'new';
}

export interface AddressChange {
  at: string;
  from: string[];
  to: string[];
  /** What became of the certificate: renewed, kept (it already named every address), or not ours. */
  certificate: string;
}

export interface JournalEntry {
  step: string;
  at: string;
}

export interface StepError extends JournalEntry {
  code: string;
  message: string;
  hint?: string;
}

export interface StepWarning extends JournalEntry {
  message: string;
  hint?: string;
}

/** The step of the warning per-boot leaves while the configured data disk is not mounted (the MOTD shows it). */
export const DATA_DISK_MISSING = 'per-boot-data-disk';

export interface Journal {
  version: 1;
  status: 'running' | 'error' | 'done';
  command: string;
  startedAt: string;
  updatedAt: string;
  finishedAt?: string;
  /** The step running, or the one that failed. */
  step: string | null;
  completed: Record<string, { at: string; changed: boolean; skipped?: boolean }>;
  errors: StepError[];
  warnings: StepWarning[];
  facts: Facts;
  /** sha256 of what we last wrote to each managed file, to tell our content from an operator's edit. */
  managed: Record<string, string>;
  config?: ConfigRecord;
}

/**
 * config.yaml as the last command that wrote the journal read it (its text; null: no file) and the Config
 * this version made of it. per-boot's every-boot check takes `config` from here while the file holds the
 * same text and this version wrote it, and so loads no YAML parser; any other text is parsed as always.
 * Recorded only for the root's config.yaml read without IMMICH_FIRSTBOOT_IMDS_URL.
 */
export interface ConfigRecord {
  version: string;
  text: string | null;
  config: Config;
}

/** What config.yaml holding `text` (undefined: no file) means, as the journal recorded it; else undefined. */
export function recordedConfig(journal: Journal | undefined, text: string | undefined): Config | undefined {
  const record = journal?.config;
  return record?.version === VERSION && record.text === (text ?? null) ? record.config : undefined;
}

export interface DoneStamp {
  instanceId: string;
  instanceIdSource: HostFacts['instanceIdSource'];
  completedAt: string;
  version: string;
}

export function newJournal(command: string, now: Date): Journal {
  const at = now.toISOString();
  return {
    version: 1,
    status: 'running',
    command,
    startedAt: at,
    updatedAt: at,
    step: null,
    completed: {},
    errors: [],
    warnings: [],
    facts: {},
    managed: {},
  };
}

export async function readJournal(sys: System): Promise<Journal | undefined> {
  return readJson<Journal>(sys, PATHS.journal);
}

/** `status` and the MOTD show what the journal holds (errors, warnings): every known secret is redacted first. */
export async function writeJournal(sys: System, journal: Journal, secrets: SecretRegistry): Promise<void> {
  journal.updatedAt = sys.now().toISOString();
  await sys.fs.write(PATHS.journal, secrets.scrub(`${JSON.stringify(journal, null, 2)}\n`), {
    mode: 0o600,
    dirMode: 0o700,
  });
}

export async function readDoneStamp(sys: System): Promise<DoneStamp | undefined> {
  return readJson<DoneStamp>(sys, PATHS.doneStamp);
}

export async function writeDoneStamp(sys: System, stamp: DoneStamp): Promise<void> {
  await sys.fs.write(PATHS.doneStamp, `${JSON.stringify(stamp, null, 2)}\n`, { mode: 0o644, dirMode: 0o700 });
}

async function readJson<T>(sys: System, inside: string): Promise<T | undefined> {
  const text = await sys.fs.read(inside);
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as T;
  } catch (cause) {
    throw new FirstbootError('state-corrupt', `${inside} is not valid JSON`, {
      cause,
      hint: `move ${inside} aside and run again: steps are idempotent, so a fresh journal redoes only what is needed`,
    });
  }
}

// --- the lock ---------------------------------------------------------------------------------

export interface LockHolder {
  pid: number;
  /** The holder's start time in clock ticks (/proc/PID/stat field 22), so a reused PID is not mistaken for it. */
  start: string;
  command: string;
}

export function isAlive(sys: System, holder: LockHolder): boolean {
  return sys.processStart(holder.pid) === holder.start;
}

export async function readLockHolder(sys: System): Promise<LockHolder | undefined> {
  const text = await sys.fs.read(PATHS.lock);
  if (!text) return undefined;
  try {
    return JSON.parse(text) as LockHolder;
  } catch {
    return undefined;
  }
}

export interface Lock {
  release(): Promise<void>;
}

/**
 * Takes the lock or throws (exit code 4) naming the run that holds it. A lock left by a process that
 * died (power cut, SIGKILL) is taken over: that is how a crashed first boot resumes.
 */
export async function acquireLock(sys: System, command: string): Promise<Lock> {
  const me: LockHolder = { pid: process.pid, start: sys.processStart(process.pid) ?? '0', command };
  const body = JSON.stringify(me);
  await sys.fs.mkdir(PATHS.stateDir, 0o700);
  await sys.fs.mkdir(PATHS.lockScratch, 0o700);
  for (let attempt = 0; attempt < 5; attempt++) {
    // The content is complete before the name appears: write a private file, then hard-link it. Both
    // it and a stale lock moved aside stay in lockScratch, where the holder's sweep of temp files
    // left by a crashed run (runner.ts) cannot delete them under a racer's feet.
    const mine = `${PATHS.lockScratch}/lock.${pidTag()}.tmp`;
    await sys.fs.write(mine, body, { mode: 0o600, dirMode: 0o700 });
    const linked = await sys.fs.linkNew(mine, PATHS.lock);
    await sys.fs.remove(mine);
    if (linked) {
      await removeDeadScratch(sys);
      return { release: async () => releaseIfMine(sys, body) };
    }

    const holder = await readLockHolder(sys);
    if (holder && isAlive(sys, holder)) {
      throw new FirstbootError('locked', `another immich-firstboot (${holder.command}, pid ${holder.pid}) is running`, {
        exitCode: EXIT.locked,
        hint: 'wait for it to finish (`immich-firstboot status` shows its progress), then run again if needed',
      });
    }
    // Stale. Rename it away (only one racer can), and delete it only if it is still the stale one.
    const aside = `${PATHS.lockScratch}/stale.${pidTag()}.tmp`;
    try {
      await sys.fs.rename(PATHS.lock, aside);
    } catch {
      continue;
    }
    const moved = await sys.fs.read(aside);
    if (moved !== undefined && holder && moved !== JSON.stringify(holder)) {
      await sys.fs.linkNew(aside, PATHS.lock); // we moved a live racer's lock: put it back
    }
    await sys.fs.remove(aside);
  }
  throw new FirstbootError('locked', `could not take the lock ${PATHS.lock}`, {
    exitCode: EXIT.locked,
    hint: 'another run keeps taking it; wait and run again',
  });
}

/** Scratch names carry our pid, so two racers never share one and a dead racer's are known as such. */
const pidTag = (): string => process.pid.toString(16).padStart(8, '0');
// `lock.<pid>.tmp`, `stale.<pid>.tmp`, and the temp file of a write of either (RootedFs's prefix).
const SCRATCH_PID = /^(?:\.immich-firstboot-)?(?:lock|stale)\.([0-9a-f]{8})\./;

/** What a process killed while trying for the lock left in lockScratch; a live racer's files stay. */
async function removeDeadScratch(sys: System): Promise<void> {
  for (const name of await sys.fs.list(PATHS.lockScratch)) {
    const pid = SCRATCH_PID.exec(name)?.[1];
    if (pid !== undefined && sys.processStart(parseInt(pid, 16)) === undefined)
      await sys.fs.remove(`${PATHS.lockScratch}/${name}`);
  }
}

async function releaseIfMine(sys: System, body: string): Promise<void> {
  if ((await sys.fs.read(PATHS.lock)) === body) await sys.fs.remove(PATHS.lock);
}
