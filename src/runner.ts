// Runs steps in order under the lock, records each completion in the journal *after* it succeeds,
// stops at the first failure (recording step, error and hint for `status`), and resumes there.

import { asFirstbootError, EXIT, type ExitCode } from './errors.js';
import type { Ground } from './context.js';
import { readClaimToken } from './claim-token.js';
import { readDbPassword } from './env-file-format.js';
import type { SecretRegistry } from './log.js';
import type { Notifier } from './notify.js';
import { PATHS, PRIVATE_WORK, WRITTEN_DIRS } from './paths.js';
import {
  acquireLock,
  newJournal,
  readDoneStamp,
  readJournal,
  writeDoneStamp,
  writeJournal,
  type ConfigRecord,
  type Journal,
  type StepError,
} from './state.js';
import type { RunOptions, Step, StepContext } from './steps/step.js';
import { VERSION } from './version.js';

export interface RunnerEnv extends Ground {
  notify: Notifier;
  secrets: SecretRegistry;
  /** config.yaml as read for `config`, for the journal (per-boot's every-boot check); absent: not recorded. */
  configRecord?: ConfigRecord;
}

export async function runFirstBoot(env: RunnerEnv, steps: readonly Step[], options: RunOptions): Promise<ExitCode> {
  const { sys, log } = env;
  const lock = await acquireLock(sys, 'run');
  try {
    await registerKnownSecret(env);
    const stamp = await readDoneStamp(sys);
    const journal = (await readJournal(sys)) ?? newJournal('run', sys.now());
    const wanted = steps.filter((s) => !s.skipReason?.(options));
    const firstPending = steps.findIndex((s) => wanted.includes(s) && !journal.completed[s.id]);
    if (stamp && firstPending === -1) {
      log.info(
        { completedAt: stamp.completedAt, instanceId: stamp.instanceId },
        `first boot already done (${stamp.completedAt}); nothing to do`,
      );
      return EXIT.ok;
    }
    for (const stale of (await Promise.all(WRITTEN_DIRS.map((d) => sys.fs.removeStaleTemps(d)))).flat()) {
      log.info({ path: stale }, 'removed a temp file left by an interrupted run');
    }
    for (const stale of (await Promise.all(PRIVATE_WORK.map((d) => sys.fs.removeStalePrivateDirs(d)))).flat()) {
      log.info({ path: stale }, 'removed a work directory left by an interrupted run');
    }
    // `up -d` is the first program a first boot starts: execa loads while the steps before it wait on the disk.
    if (!options.skipStack && !options.through) sys.preloadExec?.();
    const resuming = firstPending !== 0 && Object.keys(journal.completed).length > 0;
    const resumeAt = steps[firstPending]?.id ?? 'the done-stamp';
    // Every step from the first pending one on runs again: each is idempotent and cheap when done.
    // None pending but no stamp: the last run died between its last step and the stamp.
    const from = firstPending === -1 ? steps.length : restartPoint(steps, wanted, firstPending);
    const earlier = from < firstPending ? `, from ${steps[from]?.id} (${steps[firstPending]?.resumeFrom?.why})` : '';
    if (resuming) log.info({ step: resumeAt }, `resuming first boot at step ${resumeAt}${earlier}`);
    else log.info({ version: VERSION, root: sys.fs.root }, 'first boot starting');
    Object.assign(journal, { status: 'running', command: 'run', errors: [] });
    delete journal.finishedAt;

    const through = options.through === undefined ? -1 : steps.findIndex((s) => s.id === options.through);
    if (through !== -1 && firstPending > through) {
      log.info(`steps through ${options.through} already done; nothing to do before the rest of the first boot`);
      return EXIT.ok;
    }
    const until = through === -1 ? steps.length : through + 1;
    const ran = await runSteps(env, journal, steps.slice(from, until), options, steps.length, from);
    if (!ran) {
      // The step's own line said what failed and why; this one says what stands and how to go on.
      const failed = journal.step ?? 'the failed step';
      const kept = steps.filter((s) => journal.completed[s.id]).map((s) => s.id);
      log.error(
        { step: failed, kept },
        `first boot stopped at ${failed}; kept: ${kept.length ? kept.join(', ') : 'nothing yet'}` +
          `${kept.includes('env') ? ` (the Postgres secret in ${PATHS.envFile} never changes)` : ''}; ` +
          `fix the cause above, then run \`immich-firstboot\` (or \`systemctl restart immich-firstboot\`): it resumes at ${failed}`,
      );
      return EXIT.failed;
    }

    if (until < steps.length) {
      log.info(`first boot: steps through ${options.through} done; the others follow (\`immich-firstboot run\`)`);
      return EXIT.ok;
    }
    const host = journal.facts.host;
    journal.status = 'done';
    journal.step = null;
    journal.finishedAt = sys.now().toISOString();
    if (env.configRecord) journal.config = env.configRecord;
    await writeJournal(sys, journal, env.secrets);
    // The done-stamp comes last: it exists only once every step asked for has completed.
    await writeDoneStamp(sys, {
      instanceId: host?.instanceId ?? 'unknown',
      instanceIdSource: host?.instanceIdSource ?? 'none',
      completedAt: journal.finishedAt,
      version: VERSION,
    });
    const skipped = steps.filter((s) => !wanted.includes(s)).map((s) => s.id);
    await env.notify.status('First boot done');
    log.info(
      { skipped },
      `first boot done${skipped.length ? ` (skipped: ${skipped.join(', ')})` : ''}; see ${PATHS.credentials}`,
    );
    return EXIT.ok;
  } finally {
    await lock.release();
  }
}

/** `--regenerate-cert` and the like: steps outside the first-boot sequence, under the same lock. */
export async function runAdHoc(
  env: RunnerEnv,
  command: string,
  steps: readonly Step[],
  options: RunOptions,
): Promise<ExitCode> {
  const lock = await acquireLock(env.sys, command);
  try {
    return (await runOutOfSequence(env, command, steps, options)).length === 0 ? EXIT.ok : EXIT.failed;
  } finally {
    await lock.release();
  }
}

/**
 * Steps outside the first-boot sequence, for a caller that already holds the lock (`per-boot`).
 * Returns the errors of the step that failed ([] when all succeeded); the journal keeps what they learned.
 */
export async function runOutOfSequence(
  env: RunnerEnv,
  command: string,
  steps: readonly Step[],
  options: RunOptions,
): Promise<StepError[]> {
  await registerKnownSecret(env);
  const journal = (await readJournal(env.sys)) ?? newJournal(command, env.sys.now());
  const shadow: Journal = { ...journal, completed: { ...journal.completed }, errors: [...journal.errors] };
  await runSteps(env, shadow, steps, options, steps.length, 0, false);
  // Keep what we learned (facts, hashes, warnings); the first boot's own progress is not ours to change.
  await writeJournal(
    env.sys,
    {
      ...journal,
      facts: shadow.facts,
      managed: shadow.managed,
      warnings: shadow.warnings,
      config: env.configRecord ?? journal.config,
    },
    env.secrets,
  );
  return shadow.errors.slice(journal.errors.length);
}

async function runSteps(
  env: RunnerEnv,
  journal: Journal,
  steps: readonly Step[],
  options: RunOptions,
  total: number,
  offset: number,
  record = true,
): Promise<boolean> {
  const { sys, log } = env;
  for (const [i, step] of steps.entries()) {
    const stepLog = log.child({ step: step.id });
    const skip = step.skipReason?.(options);
    if (skip) {
      stepLog.info(`skipped (${skip})`);
      continue;
    }
    const ctx: StepContext = {
      ...env,
      journal,
      log: stepLog,
      options,
      warn(message, hint) {
        stepLog.warn({ hint }, message);
        journal.warnings = journal.warnings.filter((w) => w.message !== message);
        journal.warnings.push({ step: step.id, at: sys.now().toISOString(), message, ...(hint ? { hint } : {}) });
      },
    };
    // The journal names the step running. The write that recorded the step before already named this one,
    // so a step costs one journal write (each is two fsyncs on the first boot's way to `up -d`), not two; the
    // run's first step writes anyway: the journal must say "running" (and drop the last run's errors) at once.
    if (journal.step !== step.id || i === 0) {
      journal.step = step.id;
      if (record) await writeJournal(sys, journal, env.secrets);
    }
    await env.notify.status(`Step ${offset + i + 1}/${total}: ${step.description}`);
    try {
      sys.crashPoint(`before:${step.id}`);
      const result = await step.apply(ctx);
      sys.crashPoint(`after:${step.id}`);
      if (record) {
        journal.completed[step.id] = { at: sys.now().toISOString(), changed: result.changed };
        journal.step = steps.slice(i + 1).find((s) => !s.skipReason?.(options))?.id ?? step.id;
      }
      await writeJournal(sys, journal, env.secrets);
      stepLog.info({ changed: result.changed }, result.summary);
    } catch (thrown) {
      const error = asFirstbootError(thrown);
      const at = sys.now().toISOString();
      journal.status = 'error';
      journal.errors.push({
        step: step.id,
        at,
        code: error.code,
        message: error.message,
        ...(error.hint ? { hint: error.hint } : {}),
      });
      await writeJournal(sys, journal, env.secrets).catch((e: unknown) =>
        stepLog.error({ err: e }, 'could not record the failure in the journal'),
      );
      stepLog.error(
        { code: error.code, hint: error.hint, ...error.detail, ...(error.code === 'internal' ? { err: thrown } : {}) },
        `failed: ${error.message}`,
      );
      await env.notify.status(`Failed at ${step.id}: ${error.message}`);
      return false;
    }
  }
  return true;
}

/** Where a run that resumes at `pending` starts: the earlier step it names in `resumeFrom`, if that one runs. */
function restartPoint(steps: readonly Step[], wanted: readonly Step[], pending: number): number {
  const earlier = steps[pending]?.resumeFrom?.step;
  const at = steps.findIndex((s) => s.id === earlier && wanted.includes(s));
  return at !== -1 && at < pending ? at : pending;
}

/** Secrets already on disk (the Postgres password, the claim token) are scrubbed from every log line from the first one on. */
async function registerKnownSecret(env: RunnerEnv): Promise<void> {
  const password = await readDbPassword(env.sys).catch(() => undefined);
  if (password) env.secrets.add(password);
  await readClaimToken(env.sys, env.secrets);
}
