// Runs the built bundle (dist/immich-firstboot.mjs) as a process, as systemd or an admin would.

import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));
export const BUNDLE = path.join(REPO, 'dist/immich-firstboot.mjs');
export const FIXTURE_BIN = path.join(REPO, 'test/fixtures/bin');

export interface CliResult {
  code: number;
  /** The signal that ended the process (SIGKILL in the crash matrix), or null. */
  signal: string | null;
  stdout: string;
  stderr: string;
  /** stdout's JSON log lines, parsed. */
  lines: Array<Record<string, unknown> & { msg: string; level: number; step?: string }>;
}

export function runCli(
  args: string[],
  env: Record<string, string | undefined> = {},
  node = process.execPath,
): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      node,
      [BUNDLE, ...args],
      { env: { PATH: process.env.PATH, LANG: 'C.UTF-8', ...env }, timeout: 120_000, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        const signal = error?.signal ?? null;
        const lines = stdout.split('\n').flatMap((l): CliResult['lines'] => {
          try {
            // A JSON line with a level is one of our log lines.
            const parsed = JSON.parse(l) as CliResult['lines'][number] | null;
            return parsed && typeof parsed === 'object' && 'level' in parsed ? [parsed] : [];
          } catch {
            return [];
          }
        });
        resolve({ code, signal, stdout, stderr, lines });
      },
    );
  });
}

/** PATH with our stand-in executables (docker, ...) first. */
export function pathWith(...dirs: string[]): string {
  return [...dirs, process.env.PATH].join(':');
}

/** Stops the Immich stand-in servers the stand-in docker started (their pids are in STANDIN_DIR/server.pids). */
export function killStandins(standinDir: string): void {
  const file = path.join(standinDir, 'server.pids');
  if (!existsSync(file)) return;
  for (const pid of readFileSync(file, 'utf8').split('\n').filter(Boolean)) {
    try {
      process.kill(Number(pid));
    } catch {
      // already gone
    }
  }
}
