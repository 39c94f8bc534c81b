// Files we render but an operator (or certbot) may edit afterwards: we overwrite only what we wrote
// last time; an edited file is kept and our new render is written beside it.

import { createHash } from 'node:crypto';
import type { StepContext } from './steps/step.js';

export type ManagedOutcome = 'written' | 'unchanged' | 'kept-edited';

export const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/** The name our render gets when the file on disk was edited by someone else. */
export const besideName = (inside: string): string => `${inside}.firstboot-new`;

export async function writeManaged(ctx: StepContext, inside: string, content: string, mode: number, dirMode = 0o755): Promise<ManagedOutcome> {
  const { fs } = ctx.sys;
  const current = await fs.read(inside);
  const recorded = ctx.journal.managed[inside];
  if (current === content) {
    ctx.journal.managed[inside] = sha256(content);
    await fs.remove(besideName(inside));
    const info = await fs.info(inside);
    if (info && info.mode !== mode) {
      await fs.chmod(inside, mode);
      return 'written';
    }
    return 'unchanged';
  }
  if (current !== undefined && sha256(current) !== recorded) {
    await fs.write(besideName(inside), content, { mode, dirMode });
    ctx.warn(
      `${inside} was changed by someone else; kept it, and wrote ours beside it as ${besideName(inside)}`,
      `compare the two (diff ${inside} ${besideName(inside)}) and merge what you need; delete ${besideName(inside)} when done`,
    );
    return 'kept-edited';
  }
  await fs.write(inside, content, { mode, dirMode });
  ctx.journal.managed[inside] = sha256(content);
  await fs.remove(besideName(inside));
  return 'written';
}
