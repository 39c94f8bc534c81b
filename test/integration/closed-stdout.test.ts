// Output into a pipe whose reader is gone (`immich-firstboot status --json | true`, `| head -1`): the
// bundle must end quietly, as `cloud-init status | head` does, with the exit code the command has
// anyway; never an EPIPE stack trace. The reader here closes its end before the program writes a byte.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { BUNDLE, runCli } from '../support/cli.js';
import { makeRoot } from '../support/root.js';

beforeAll(() => {
  if (!existsSync(BUNDLE)) throw new Error('run `npm run build` first (npm test does)');
});

/** Runs the bundle with stdout a pipe whose read end is closed at once; returns the exit code and stderr. */
function withClosedStdout(args: string[]): Promise<{ code: number | null; signal: string | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BUNDLE, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH, LANG: 'C.UTF-8' },
    });
    child.stdout.destroy(); // our end of the pipe: from now on every write the program makes gets EPIPE
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('close', (code, signal) => resolve({ code, signal, stderr }));
  });
}

describe('output into a closed pipe', () => {
  it.each([
    ['status --json', ['status', '--json']],
    ['status', ['status']],
    ['motd', ['motd']],
    ['doctor --json', ['doctor', '--json']],
    ['doctor', ['doctor']],
    ['--help', ['--help']],
    ['--version', ['--version']],
  ])('`%s` ends quietly (nothing on stderr) with the exit code it has with an open stdout', async (_name, args) => {
    const root = makeRoot();
    const open = await runCli(['--root', root, ...args]);
    expect(open.stdout.length).toBeGreaterThan(0); // it does write to stdout
    const closed = await withClosedStdout(['--root', root, ...args]);
    expect(closed.stderr).not.toMatch(/EPIPE|Unhandled 'error' event|\n\s+at /);
    expect(closed.stderr).toBe(open.stderr);
    expect({ code: closed.code, signal: closed.signal }).toEqual({ code: open.code, signal: null });
  });

  it('`status --json | true` in a shell prints nothing on stderr', () => {
    const root = makeRoot();
    const shell = spawnSync('sh', ['-c', `"${process.execPath}" "${BUNDLE}" --root "${root}" status --json | true`], {
      encoding: 'utf8',
    });
    expect(shell.stderr).toBe('');
    expect(shell.status).toBe(0);
  });

  it('a first boot whose log reader went away still finishes: done, exit 0', async () => {
    const root = makeRoot('imds:\n  enabled: false\nextraNames: [192.0.2.7]\n');
    const closed = await withClosedStdout(['--root', root, 'run', '--skip-stack']);
    expect(closed.stderr).toBe('');
    expect(closed.code).toBe(0);
    expect(existsSync(`${root}/var/lib/immich-firstboot/done`)).toBe(true);
    const status = await runCli(['--root', root, 'status', '--json']);
    expect(JSON.parse(status.stdout)).toMatchObject({ status: 'done', errors: [] });
  });
});
