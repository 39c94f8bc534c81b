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
  rootOwned = false,
): Promise<ManagedOutcome> {
  const { fs } = sys;
  const current = await fs.read(inside);
  const recorded = hashes[inside];
  const options = { mode, dirMode, rootOwned };
  // rootOwned: the file must be root:root with `mode`, even an edited one we keep. The caller has made
  // sure nobody but root could have written it; a new inode, not chown in place, so that nobody keeps
  // a handle or a hard link to what is now root's.
  const info = await fs.info(inside, { follow: true });
  const misowned = !!info && rootOwned && (info.uid !== 0 || info.gid !== 0 || info.mode !== mode);
  if (current === content) {
    hashes[inside] = sha256(content);
    await fs.remove(besideName(inside));
    if (misowned) {
      await fs.write(inside, content, options);
      return 'written';
    }
    if (info && info.mode !== mode) {
      await fs.chmod(inside, mode);
      return 'written';
    }
    return 'unchanged';
  }
  if (current !== undefined && sha256(current) !== recorded) {
    if (misowned) await fs.write(inside, current, options);
    await fs.write(besideName(inside), content, options);
    return 'kept-edited';
  }
  await fs.write(inside, content, options);
  hashes[inside] = sha256(content);
  await fs.remove(besideName(inside));
  return 'written';
}
