// The secret planted where issue 15 found it escaping (a malformed .env line that repeats it, a
// `DB_PASSWORD: <secret>` line, a daemon.json that holds it), then every channel that reaches a person or
// another process is searched for it and for every 8-character piece of it: the log lines (stdout and
// stderr), systemd-notify's argv (a stand-in first on PATH), state.json, `status`, `status --json`,
// `motd`, `doctor` and `doctor --json`; and the argv and environment of every child process of a first
// boot, with and without the stack (strace -f).
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUNDLE, FIXTURE_BIN, killStandins, pathWith, runCli } from '../support/cli.js';
import { freePort } from '../support/net.js';
import { makeRoot, writeFile } from '../support/root.js';
import { expectStrace } from '../support/strace.js';

const S = 'Pl4ntedSecretQwErTy0123456789aBc';
/** Each strace run's stand-in directory: its Immich stand-in is stopped even when a test fails early. */
const standins: string[] = [];
afterAll(() => standins.forEach(killStandins));

beforeAll(() => {
  if (!existsSync(BUNDLE)) throw new Error('run `npm run build` first (npm test does)');
});

/** Every piece of the secret a reader could use: the whole, and each run of 8 characters. */
function leaks(text: string): string[] {
  const found: string[] = [];
  for (let i = 0; i + 8 <= S.length; i++) if (text.includes(S.slice(i, i + 8))) found.push(S.slice(i, i + 8));
  return found;
}

/** A first boot on `root` with systemd-notify recorded, then every reader of what it left. */
async function everyChannel(root: string): Promise<{ channels: Record<string, string>; stateJson: string }> {
  const bin = mkdtempSync(path.join(os.tmpdir(), 'ifb-notify-'));
  const argvLog = path.join(bin, 'notify-argv.log');
  writeFileSync(path.join(bin, 'systemd-notify'), `#!/bin/sh\nprintf '%s\\n' "$*" >> ${argvLog}\n`);
  chmodSync(path.join(bin, 'systemd-notify'), 0o755);
  const run = await runCli(['--root', root, 'run', '--skip-stack'], {
    PATH: `${bin}:${process.env.PATH}`,
    NOTIFY_SOCKET: '/run/systemd/notify',
  });
  expect(run.code).toBe(1);
  const stateJson = readFileSync(path.join(root, 'var/lib/immich-firstboot/state.json'), 'utf8');
  const channels: Record<string, string> = {
    'run (log lines, stderr)': run.stdout + run.stderr,
    'systemd-notify argv': readFileSync(argvLog, 'utf8'),
    'state.json': stateJson,
  };
  for (const args of [['status'], ['status', '--json'], ['motd'], ['doctor'], ['doctor', '--json']]) {
    const out = await runCli(['--root', root, ...args]);
    channels[args.join(' ')] = out.stdout + out.stderr;
  }
  // The channels were used, or their silence proves nothing.
  expect(channels['systemd-notify argv']).toMatch(/^STATUS=Failed at /m);
  expect(channels.motd).toContain('First boot: FAILED');
  return { channels, stateJson };
}

function expectNoLeak(channels: Record<string, string>): void {
  const leaked = Object.fromEntries(Object.entries(channels).map(([name, text]) => [name, leaks(text)]));
  expect(leaked).toEqual(Object.fromEntries(Object.keys(channels).map((name) => [name, []])));
}

describe('the secret, planted where it escaped, reaches no channel whole or in part', () => {
  it('a .env that repeats the secret on a line of its own (printf "DB_PASSWORD=%s\\n# old:\\n%s\\n")', async () => {
    const root = makeRoot();
    writeFile(root, '/opt/immich/.env', `DB_PASSWORD=${S}\n# old:\n${S}\n`, 0o640);
    const { channels, stateJson } = await everyChannel(root);
    expect(JSON.parse(stateJson).errors[0]).toMatchObject({
      code: 'env-malformed',
      message: '/opt/immich/.env line 3 is not KEY=VALUE (no key); left untouched',
    });
    expectNoLeak(channels);
  }, 60_000);

  it('a `DB_PASSWORD: <secret>` line (dotenv reads it, the run refuses it)', async () => {
    const root = makeRoot();
    writeFile(root, '/opt/immich/.env', `TZ=UTC\nDB_PASSWORD: ${S}\n`, 0o640);
    const { channels, stateJson } = await everyChannel(root);
    expect(JSON.parse(stateJson).errors[0]).toMatchObject({
      code: 'env-malformed',
      message: '/opt/immich/.env line 2 is not KEY=VALUE (key DB_PASSWORD); left untouched',
    });
    expectNoLeak(channels);
  }, 60_000);

  it('a daemon.json that holds the secret (not JSON: the parser would quote it)', async () => {
    const root = makeRoot();
    writeFile(root, '/opt/immich/.env', `DB_PASSWORD=${S}\n`, 0o640);
    writeFile(root, '/etc/docker/daemon.json', `${S}\n`);
    const { channels, stateJson } = await everyChannel(root);
    expect(JSON.parse(stateJson).errors[0]).toMatchObject({ code: 'daemon-json-invalid' });
    expectNoLeak(channels);
  }, 60_000);

  it('a daemon.json log-driver that is the secret (a value we would otherwise name in a warning)', async () => {
    const root = makeRoot();
    writeFile(root, '/opt/immich/.env', `DB_PASSWORD=${S}\n`, 0o640);
    writeFile(root, '/etc/docker/daemon.json', `{"log-driver": "${S.slice(0, 20)}"}\n`);
    // The run goes on past docker-logs with a warning, which state.json and status carry.
    const run = await runCli(['--root', root, 'run', '--skip-stack']);
    const stateJson = readFileSync(path.join(root, 'var/lib/immich-firstboot/state.json'), 'utf8');
    expect(JSON.parse(stateJson).warnings).toEqual(
      expect.arrayContaining([expect.objectContaining({ message: expect.stringContaining('another log-driver') })]),
    );
    const status = await runCli(['--root', root, 'status', '--json']);
    expectNoLeak({ run: run.stdout + run.stderr, 'state.json': stateJson, 'status --json': status.stdout });
  }, 60_000);
});

describe('every child process of a first boot (strace)', () => {
  it.each([
    { what: 'without the stack (--skip-stack)', args: ['--skip-stack'] },
    { what: 'with the stand-in stack (docker compose up, then the wait for Immich)', args: [] },
  ])(
    '$what: none gets the secret in its argv or its environment',
    async ({ args }) => {
      expectStrace();
      const port = await freePort();
      const root = makeRoot(
        `imds:\n  enabled: false\nstack:\n  serverUrl: http://127.0.0.1:${port}\n  readyTimeoutSeconds: 30\n`,
      );
      // A quoted secret the run keeps, so the test knows it before the run starts.
      writeFile(root, '/opt/immich/.env', `DB_PASSWORD="${S}"\n`, 0o640);
      const bin = mkdtempSync(path.join(os.tmpdir(), 'ifb-notify-'));
      writeFileSync(path.join(bin, 'systemd-notify'), '#!/bin/sh\nexit 0\n');
      chmodSync(path.join(bin, 'systemd-notify'), 0o755);
      const trace = path.join(bin, 'strace.log');
      const dir = mkdtempSync(path.join(os.tmpdir(), 'ifb-strace-standin-'));
      standins.push(dir);
      const env = {
        PATH: pathWith(bin, FIXTURE_BIN),
        LANG: 'C.UTF-8',
        STANDIN_DIR: dir,
        STANDIN_PING_PORT: String(port),
        NOTIFY_SOCKET: '/run/systemd/notify',
      };
      const argv = ['-f', '-qq', '-v', '-s', '65536', '-e', 'trace=execve', '-o', trace];
      const strace = spawn('strace', [...argv, process.execPath, BUNDLE, '--root', root, ...args], {
        env,
        stdio: 'ignore',
      });
      const exited = new Promise<number | null>((resolve) => strace.on('exit', resolve));
      // strace -f also follows the stand-in Immich server the stand-in docker leaves running (as Docker
      // would the container): once the run is done, that server is stopped so strace can finish.
      const done = path.join(root, 'var/lib/immich-firstboot/done');
      for (let i = 0; i < 600 && !existsSync(done); i++) await new Promise((r) => setTimeout(r, 100));
      expect(existsSync(done)).toBe(true);
      killStandins(dir);
      expect(await exited).toBe(0);
      const execs = readFileSync(trace, 'utf8');
      // The children were traced, or their silence proves nothing.
      expect(execs).toMatch(/execve\("[^"]*openssl", \["openssl", "req"/);
      expect(execs).toMatch(/\["systemd-notify", "STATUS=/);
      if (args.length === 0)
        expect(execs).toMatch(/\["docker", "compose", "-p", "immich", "-f", "[^"]+", "up", "-d"\]/);
      expect(leaks(execs)).toEqual([]);
    },
    150_000,
  );
});
