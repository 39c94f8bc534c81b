// Runs programs: a thin wrapper over execa that never throws on a non-zero exit.
// execa is imported at the first run (or by preloadExec), not at start: `status` and `motd` never run a program.

import type * as ExecaModule from 'execa';

export interface ExecOptions {
  cwd?: string;
  env?: Record<string, string | undefined>;
  input?: string;
  timeoutMs?: number;
}

export interface ExecResult {
  command: string;
  exitCode: number | undefined;
  stdout: string;
  stderr: string;
  /** The program is not installed (ENOENT). */
  notFound: boolean;
  timedOut: boolean;
}

export type Exec = (file: string, args: readonly string[], options?: ExecOptions) => Promise<ExecResult>;

let execaLoading: Promise<typeof ExecaModule> | undefined;

/**
 * Starts loading execa now, for a run that will start programs: the first boot's steps before `up -d`
 * wait on fsync most of their time, and execa (a few hundred modules' worth of code) loads meanwhile
 * instead of after them, on the way to `up -d`. A failure to load is the first exec's to report.
 */
export function preloadExec(): void {
  (execaLoading ??= import('execa')).catch(() => undefined);
}

export const execReal: Exec = async (file, args, options = {}) => {
  const { execa } = await (execaLoading ??= import('execa'));
  const result = await execa(file, args, {
    cwd: options.cwd,
    env: options.env,
    input: options.input,
    timeout: options.timeoutMs,
    reject: false,
    stripFinalNewline: false,
  });
  const code = (result as { code?: string }).code;
  return {
    command: [file, ...args].join(' '),
    exitCode: result.exitCode,
    stdout: String(result.stdout ?? ''),
    stderr: String(result.stderr ?? ''),
    notFound: code === 'ENOENT',
    timedOut: result.timedOut === true,
  };
};
