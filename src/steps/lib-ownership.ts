// Who controls a file that root acts on: its owner, and its group or everyone when they may write it.
// What only root controls is made root's; what someone else may have written is refused with the fix.

import { FirstbootError } from '../errors.js';
import type { FileInfo } from '../system/index.js';
import type { StepContext } from './step.js';

export const octal = (mode: number): string => mode.toString(8).padStart(4, '0');

/** Everyone other than root who could have written it: its owner, a group with g+w, or every user with o+w. */
export function otherWriters(info: FileInfo): string[] {
  const who: string[] = [];
  if (info.uid !== 0) who.push(`uid ${info.uid} (its owner)`);
  if (info.mode & 0o020 && info.gid !== 0) who.push(`group ${info.gid}`);
  if (info.mode & 0o002) who.push('every user');
  return who;
}

/** "uid 1000, group 100, mode 0644": what is not as the contract says (root:root, `mode`). */
export function ownershipFaults(info: FileInfo, mode: number): string[] {
  const faults: string[] = [];
  if (info.uid !== 0) faults.push(`owner uid ${info.uid}`);
  if (info.gid !== 0) faults.push(`group ${info.gid}`);
  if (info.mode !== mode) faults.push(`mode ${octal(info.mode)}`);
  return faults;
}

/** The command that makes a file root's with `mode`, or a directory root's and not group/other-writable. */
export const ownershipFix = (inside: string, mode?: number): string =>
  `chown root:root ${inside} && chmod ${mode === undefined ? 'go-w' : octal(mode)} ${inside}`;

/**
 * A directory whose files root runs: refused when someone else may write it (they may already have
 * swapped what is in it; chown-ing it would bless that); otherwise made root:root and not group/other
 * writable in place (a directory holds no content of its own, and permissions are checked at each use).
 */
export async function requireRootDir(ctx: StepContext, dir: string, why: string, look = ''): Promise<void> {
  const { fs } = ctx.sys;
  const info = await fs.info(dir, { follow: true });
  if (!info) return; // we create it, root's
  const writers = otherWriters(info);
  if (writers.length > 0) {
    throw new FirstbootError(
      'not-root-owned',
      `${dir} can be written by ${writers.join(' and ')}: ${why}; left as it is`,
      {
        hint: `check every file and link in ${dir}${look}, then \`${ownershipFix(dir)}\`, and run \`immich-firstboot\` again`,
      },
    );
  }
  if (info.gid === 0 && (info.mode & 0o022) === 0) return;
  await fs.chown(dir, 0, 0);
  await fs.chmod(dir, info.mode & ~0o022, 'directory');
  ctx.warn(`${dir} had group ${info.gid} and mode ${octal(info.mode)}; made it root:root ${octal(info.mode & ~0o022)}`);
}
