// A systemd-nspawn machine for the end-to-end test: thin wrappers over test/env/nspawn-machine.sh.

import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { REPO } from '../support/cli.js';

const SCRIPT = path.join(REPO, 'test/env/nspawn-machine.sh');

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

export class Machine {
  constructor(readonly dir: string) {}

  /** A path inside the machine, as seen from the host (the tree is a plain directory). */
  host(inside: string): string {
    return path.join(this.dir, inside);
  }

  /** Runs a nspawn-machine.sh subcommand on this machine; throws with its output when it fails. */
  script(
    command: string,
    args: string[] = [],
    options: { env?: Record<string, string>; input?: string; timeoutMs?: number } = {},
  ): Run {
    const run = this.raw(SCRIPT, [command, this.dir, ...args], options);
    if (run.code !== 0)
      throw new Error(`nspawn-machine.sh ${command} ${args.join(' ')} exited ${run.code}:\n${run.stdout}${run.stderr}`);
    return run;
  }

  /** A command inside the booted machine; never throws (assert on the result). */
  exec(...cmd: string[]): Run {
    return this.raw(SCRIPT, ['exec', this.dir, ...cmd], {});
  }

  /** A command inside the booted machine that must succeed; its stdout. */
  out(...cmd: string[]): string {
    const run = this.exec(...cmd);
    if (run.code !== 0) throw new Error(`in machine: ${cmd.join(' ')} exited ${run.code}:\n${run.stdout}${run.stderr}`);
    return run.stdout;
  }

  raw(
    file: string,
    args: string[],
    options: { env?: Record<string, string>; input?: string; timeoutMs?: number },
  ): Run {
    const run = spawnSync('bash', [file, ...args], {
      encoding: 'utf8',
      input: options.input,
      env: { ...process.env, ...options.env },
      timeout: options.timeoutMs ?? 180_000,
      maxBuffer: 64 * 1024 * 1024,
    });
    return {
      code: run.status,
      stdout: run.stdout ?? '',
      stderr: `${run.stderr ?? ''}${run.error ? String(run.error) : ''}`,
    };
  }
}
