// Files we render but an operator (or certbot) may edit afterwards: we overwrite only what we wrote
// last time; an edited file is kept and our new render is written beside it.

import { createHash } from 'node:crypto';
import type { System } from './system/index.js';

export type ManagedOutcome = 'written' | 'unchanged' | 'kept-edited';

export const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/** The name our render gets when the file on disk was edited by someone else. */
export const besideName = (inside: string): string => `${inside}.firstboot-new`;

/**
 * Writes `content` to `inside` unless the file there is not what we wrote last. `hashes` holds the
 * sha256 of what we last wrote to each managed file (the journal's `managed`); it is updated as we write.
 */
export async function writeManagedFile(
  sys: System,
  hashes: Record<string, string>,
  inside: string,
  content: string,
  mode: number,
  dirMode: number,
): Promise<ManagedOutcome> {
  const { fs } = sys;
  const current = await fs.read(inside);
  const recorded = hashes[inside];
  if (current === content) {
    hashes[inside] = sha256(content);
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
    return 'kept-edited';
  }
  await fs.write(inside, content, { mode, dirMode });
  hashes[inside] = sha256(content);
  await fs.remove(besideName(inside));
  return 'written';
}
