// Runs programs: a thin wrapper over execa that never throws on a non-zero exit.
// execa is imported at the first run, not at start: `status` and `motd` never run a program.

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

export const execReal: Exec = async (file, args, options = {}) => {
  const { execa } = await import('execa');
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
