// What each of doctor's checks is given (the audit: the tree, and this host when live) and gives back.

import type { Ground } from '../context.js';
import type { ContainerView } from '../docker.js';
import { PATHS } from '../paths.js';
import { PROJECT } from '../stack.js';

/** One line of doctor's report, one object of `doctor --json`. */
export interface Finding {
  id: string;
  result: 'pass' | 'warn' | 'fail' | 'skipped';
  detail: string;
  fix?: string;
}

/** A finding before doctor puts its check's id on it. */
export type Verdict = Omit<Finding, 'id'>;

export interface Audit extends Ground {
  /** Auditing the running host too (always on `/`; under --root only with --live). */
  live: boolean;
  /** The nginx site in the tree; undefined before first boot rendered it. */
  site: string | undefined;
  /** The project's containers when live (the error when Docker did not answer); undefined otherwise. */
  containers: ContainerView[] | Error | undefined;
  /** What two checks need (the certificate, the door, the units), worked out once by the first to ask. */
  once<T>(work: (audit: Audit) => Promise<T>): Promise<T>;
}

/** One of doctor's checks: doctor's list of them is what FIRST_BOOT is to the steps. */
export interface DoctorCheck {
  id: string;
  /** Audits this running host (sockets, containers, the door, the units): skipped under --root without --live. */
  needsHost: boolean;
  run(audit: Audit): Promise<Verdict>;
}

export const COMPOSE = `cd ${PATHS.immichDir} && docker compose -p ${PROJECT}`;

export const pass = (detail: string): Verdict => ({ result: 'pass', detail });
export const skip = (detail: string): Verdict => ({ result: 'skipped', detail });
export const bad = (result: 'warn' | 'fail', detail: string, fix: string): Verdict => ({ result, detail, fix });
