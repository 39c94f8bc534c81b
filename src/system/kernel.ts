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

/**
 * A /proc or /sys file read to its end. Not fsp.readFile: /proc files report size 0, and Node 18's
 * promise readFile then stops after the first read, one page (seen on 18.20.4: a 4.6 KB mountinfo came
 * back as its first 4045 bytes, without the mount just made, which is the last line). Found by the e2e
 * on Debian 12, whose nodejs is 18.
 */
async function readToEnd(hostPath: string): Promise<string> {
  const file = await fsp.open(hostPath, 'r');
  try {
    const chunks: Buffer[] = [];
    for (;;) {
      const buffer = Buffer.alloc(64 * 1024);
      const { bytesRead } = await file.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      chunks.push(buffer.subarray(0, bytesRead));
    }
    return Buffer.concat(chunks).toString('utf8');
  } finally {
    await file.close();
  }
}

export const kernelReal: Kernel = {
  read: (hostPath) =>
    readToEnd(hostPath).catch((error: unknown) => {
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
