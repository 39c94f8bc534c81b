// `immich-firstboot per-boot`, run at every boot once first boot is done (immich-firstboot-perboot.service):
// notices a clone (an instance id other than the done-stamp's) and a change of the host's addresses, and
// makes new only what belongs to one instance; a done-stamp made while Azure IMDS was down takes the vmId
// the first time IMDS answers. When nothing changed it reads a few files and the network interfaces, and
// writes nothing and starts no program: it runs on every boot. That check (perBootCheck) loads no more than it
// needs: main.ts runs it on the config the journal recorded and with log-line.ts's logger (no YAML parser, no
// pino), and the steps, the runner and Docker are imported only when there is something to do.

import type { Ground } from '../context.js';
import { asFirstbootError, EXIT, type ExitCode } from '../errors.js';
import { gatherHostFacts, readMachineId } from '../host-facts.js';
import { sameVmId } from '../imds.js';
import { bootId, letsencryptWanted, retryDue } from '../letsencrypt.js';
import { createLineLogger, pickFormat, type LogSink } from '../log-line.js';
import { servedCertificates } from '../nginx.js';
import { PATHS } from '../paths.js';
import { SecretRegistry } from '../redact.js';
import type { RunnerEnv } from '../runner.js';
import {
  acquireLock,
  newJournal,
  readDoneStamp,
  readJournal,
  recordedConfig,
  writeDoneStamp,
  writeJournal,
  type CloneFacts,
  type DoneStamp,
  type HostFacts,
  type Journal,
  type StepError,
} from '../state.js';
import type { System } from '../system/index.js';
import { certNames } from '../tls.js';
import { dataDiskMissing, missingDiskWarning, missingWarning, withDiskFinding } from './per-boot-data-disk.js';

/** What this boot finds, compared with what the done-stamp and the journal recorded. */
interface Look {
  stamp: DoneStamp;
  journal: Journal | undefined;
  host: HostFacts;
  clone: boolean;
  /** The stamp holds the machine-id (or nothing) because IMDS did not answer at first boot; now it does. */
  upgrade: boolean;
  /** Why the addresses count as changed, or '' when they do not. */
  moved: string;
  /** Certificates the live site serves that are not ours (certbot's). */
  foreign: string[];
}

/** What the every-boot check leaves to perBoot when there is work: the boot id it read (Let's Encrypt configured). */
export interface Pending {
  boot: string | undefined;
  /** The configured data disk is not mounted at this boot (undefined: none configured). */
  diskMissing: boolean | undefined;
  /** Its warning is to be set (missing) or cleared (mounted again after a boot without it). */
  diskNews: boolean;
}

/**
 * The every-boot check, which takes no lock and writes nothing: 'unchanged' when there is nothing to do, the
 * exit code when first boot has not finished or IMDS did not answer, else what perBoot needs to do the work.
 * `journal`: the journal as the caller read it already.
 */
export async function perBootCheck(env: Ground, journal?: Journal): Promise<'unchanged' | ExitCode | Pending> {
  const { sys, log } = env;
  const first = await look(env, journal);
  if (first === 'not done')
    return (
      void log.info('first boot has not finished; nothing to check (immich-firstboot.service does the first boot)'),
      EXIT.ok
    );
  if (first === 'cannot tell') return EXIT.ok;
  // The boot id only matters when Let's Encrypt is configured: every other boot reads one file less.
  const boot = letsencryptWanted(env.config) ? await bootId(sys) : undefined;
  // A configured data disk is looked for once (one read of /proc/self/mountinfo; none without one).
  const diskMissing = await dataDiskMissing(sys, env.config);
  const diskNews = diskMissing === true || (diskMissing === false && missingWarning(first.journal) !== undefined);
  if (
    !first.clone &&
    !first.moved &&
    !first.upgrade &&
    !retryDue(env.config, first.journal?.facts.letsencrypt, sys.now(), boot) &&
    !diskNews
  ) {
    log.info(
      { instanceId: first.host.instanceId, addresses: first.host.addresses },
      'per-boot check: same instance, same addresses; nothing to do',
    );
    return 'unchanged';
  }
  return { boot, diskMissing, diskNews };
}

/**
 * The every-boot check as main.ts runs it first: on the Config the journal recorded, while config.yaml holds
 * the same text, and logging through log-line.ts. undefined when there is no such record (config.yaml
 * changed, another version wrote the journal, IMMICH_FIRSTBOOT_IMDS_URL is set): main.ts then loads
 * config.yaml and pino, and perBoot checks.
 */
export async function quickCheck(
  sys: System,
  io: { stdout: LogSink & { isTTY?: boolean }; env: NodeJS.ProcessEnv },
): Promise<ExitCode | Pending | undefined> {
  if (io.env.IMMICH_FIRSTBOOT_IMDS_URL) return undefined;
  const [text, journal] = await Promise.all([sys.fs.read(PATHS.config), readJournal(sys)]);
  const config = recordedConfig(journal, text);
  if (!config) return undefined;
  const format = pickFormat(io.env, io.stdout.isTTY === true);
  const log = createLineLogger({ level: config.logLevel, format, sink: io.stdout, secrets: new SecretRegistry() });
  const checked = await perBootCheck({ sys, config, log }, journal);
  return checked === 'unchanged' ? EXIT.ok : checked;
}

/** per-boot: the check, then (`checked`: what perBootCheck found already) the work it found. */
export async function perBoot(env: RunnerEnv, checked?: Pending): Promise<ExitCode> {
  const { sys } = env;
  const pending = checked ?? (await perBootCheck(env));
  if (pending === 'unchanged') return (await recordConfig(env), EXIT.ok);
  if (typeof pending === 'number') return pending;
  const due = (journal: Journal | undefined): string | undefined =>
    retryDue(env.config, journal?.facts.letsencrypt, sys.now(), pending.boot);
  // Only now take the lock (taking it writes), and look again: another run may have changed things meanwhile.
  const lock = await acquireLock(sys, 'per-boot');
  try {
    const seen = await look(env);
    if (typeof seen === 'string') return EXIT.ok;
    if (pending.diskNews) await recordDisk(env, seen, pending.diskMissing === true);
    let code: ExitCode = EXIT.ok;
    if (seen.clone && pending.diskMissing)
      env.log.warn(
        `this VM is a clone, but its data disk is missing: handled at a boot with the disk mounted (${PATHS.dataMount} holds Postgres's data, which decides the secret)`,
      );
    else if (seen.clone) code = await adoptClone(env, seen);
    else {
      if (seen.upgrade) await adoptVmId(env, seen);
      if (seen.moved) code = await followAddresses(env, seen);
    }
    // What the steps above recorded, not a new look (IMDS is asked once per boot).
    const why = code === EXIT.ok ? due(await readJournal(sys)) : undefined;
    return why ? await retryLetsEncrypt(env, why) : code;
  } finally {
    await lock.release();
  }
}

/** The data disk missing at this boot (a warning for status and the MOTD), or back after a boot without it. */
async function recordDisk(env: RunnerEnv, seen: Look, missing: boolean): Promise<void> {
  const { sys, log } = env;
  const journal = seen.journal ?? newJournal('per-boot', sys.now());
  const warning = missing ? missingDiskWarning(env.config, sys.now().toISOString()) : undefined;
  seen.journal = withDiskFinding(journal, warning);
  await writeJournal(sys, seen.journal, env.secrets);
  if (warning) log.warn({ hint: warning.hint }, warning.message);
  else log.info(`the data disk is mounted on ${PATHS.dataMount} again; its warning is cleared`);
}

/**
 * Nothing to do, but the journal holds no record of config.yaml as it is now (the file was edited, or another
 * version wrote the journal): recorded now, under the lock, so the next boots check without the YAML parser.
 * Not while first boot is unfinished; a run holding the lock, or any failure, leaves it to the next boot.
 */
async function recordConfig(env: RunnerEnv): Promise<void> {
  const { sys, log, configRecord: record } = env;
  const current = (journal: Journal | undefined): boolean =>
    journal?.status !== 'done' ||
    (journal.config?.version === record?.version && journal.config?.text === record?.text);
  if (!record || current(await readJournal(sys))) return;
  try {
    const lock = await acquireLock(sys, 'per-boot');
    try {
      const journal = await readJournal(sys);
      if (!journal || current(journal)) return;
      await writeJournal(sys, { ...journal, config: record }, env.secrets);
      log.info(`per-boot: ${PATHS.config} recorded in the journal (it changed, or another version wrote the journal)`);
    } finally {
      await lock.release();
    }
  } catch (error) {
    log.info(
      `per-boot: ${PATHS.config} not recorded in the journal (${asFirstbootError(error).message}); the next boot tries again`,
    );
  }
}

/** Let's Encrypt not issued yet and due (once per boot, after the backoff and any rate limit): try again. */
async function retryLetsEncrypt(env: RunnerEnv, why: string): Promise<ExitCode> {
  env.log.info(`${why}; trying again`);
  const { letsencrypt, runOutOfSequence } = await import('./index.js');
  const errors = await runOutOfSequence(env, 'per-boot', [letsencrypt], { skipStack: true, newCert: false });
  const journal = (await readJournal(env.sys))!;
  if (errors.length > 0) return failed(env, journal, "getting the Let's Encrypt certificate", errors);
  const le = journal.facts.letsencrypt;
  env.log.info(
    { letsencrypt: le },
    `per-boot: Let's Encrypt ${le?.state ?? 'off'}${le?.reason ? ` (${le.reason})` : ''}`,
  );
  return EXIT.ok;
}

async function look(env: Ground, known?: Journal): Promise<Look | 'not done' | 'cannot tell'> {
  const { sys, config, log } = env;
  const stamp = await readDoneStamp(sys);
  if (!stamp) return 'not done';
  const [journal, host, site] = await Promise.all([
    known ?? readJournal(sys),
    gatherHostFacts(env),
    sys.fs.read(PATHS.nginxSite),
  ]);
  if (stamp.instanceIdSource === 'azure-imds' && host.instanceIdSource !== 'azure-imds') {
    // Without IMDS neither the id nor the public address can be compared: a clone would look like a move.
    log.warn(
      { now: host.instanceIdSource },
      'Azure IMDS did not answer: cannot compare the instance id or the addresses this boot; checked again at the next boot',
    );
    return 'cannot tell';
  }
  // A vmId matches in any form Azure has shown it in; a stamped machine-id is compared with the machine-id
  // whether or not IMDS answers now, and once IMDS answers (the same machine-id) the stamp takes the vmId.
  let clone = false;
  let upgrade = false;
  if (stamp.instanceIdSource === 'azure-imds') clone = !sameVmId(stamp.instanceId, host.instanceId);
  else if (stamp.instanceIdSource === 'machine-id') {
    const machineId = await readMachineId(sys);
    clone = machineId !== undefined && machineId !== stamp.instanceId;
    upgrade = machineId !== undefined && !clone && host.instanceIdSource === 'azure-imds';
  } else upgrade = host.instanceIdSource === 'azure-imds';
  const foreign = servedCertificates(site ?? '').filter((p) => p !== PATHS.tlsCert);
  const before = journal?.facts.host;
  const same = (a: string[] = [], b: string[] = []): boolean => [...a].sort().join(' ') === [...b].sort().join(' ');
  const missing = certNames(config, host.hostname, host.addresses).filter(
    (n) => !(journal?.facts.certNames ?? []).includes(n),
  );
  const moved =
    !before || !same(before.addresses, host.addresses)
      ? `addresses ${before?.addresses.join(', ') || '(none)'} → ${host.addresses.join(', ') || '(none)'}`
      : before.hostname !== host.hostname
        ? `hostname ${before.hostname} → ${host.hostname}`
        : foreign.length === 0 && missing.length > 0
          ? `the certificate does not name ${missing.join(', ')}`
          : '';
  return { stamp, journal, host, clone, upgrade, moved, foreign };
}

/** A copy of another VM: new certificate, claim token and credentials; a new secret only if Postgres holds nothing yet. */
async function adoptClone(env: RunnerEnv, seen: Look): Promise<ExitCode> {
  const { sys, log } = env;
  const at = sys.now().toISOString();
  log.warn(
    { fromInstanceId: seen.stamp.instanceId, toInstanceId: seen.host.instanceId },
    `this VM is a clone: first boot ran on instance ${seen.stamp.instanceId}, this is ${seen.host.instanceId}; making a new certificate and credentials`,
  );
  // Only a clone needs Docker here: imported now, so the every-boot check loads none of it.
  const { settleCloneSecret } = await import('./per-boot-secret.js');
  let secret: CloneFacts['secret'];
  try {
    secret = await settleCloneSecret(env, seen.journal);
  } catch (error) {
    const failure = asFirstbootError(error);
    const journal = seen.journal ?? newJournal('per-boot', sys.now());
    return failed(env, journal, 'deciding the Postgres secret of this clone', [
      { step: 'clone-secret', at, code: failure.code, message: failure.message, hint: failure.hint },
    ]);
  }
  // The image's claim token was known to whoever built it: this VM gets its own, and a new claim link.
  const { regenerateCertSteps, runOutOfSequence } = await import('./index.js');
  const errors = await runOutOfSequence(env, 'per-boot', await regenerateCertSteps(sys), {
    skipStack: true,
    newCert: true,
    newClaimToken: true,
  });
  const journal = (await readJournal(sys))!;
  if (errors.length > 0) return failed(env, journal, 'making this clone its own', errors);
  clearFailure(journal);
  journal.facts.clone = { at, fromInstanceId: seen.stamp.instanceId, toInstanceId: seen.host.instanceId, secret };
  if (seen.moved)
    journal.facts.addressChange = {
      at,
      from: seen.journal?.facts.host?.addresses ?? [],
      to: seen.host.addresses,
      certificate: 'renewed (clone)',
    };
  await writeJournal(sys, journal, env.secrets);
  // Last, as at first boot: until the stamp names this instance, the next boot handles the clone again.
  await writeDoneStamp(sys, {
    ...seen.stamp,
    instanceId: seen.host.instanceId,
    instanceIdSource: seen.host.instanceIdSource,
  });
  log.info(
    { postgresSecret: secret, certFingerprint: journal.facts.certFingerprint },
    `clone handled: new certificate and ${PATHS.credentials}; Postgres secret ${secret}`,
  );
  return EXIT.ok;
}

/**
 * The done-stamp was made while IMDS did not answer, so it holds the machine-id (or nothing): the same VM,
 * now known by its vmId, from which clone detection works whatever becomes of /etc/machine-id. The journal
 * first, the stamp last: interrupted between the two, the next boot does it again.
 */
async function adoptVmId(env: RunnerEnv, seen: Look): Promise<void> {
  const { sys, log } = env;
  const { instanceId: from, instanceIdSource: fromSource } = seen.stamp;
  if (fromSource === 'azure-imds') return;
  const to = seen.host.instanceId;
  const journal = seen.journal ?? newJournal('per-boot', sys.now());
  journal.facts.instanceIdUpgrade = { at: sys.now().toISOString(), from, fromSource, to };
  // Only the id: the addresses recorded stay, so a change of them is still noticed (followAddresses).
  if (journal.facts.host)
    journal.facts.host = { ...journal.facts.host, instanceId: to, instanceIdSource: 'azure-imds' };
  await writeJournal(sys, journal, env.secrets);
  await writeDoneStamp(sys, { ...seen.stamp, instanceId: to, instanceIdSource: 'azure-imds' });
  log.info(
    { from, fromSource, to },
    `the done-stamp now names this VM by its Azure vmId ${to}: first boot recorded ${fromSource === 'machine-id' ? `the machine-id ${from}` : 'no instance id'} because Azure IMDS did not answer then; the same VM, not a clone`,
  );
}

/** New addresses: renew our certificate if it misses one; a certificate that is not ours is left alone. */
async function followAddresses(env: RunnerEnv, seen: Look): Promise<ExitCode> {
  const { sys, log } = env;
  const at = sys.now().toISOString();
  const from = seen.journal?.facts.host?.addresses ?? [];
  if (seen.foreign.length > 0) {
    const certificate = `not ours (nginx serves ${seen.foreign.join(', ')}): left alone`;
    log.warn(
      { served: seen.foreign },
      `${seen.moved}; nginx serves ${seen.foreign.join(', ')}, not our self-signed certificate: left alone (make sure it names the new addresses)`,
    );
    const journal = seen.journal ?? newJournal('per-boot', sys.now());
    Object.assign(journal.facts, {
      host: seen.host,
      addressChange: { at, from, to: seen.host.addresses, certificate },
    });
    await writeJournal(sys, journal, env.secrets);
    return EXIT.ok;
  }
  log.info(`${seen.moved}; checking the certificate, the site and ${PATHS.credentials}`);
  const { regenerateCertSteps, runOutOfSequence } = await import('./index.js');
  const before = seen.journal?.facts.certFingerprint;
  const errors = await runOutOfSequence(env, 'per-boot', await regenerateCertSteps(sys), {
    skipStack: true,
    newCert: false,
  });
  const journal = (await readJournal(sys))!;
  if (errors.length > 0) return failed(env, journal, 'following the new addresses', errors);
  const certificate = journal.facts.certFingerprint !== before ? 'renewed' : 'kept (it already names every address)';
  clearFailure(journal);
  journal.facts.addressChange = { at, from, to: seen.host.addresses, certificate };
  await writeJournal(sys, journal, env.secrets);
  log.info({ certFingerprint: journal.facts.certFingerprint }, `per-boot check done: certificate ${certificate}`);
  return EXIT.ok;
}

const clearFailure = (journal: Journal): void =>
  void (journal.warnings = journal.warnings.filter((w) => w.step !== 'per-boot'));

/** Recorded as a warning, so `status` and the MOTD show it; the stamp is left for the next boot to retry. */
async function failed(env: RunnerEnv, journal: Journal, what: string, errors: StepError[]): Promise<ExitCode> {
  const last = errors.at(-1)!;
  const message = `per-boot: ${what} failed at step ${last.step}: ${last.message}`;
  const hint = `${last.hint ?? 'fix the cause'}; then \`systemctl restart immich-firstboot-perboot\` (or reboot) tries again`;
  clearFailure(journal);
  journal.warnings.push({ step: 'per-boot', at: env.sys.now().toISOString(), message, hint });
  await writeJournal(env.sys, journal, env.secrets);
  env.log.error({ code: last.code, hint }, message);
  return EXIT.failed;
}

// run --data-disk-only's quick answer shares this chunk (log-line.ts, redact.ts): per-boot loads no extra file.
export { NO_DATA_DISK, quickDataDiskOnly } from './data-disk-only.js';
