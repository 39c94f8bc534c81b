// One attach-disk move's state (the report it fills, the step it is in, what to undo) and what the parts of
// attach-disk share: the two trees, the refusal, `du`, sizes for a person.

import { FirstbootError } from '../errors.js';
import type { ErrorCode } from '../error-codes.js';
import { PATHS } from '../paths.js';
import type { RunnerEnv } from '../runner.js';
import { tail } from '../stack.js';
import type { System } from '../system/index.js';

export const TREES = [
  { name: 'library', old: PATHS.uploadDir, disk: PATHS.dataUploadDir, envKey: 'UPLOAD_LOCATION' },
  { name: 'postgres', old: PATHS.postgresDir, disk: PATHS.dataPostgresDir, envKey: 'DB_DATA_LOCATION' },
] as const;

export interface AttachStep {
  step: string;
  summary: string;
}

/** `attach-disk --json` prints this object. */
export interface AttachDiskReport {
  command: 'attach-disk' | 'attach-disk --remove-old';
  ok: boolean;
  lun?: number;
  disk?: { link: string; device: string; sizeBytes: number; uuid?: string };
  sizes?: { libraryBytes: number; postgresBytes: number; neededBytes: number };
  /** What was done, in order. */
  steps: AttachStep[];
  /** The failure, with the step it happened in. */
  error?: { step: string; code: ErrorCode; message: string; hint?: string };
  /** After a failure: what was undone, in order; `failed` when an undo itself failed (see its summary). */
  reverted: Array<AttachStep & { failed?: boolean }>;
  /** Where Immich's data is now, and whether Immich answers. */
  now: { upload: string; postgres: string; immichAnswers: boolean | null };
  /** What to do next, in one sentence. */
  next?: string;
}

export function refused(message: string, hints: string[]): FirstbootError {
  return new FirstbootError('attach-disk-refused', `attach-disk: ${message}; nothing changed`, {
    hint: hints.join('; '),
  });
}

/** One move, step by step: each step that changes something registers how to undo it. */
export class Move {
  readonly report: AttachDiskReport;
  readonly undo: Array<{ step: string; run: () => Promise<string> }> = [];
  current = 'check';
  stopped = false;

  constructor(
    readonly env: RunnerEnv,
    readonly lun: number,
  ) {
    this.report = {
      command: 'attach-disk',
      ok: false,
      lun,
      steps: [],
      reverted: [],
      now: { upload: PATHS.uploadDir, postgres: PATHS.postgresDir, immichAnswers: null },
    };
  }

  did(step: string, summary: string): void {
    this.report.steps.push({ step, summary });
    this.env.log.info({ step }, summary);
  }

  record(error: FirstbootError): void {
    this.report.error = {
      step: this.current,
      code: error.code,
      message: error.message,
      ...(error.hint ? { hint: error.hint } : {}),
    };
  }

  async exec(
    file: string,
    args: string[],
    what: string,
    options: { cwd?: string; timeoutMs?: number } = {},
  ): Promise<void> {
    const result = await this.env.sys.exec(file, args, { timeoutMs: 5 * 60_000, ...options });
    if (result.exitCode === 0) return;
    const code: ErrorCode = this.current.startsWith('copy') ? 'attach-disk-copy-failed' : 'attach-disk-step-failed';
    throw new FirstbootError(
      code,
      `attach-disk: ${what} failed (${result.notFound ? `${file} is not installed` : `exit ${result.exitCode}`}): ${tail(result.stderr || result.stdout, 3).replace(/\n/g, ' / ')}`,
      { hint: 'fix the cause it names (space, inodes, Docker), then run attach-disk again' },
    );
  }
}

/**
 * Whether a .env value names `inside`: as first boot writes it, or as the host path under --root (Docker
 * bind-mounts host paths, so a tree run against a real engine names them so; with root / both are the same).
 */
export function namesPath(sys: System, value: string | undefined, inside: string): boolean {
  return value === inside || value === sys.fs.path(inside);
}

/** What each directory occupies on its disk (`du -s -B1`: blocks, hard links once). */
export async function usedBytes(env: RunnerEnv, dirs: string[]): Promise<number[]> {
  const { sys } = env;
  const result = await sys.exec('du', ['-s', '-B1', ...dirs.map((d) => sys.fs.path(d))], { timeoutMs: 3600_000 });
  const sizes = result.stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => Number(line.split('\t')[0]));
  if (result.exitCode !== 0 || sizes.length !== dirs.length || sizes.some((n) => !Number.isFinite(n)))
    throw new FirstbootError(
      'attach-disk-step-failed',
      `attach-disk: \`du\` could not measure ${dirs.join(' and ')}: ${tail(result.stderr, 2)}`,
      {
        hint: 'fix what du names, then run attach-disk again; nothing changed',
      },
    );
  return sizes;
}

/** Whether `inside` is a mount point now (the running kernel's table). */
export async function isMounted(env: RunnerEnv, inside: string): Promise<boolean> {
  const result = await env.sys.exec('mountpoint', ['-q', env.sys.fs.path(inside)], { timeoutMs: 30_000 });
  return result.exitCode === 0;
}

export function bytes(n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${n} bytes` : `${value.toFixed(1)} ${units[unit]}`;
}
