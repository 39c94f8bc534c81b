// The running kernel's own view (/sys, /proc): host paths, whatever the root, as systemd-firstboot reads
// the running kernel's /proc beside its --root. Read-only: nothing here writes.

import { promises as fsp } from 'node:fs';
import { errnoCode } from '../errors.js';

export interface Kernel {
  /** A /sys or /proc file's text; undefined when it does not exist. */
  read(hostPath: string): Promise<string | undefined>;
  /** A directory's entries, sorted; [] when it does not exist. */
  list(hostPath: string): Promise<string[]>;
  /** Where a sysfs link leads; undefined when nothing is there. */
  realpath(hostPath: string): Promise<string | undefined>;
}

const missing = (error: unknown): boolean => ['ENOENT', 'ENOTDIR'].includes(errnoCode(error) ?? '');

export const kernelReal: Kernel = {
  read: (hostPath) =>
    fsp.readFile(hostPath, 'utf8').catch((error: unknown) => {
      if (missing(error)) return undefined;
      throw error;
    }),
  list: (hostPath) =>
    fsp.readdir(hostPath).then(
      (names) => names.sort(),
      (error: unknown) => {
        if (missing(error)) return [];
        throw error;
      },
    ),
  realpath: (hostPath) =>
    fsp.realpath(hostPath).catch((error: unknown) => {
      if (missing(error)) return undefined;
      throw error;
    }),
};
