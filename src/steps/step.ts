// The contract every step keeps, and the context the runner hands it.

import type { Config } from '../config.js';
import type { Logger, SecretRegistry } from '../log.js';
import type { Notifier } from '../notify.js';
import type { Journal } from '../state.js';
import type { System } from '../system/index.js';

export interface RunOptions {
  /** Do everything except touching Docker (image builders rendering offline; tests). */
  skipStack: boolean;
  /** Make a new certificate even if the current one is still good (`--regenerate-cert`). */
  newCert: boolean;
}

export interface StepContext {
  sys: System;
  config: Config;
  /** Facts and managed-file hashes; the runner persists it after each step. */
  journal: Journal;
  log: Logger;
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
  apply(ctx: StepContext): Promise<StepResult>;
}
