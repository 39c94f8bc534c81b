// prepare-image's search of the tree for a copy of the old secret or key: every regular file under the
// scanned directories is read whole, in chunks (no size limit, bounded memory), and what could not be
// read is named, so "verified" is only said after everything that could hold a copy was looked at.
// A gzip file (logrotate's rotated logs, /var/log/*.gz) is searched as it is and decompressed; a log
// compressed some other way cannot be searched, and blocks the verdict. A systemd journal compresses
// its larger fields (zstd: a copy inside is in no byte of the file), so it is also read through
// `journalctl --file ... -o export`, which shows every field as it was logged.

import path from 'node:path';
import type { Gunzip } from 'node:zlib';
import { FirstbootError } from '../errors.js';
import { LOG_DIR, SECRET_SCAN_DIRS, SECRET_SCAN_SKIP } from '../paths.js';
import type { System } from '../system/index.js';

export interface Skipped {
  path: string;
  reason: string;
  /** It may hold a copy and was not read: the verdict cannot be "verified". */
  blocking: boolean;
}

export interface ScanReport {
  dirs: readonly string[];
  /** How many strings were looked for (the password, each line of a key's base64 body). */
  sought: number;
  filesRead: number;
  bytesRead: number;
  /** Files (or a symlink's own text) holding a copy. */
  found: string[];
  skipped: Skipped[];
}

export async function scanForSecrets(sys: System, secrets: readonly string[]): Promise<ScanReport> {
  const needles = [...new Set(secrets.filter(Boolean))].map((s) => Buffer.from(s, 'utf8'));
  const report: ScanReport = {
    dirs: SECRET_SCAN_DIRS,
    sought: needles.length,
    filesRead: 0,
    bytesRead: 0,
    found: [],
    skipped: [],
  };
  if (!needles.length) return report;
  for (const dir of SECRET_SCAN_DIRS) await walk(sys, dir, needles, report);
  return report;
}

async function walk(sys: System, inside: string, needles: readonly Buffer[], report: ScanReport): Promise<void> {
  if ((SECRET_SCAN_SKIP as readonly string[]).includes(inside)) return;
  try {
    const info = await sys.fs.info(inside);
    if (!info) return;
    if (info.isSymlink) {
      // Never followed (it may lead out of the root, or loop); its target is scanned where it lives. Its own
      // text is still a place a copy can hide.
      const target = Buffer.from((await sys.fs.readlink(inside)) ?? '', 'utf8');
      if (needles.some((n) => target.includes(n))) report.found.push(inside);
    } else if (info.isDirectory) {
      for (const name of await sys.fs.list(inside)) await walk(sys, path.posix.join(inside, name), needles, report);
    } else if (info.isFile) {
      const { hit, compressed } = await holdsAny(sys, inside, needles);
      if (hit || (JOURNAL.test(inside) && (await journalHolds(sys, inside, needles, report))))
        report.found.push(inside);
      else if (compressed && compressed !== 'gzip')
        report.skipped.push({
          path: inside,
          reason: `compressed with ${compressed}: a copy inside cannot be searched (decompress it, or remove it if it is an old log)`,
          blocking: inside.startsWith(`${LOG_DIR}/`),
        });
      report.filesRead++;
      report.bytesRead += info.size;
    } else {
      report.skipped.push({
        path: inside,
        reason: 'not a regular file (a FIFO, socket or device): it stores no content to search',
        blocking: false,
      });
    }
  } catch (error) {
    const code = error instanceof FirstbootError ? error.code : 'io-other';
    report.skipped.push({ path: inside, reason: `could not be read (${code})`, blocking: true });
  }
}

const JOURNAL = /\.journal~?$/;
const CLEAR_JOURNALS =
  'rotate and empty the journals before capturing (`journalctl --rotate && journalctl --vacuum-time=1s`)';

/** A journal's fields as journalctl shows them; a journal that cannot be read that way blocks the verdict. */
async function journalHolds(
  sys: System,
  inside: string,
  needles: readonly Buffer[],
  report: ScanReport,
): Promise<boolean> {
  const result = await sys.exec('journalctl', ['--file', sys.fs.path(inside), '-o', 'export', '--no-pager', '-q'], {
    timeoutMs: 10 * 60_000,
  });
  if (result.exitCode === 0) return needles.some((n) => result.stdout.includes(n.toString('utf8')));
  const why = result.notFound
    ? 'journalctl is not installed'
    : `journalctl could not read it (${result.timedOut ? 'timed out' : `exit ${result.exitCode ?? 'unknown'}`})`;
  report.skipped.push({
    path: inside,
    reason: `a systemd journal whose compressed fields were not searched: ${why}; ${CLEAR_JOURNALS}`,
    blocking: true,
  });
  return false;
}

/** Compressed formats told by their first bytes; only gzip can be searched inside (node:zlib). */
const MAGIC: ReadonlyArray<[string, number[]]> = [
  ['gzip', [0x1f, 0x8b]],
  ['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
  ['zstd', [0x28, 0xb5, 0x2f, 0xfd]],
  ['bzip2', [0x42, 0x5a, 0x68]],
  ['lz4', [0x04, 0x22, 0x4d, 0x18]],
];

/** A needle search over a stream of chunks; a copy split across two chunks is found too. */
function searcher(needles: readonly Buffer[]): { feed(chunk: Buffer): boolean; readonly hit: boolean } {
  const overlap = Math.max(...needles.map((n) => n.length)) - 1;
  let tail = Buffer.alloc(0);
  let hit = false;
  return {
    feed(chunk) {
      if (hit) return true;
      const window = tail.length ? Buffer.concat([tail, chunk]) : chunk;
      hit = needles.some((n) => window.includes(n));
      // A copy: the chunk's memory is reused for the next read.
      tail = Buffer.from(window.subarray(Math.max(0, window.length - overlap)));
      return hit;
    },
    get hit() {
      return hit;
    },
  };
}

/**
 * Whether the file's bytes contain a needle, and for gzip whether its decompressed bytes do. A gzip
 * file that does not decompress to its end is an error: what it holds was not all seen.
 */
async function holdsAny(
  sys: System,
  inside: string,
  needles: readonly Buffer[],
): Promise<{ hit: boolean; compressed: string | undefined }> {
  // Imported here, not at the top: this module shares the commands' chunk, and every first boot and
  // per-boot run would otherwise load node:zlib as it starts (tens of millions of instructions on Node 18).
  const { createGunzip } = await import('node:zlib');
  const raw = searcher(needles);
  const inflated = searcher(needles);
  let compressed: string | undefined;
  let gunzip: Gunzip | undefined;
  let ended: Promise<void> = Promise.resolve();
  await sys.fs.readChunks(inside, (chunk) => {
    if (compressed === undefined && raw.hit === false && gunzip === undefined) {
      compressed = MAGIC.find(([, magic]) => magic.every((byte, i) => chunk[i] === byte))?.[0] ?? '';
      if (compressed === 'gzip') {
        const stream = (gunzip = createGunzip());
        stream.on('data', (out: Buffer) => void inflated.feed(out));
        ended = new Promise((resolve, reject) => {
          stream.on('end', resolve);
          stream.on('error', reject);
        });
      }
    }
    gunzip?.write(Buffer.from(chunk));
    return raw.feed(chunk);
  });
  if (gunzip) {
    gunzip.end();
    try {
      await ended;
    } catch (error) {
      if (!raw.hit)
        throw new FirstbootError('io-other', `${inside}: gzip data that does not decompress (${String(error)})`);
    }
  }
  return { hit: raw.hit || inflated.hit, compressed: compressed || undefined };
}

/** Could not read something that may hold a copy: neither found nor verified. */
export function blockingSkips(report: ScanReport): Skipped[] {
  return report.skipped.filter((s) => s.blocking);
}

export function formatScan(report: ScanReport): string[] {
  if (!report.sought)
    return ['no secret to look for: the tree holds no .env password and no key of ours (no first boot ran here)'];
  const mib = (report.bytesRead / 1024 / 1024).toFixed(1);
  return [
    `scanned ${report.dirs.join(', ')} (not ${SECRET_SCAN_SKIP.join(', ')}): read ${report.filesRead} file(s), ${mib} MiB; skipped ${report.skipped.length}`,
    ...report.skipped.map((s) => `  skipped ${s.path}: ${s.reason}`),
  ];
}

/** The last line: found, not verified, or verified. */
export function scanVerdict(report: ScanReport): string {
  if (report.found.length) return `SECRET MATERIAL REMAINS in: ${report.found.join(', ')}`;
  const blocking = blockingSkips(report);
  if (blocking.length)
    return `NOT VERIFIED: could not read ${blocking.length} path(s) that may hold the old secret or key: ${blocking.map((s) => s.path).join(', ')}`;
  if (!report.sought) return 'nothing verified: there was no secret to look for';
  return `verified: no copy of the old secret or key remains (${report.filesRead} files read)`;
}
