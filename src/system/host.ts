// This host beside the root: a file the operator names (--config FILE), a private temp directory, and
// its processes as its own /proc shows them (whatever the root).

import { promises as fsp, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Rejects with Node's own error (ENOENT, EACCES, ...): the caller words it. */
export async function readHostFile(hostPath: string): Promise<string> {
  return fsp.readFile(hostPath, 'utf8');
}

/** A private (0700) directory in the host's temp directory, for files a program we run reads. */
export interface HostScratch {
  /** Its host path. */
  dir: string;
  write(name: string, data: string, mode: number): Promise<void>;
  /** Removes it and everything in it. */
  remove(): Promise<void>;
}

export async function hostScratch(prefix: string): Promise<HostScratch> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), prefix));
  return {
    dir,
    write: (name, data, mode) => fsp.writeFile(path.join(dir, name), data, { mode }),
    remove: () => fsp.rm(dir, { recursive: true, force: true }),
  };
}

/**
 * A process's start time in clock ticks (/proc/PID/stat field 22), so a reused PID is not mistaken for
 * the process it was; undefined when no such process runs.
 */
export function processStart(pid: number): string | undefined {
  try {
    // The command name (field 2) may hold spaces and parentheses; fields after the last ')' are fixed.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}
