// The contract every step keeps, and the context the runner hands it.

import type { Ground } from '../context.js';
import type { SecretRegistry } from '../log.js';
import type { Notifier } from '../notify.js';
import type { Journal } from '../state.js';

export interface RunOptions {
  /** Do everything except touching Docker (image builders rendering offline; tests). */
  skipStack: boolean;
  /** Make a new certificate even if the current one is still good (`--regenerate-cert`). */
  newCert: boolean;
  /** Make a new claim token even if the current one is good (`per-boot` on a clone). */
  newClaimToken?: boolean;
  /**
   * Run the first boot only through this step, then stop without the done-stamp (`run --data-disk-only`:
   * immich-firstboot-data-disk.service, for what the first-boot unit's sandbox forbids); the next run resumes
   * after it.
   */
  through?: string;
}

/** The ground floor's context (sys, config, log: the step's own child logger), and the step's own. */
export interface StepContext extends Ground {
  /** Facts and managed-file hashes; the runner persists it after each step. */
  journal: Journal;
  notify: Notifier;
  secrets: SecretRegistry;
  options: RunOptions;
  /** Records a warning in the journal (shown by `status`) and logs it. */
  warn(message: string, hint?: string): void;
}

export interface StepResult {
  changed: boolean;
  /** One line for the log, like systemd-firstboot's "/etc/locale.conf written." */
  summary: string;
}

export interface Step {
  id: string;
  /** One line: what the step makes true. */
  description: string;
  /** Why this step does not run in this invocation, if it does not. */
  skipReason?(options: RunOptions): string | undefined;
  /**
   * A run that resumes at this step (after a crash or a failure in it) starts again at an earlier
   * step, whose work may have been undone since: stack-ready resumes from stack-start, because the
   * containers its `up -d` started may be gone. That step and every one after it run again (each is
   * idempotent); `why` is said in the log line that announces the resume.
   */
  resumeFrom?: { step: string; why: string };
  apply(ctx: StepContext): Promise<StepResult>;
}
