// A managed file written by a step: its hash recorded in the journal, an operator's edit kept with a warning.

import { besideName, writeManagedFile, type ManagedOutcome } from '../managed.js';
import { ownershipFaults, octal } from './lib-ownership.js';
import type { StepContext } from './step.js';

export async function writeManaged(
  ctx: StepContext,
  inside: string,
  content: string,
  mode: number,
  dirMode = 0o755,
  rootOwned = false,
): Promise<ManagedOutcome> {
  const before = rootOwned ? await ctx.sys.fs.info(inside, { follow: true }) : undefined;
  const outcome = await writeManagedFile(ctx.sys, ctx.journal.managed, inside, content, mode, dirMode, rootOwned);
  const faults = before ? ownershipFaults(before, mode) : [];
  if (faults.length > 0) ctx.warn(`${inside} had ${faults.join(', ')}; rewrote it root:root ${octal(mode)}`);
  if (outcome === 'kept-edited') {
    ctx.warn(
      `${inside} was changed by someone else; kept it, and wrote ours beside it as ${besideName(inside)}`,
      `compare the two (diff ${inside} ${besideName(inside)}) and merge what you need; delete ${besideName(inside)} when done`,
    );
  }
  return outcome;
}
