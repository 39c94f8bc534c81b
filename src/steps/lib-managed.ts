// A managed file written by a step: its hash recorded in the journal, an operator's edit kept with a warning.

import { besideName, writeManagedFile, type ManagedOutcome } from '../managed.js';
import type { StepContext } from './step.js';

export async function writeManaged(
  ctx: StepContext,
  inside: string,
  content: string,
  mode: number,
  dirMode = 0o755,
): Promise<ManagedOutcome> {
  const outcome = await writeManagedFile(ctx.sys, ctx.journal.managed, inside, content, mode, dirMode);
  if (outcome === 'kept-edited') {
    ctx.warn(
      `${inside} was changed by someone else; kept it, and wrote ours beside it as ${besideName(inside)}`,
      `compare the two (diff ${inside} ${besideName(inside)}) and merge what you need; delete ${besideName(inside)} when done`,
    );
  }
  return outcome;
}
