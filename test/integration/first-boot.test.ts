// The built bundle as a process against a temp --root, with real openssl; Docker is a stand-in
// executable on PATH (test/fixtures/bin/docker) and IMDS a stub on 127.0.0.1.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BUNDLE, FIXTURE_BIN, killStandins, pathWith, runCli } from '../support/cli.js';
import { INSTANCE_DOC, LB_DOC, startImdsStub, type ImdsStub } from '../support/imds-stub.js';
import { makeRoot, modeOf, readFile, snapshotTree, writeFile } from '../support/root.js';
import { freePort } from '../support/net.js';
import { expectStrace } from '../support/strace.js';

const password = (root: string) => /^DB_PASSWORD=(.*)$/m.exec(readFile(root, '/opt/immich/.env'))![1];
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

beforeAll(() => {
  if (!existsSync(BUNDLE)) throw new Error('run `npm run build` first (npm test does)');
});

/** A directory with a fake program that fails the way a broken install would. */
function brokenBin(name: string, script: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ifb-bin-'));
  writeFileSync(path.join(dir, name), `#!/bin/sh\n${script}\n`);
  chmodSync(path.join(dir, name), 0o755);
  return dir;
}

describe('immich-firstboot run --skip-stack', () => {
  it('writes every file with its mode into an empty root, and a second run changes nothing', async () => {
    const root = makeRoot();
    const first = await runCli(['--root', root, 'run', '--skip-stack']);
    expect(first.code).toBe(0);
    expect(first.lines.at(-1)?.msg).toContain('first boot done (skipped: stack-start, stack-ready)');
    const modes = {
      '/opt/immich/.env': '0640',
      '/opt/immich/docker-compose.yml': '0644',
      '/etc/immich-firstboot/tls/current/key.pem': '0600',
      '/etc/immich-firstboot/tls/current/cert.pem': '0644',
      '/etc/nginx/sites-available/immich': '0644',
      '/etc/docker/daemon.json': '0644',
      '/root/immich-credentials.txt': '0600',
      '/var/lib/immich-firstboot/done': '0644',
      '/var/lib/immich-firstboot/state.json': '0600',
    };
    for (const [file, mode] of Object.entries(modes)) expect(`${file} ${modeOf(root, file)}`).toBe(`${file} ${mode}`);
    expect(password(root)).toMatch(/^[A-Za-z0-9]{32}$/);
    expect(readFile(root, '/root/immich-credentials.txt')).toContain(`Password: ${password(root)}`);
    expect(readFile(root, '/opt/immich/docker-compose.yml')).toBe(
      readFileSync(path.join(FIXTURE_BIN, '../../../compose/docker-compose.yml'), 'utf8'),
    );

    const before = snapshotTree(root);
    const second = await runCli(['--root', root, 'run', '--skip-stack']);
    expect(second.code).toBe(0);
    expect(second.lines.map((l) => l.msg)).toEqual([
      expect.stringMatching(/^first boot already done \(.*\); nothing to do$/),
    ]);
    expect(snapshotTree(root)).toEqual(before);
  });

  // The journal names the step running; the write that records a step done names the next one, so the way
  // to `up -d` costs one journal write (two fsyncs) per step, not two: one write as the run starts, one per
  // step, none more (strace: every rename onto state.json).
  it('writes the journal once per step, naming the step running all the while', async () => {
    expectStrace();
    const root = makeRoot();
    const trace = path.join(mkdtempSync(path.join(os.tmpdir(), 'ifb-strace-')), 'rename.log');
    const args = ['-f', '-qq', '-e', 'trace=rename,renameat,renameat2', '-o', trace, process.execPath, BUNDLE];
    const run = spawnSync('strace', [...args, '--root', root, 'run', '--skip-stack'], { encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    const steps = run.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { step?: string; changed?: boolean })
      .filter((l) => l.step !== undefined && l.changed !== undefined);
    expect(steps.map((l) => l.step)).toEqual([
      'data-disk',
      'env',
      'compose-file',
      'docker-logs',
      'host-facts',
      'tls-cert',
      'claim-token',
      'nginx-site',
      'credentials',
    ]);
    const journalWrites = readFileSync(trace, 'utf8')
      .split('\n')
      .filter((l) => /, "[^"]*\/var\/lib\/immich-firstboot\/state\.json"/.test(l));
    // The first step's start, each step done, the run done.
    expect(journalWrites).toHaveLength(steps.length + 2);
    const journal = JSON.parse(readFile(root, '/var/lib/immich-firstboot/state.json')) as {
      status: string;
      step: unknown;
    };
    expect(journal).toMatchObject({ status: 'done', step: null });
  });

  it('never prints the secret', async () => {
    const root = makeRoot();
    const run = await runCli(['--root', root, '--skip-stack']);
    expect(run.stdout + run.stderr).not.toContain(password(root));
  });

  it('reports not started (exit 5), then done (exit 0), as text and as JSON', async () => {
    const root = makeRoot();
    const before = await runCli(['--root', root, 'status', '--json']);
    expect(before.code).toBe(5);
    expect(JSON.parse(before.stdout)).toMatchObject({ status: 'not started', step: null, errors: [] });
    await runCli(['--root', root, '--skip-stack']);
    const after = await runCli(['--root', root, 'status', '--json']);
    expect(after.code).toBe(0);
    const report = JSON.parse(after.stdout);
    expect(report).toMatchObject({ status: 'done', step: null, errors: [], pending: ['stack-start', 'stack-ready'] });
    expect(report.startedAt).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(report.finishedAt).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(after.stdout).not.toContain(password(root));
    const text = await runCli(['--root', root, 'status']);
    expect(text.stdout).toMatch(/^status: done\n/);
  });

  it('records a failed step with its hint, exits 1, and resumes there on the next run keeping the secret', async () => {
    const root = makeRoot();
    const broken = brokenBin('openssl', 'echo "openssl: simulated failure" >&2; exit 1');
    const failed = await runCli(['--root', root, '--skip-stack'], { PATH: pathWith(broken) });
    expect(failed.code).toBe(1);
    const error = failed.lines.find((l) => l.level === 50)!;
    expect(error).toMatchObject({
      step: 'tls-cert',
      msg: 'failed: openssl could not make the self-signed certificate: openssl: simulated failure',
    });
    // The last line, all a sysadmin may read in the journal: what stopped, what was kept, what to run.
    expect(failed.lines.at(-1)).toMatchObject({
      level: 50,
      kept: ['data-disk', 'env', 'compose-file', 'docker-logs', 'host-facts'],
      msg:
        'first boot stopped at tls-cert; kept: data-disk, env, compose-file, docker-logs, host-facts (the Postgres secret in /opt/immich/.env never changes); ' +
        'fix the cause above, then run `immich-firstboot` (or `systemctl restart immich-firstboot`): it resumes at tls-cert',
    });
    expect(existsSync(`${root}/var/lib/immich-firstboot/done`)).toBe(false);
    const status = await runCli(['--root', root, 'status', '--json']);
    expect(status.code).toBe(1);
    expect(JSON.parse(status.stdout)).toMatchObject({
      status: 'error',
      step: 'tls-cert',
      errors: [
        { step: 'tls-cert', code: 'openssl-failed', hint: expect.stringContaining('run `immich-firstboot` again') },
      ],
    });
    const secret = password(root);

    const resumed = await runCli(['--root', root, '--skip-stack']);
    expect(resumed.code).toBe(0);
    expect(resumed.lines[0]).toMatchObject({ msg: 'resuming first boot at step tls-cert' });
    expect(resumed.lines.some((l) => l.step === 'env')).toBe(false);
    expect(password(root)).toBe(secret);
    expect(JSON.parse((await runCli(['--root', root, 'status', '--json'])).stdout).status).toBe('done');
  });

  // A rerun resumes at the step that failed, which the journal already names: it still says at once that
  // the run is on again, so a power cut during that step reads as interrupted, not as the old failure.
  it('records a resumed run as running before its first step, so a crash in it is not reported as the old failure', async () => {
    const root = makeRoot();
    const broken = brokenBin('openssl', 'echo "openssl: simulated failure" >&2; exit 1');
    expect((await runCli(['--root', root, '--skip-stack'], { PATH: pathWith(broken) })).code).toBe(1);
    const crashed = await runCli(['--root', root, '--skip-stack'], { IMMICH_FIRSTBOOT_CRASH_AT: 'before:tls-cert' });
    expect(crashed.signal).toBe('SIGKILL');
    const journal = JSON.parse(readFile(root, '/var/lib/immich-firstboot/state.json')) as {
      status: string;
      step: string;
      errors: unknown[];
    };
    expect(journal).toMatchObject({ status: 'running', step: 'tls-cert', errors: [] });
    const status = await runCli(['--root', root, 'status', '--json']);
    expect(JSON.parse(status.stdout)).toMatchObject({ step: 'tls-cert', errors: [{ code: 'interrupted' }] });
  });

  it('keeps the secret of an existing .env', async () => {
    const root = makeRoot();
    writeFile(root, '/opt/immich/.env', 'DB_PASSWORD=OperatorChoseThisOne12345\n', 0o640);
    expect((await runCli(['--root', root, '--skip-stack'])).code).toBe(0);
    expect(password(root)).toBe('OperatorChoseThisOne12345');
    expect(readFile(root, '/root/immich-credentials.txt')).toContain('Password: OperatorChoseThisOne12345');
  });

  it('refuses to invent a secret when Postgres has data but .env is gone, and writes no .env', async () => {
    const root = makeRoot();
    writeFile(root, '/opt/immich/postgres/PG_VERSION', '14\n');
    const run = await runCli(['--root', root, '--skip-stack']);
    expect(run.code).toBe(1);
    expect(run.lines.find((l) => l.level === 50)).toMatchObject({
      step: 'env',
      code: 'env-secret-lost',
      hint: expect.stringContaining('restore /opt/immich/.env'),
    });
    expect(existsSync(`${root}/opt/immich/.env`)).toBe(false);
  });

  it('rejects a bad config.yaml with exit 3, naming file, line and key, and writes nothing', async () => {
    const root = makeRoot('imds:\n  enabled: false\n  timeout: 5\n');
    const before = snapshotTree(root);
    const run = await runCli(['--root', root, '--skip-stack']);
    expect(run.code).toBe(3);
    expect(run.stderr).toBe(
      `immich-firstboot: ${root}/etc/immich-firstboot/config.yaml line 3: unknown key "imds.timeout" (known keys here: imds.enabled, imds.url, imds.timeoutSeconds, imds.retrySeconds)\n` +
        `hint: fix ${root}/etc/immich-firstboot/config.yaml (every key is documented, commented out, in the shipped config.yaml), then run again; nothing was written\n`,
    );
    expect(snapshotTree(root)).toEqual(before);
  });

  it('refuses to run beside a live run (exit 4)', async () => {
    const root = makeRoot();
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    writeFile(root, '/var/lib/immich-firstboot/lock', JSON.stringify({ pid: process.pid, start, command: 'run' }));
    const run = await runCli(['--root', root, '--skip-stack']);
    expect(run.code).toBe(4);
    expect(run.lines[0]?.msg).toBe(`another immich-firstboot (run, pid ${process.pid}) is running`);
    expect(JSON.parse((await runCli(['--root', root, 'status', '--json'])).stdout).status).toBe('running');
  });
});

describe('immich-firstboot run with the stack (stand-in docker, IMDS stub)', () => {
  async function setup(extra: Record<string, string> = {}) {
    const root = makeRoot('');
    const port = await freePort();
    const imds: ImdsStub = await startImdsStub({
      '/metadata/instance': { status: 200, body: INSTANCE_DOC('') },
      '/metadata/loadbalancer': { status: 200, body: LB_DOC('198.51.100.20') },
    });
    const standin = mkdtempSync(path.join(os.tmpdir(), 'ifb-docker-'));
    cleanups.push(
      () => imds.close(),
      () => {
        killStandins(standin);
      },
    );
    writeFile(
      root,
      '/etc/immich-firstboot/config.yaml',
      `stack:\n  serverUrl: http://127.0.0.1:${port}\n  readyTimeoutSeconds: 10\n`,
    );
    const env = {
      PATH: pathWith(FIXTURE_BIN),
      STANDIN_DIR: standin,
      STANDIN_PING_PORT: String(port),
      IMMICH_FIRSTBOOT_IMDS_URL: imds.url,
      ...extra,
    };
    const argv = () =>
      readFileSync(path.join(standin, 'argv.log'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as string[]);
    return { root, env, imds, argv };
  }

  it('starts the stack, waits for pong and names the public IP from the load balancer endpoint', async () => {
    const { root, env, imds, argv } = await setup({ STANDIN_PONG_DELAY_MS: '1500' });
    const run = await runCli(['--root', root], env);
    expect(run.code).toBe(0);
    expect(argv()).toContainEqual([
      'compose',
      '-p',
      'immich',
      '-f',
      `${root}/opt/immich/docker-compose.yml`,
      'up',
      '-d',
    ]);
    expect(
      imds.requests.every((r) => r.headers.metadata === 'true' && r.headers['x-forwarded-for'] === undefined),
    ).toBe(true);
    const credentials = readFile(root, '/root/immich-credentials.txt');
    expect(credentials).toContain('https://198.51.100.20/');
    expect(credentials).toContain('Server URL: https://198.51.100.20/api');
    expect(credentials).toContain('no admin yet: sign-up is open');
    expect(JSON.parse(readFile(root, '/var/lib/immich-firstboot/done'))).toMatchObject({
      instanceId: '5c08b38e-4d57-4c23-ac45-aca61037f084',
      instanceIdSource: 'azure-imds',
    });
    expect(run.stdout).not.toContain(password(root));
    expect(JSON.stringify(argv())).not.toContain(password(root));
    const status = JSON.parse((await runCli(['--root', root, 'status', '--json'])).stdout);
    expect(status).toMatchObject({ status: 'done', adminRegistered: false, pending: [] });
  });

  it('runs only the stack steps after an earlier --skip-stack run', async () => {
    const { root, env } = await setup();
    await runCli(['--root', root, '--skip-stack'], env);
    const secret = password(root);
    const run = await runCli(['--root', root], env);
    expect(run.code).toBe(0);
    expect(run.lines[0]?.msg).toBe('resuming first boot at step stack-start');
    expect(password(root)).toBe(secret);
    expect(readFile(root, '/root/immich-credentials.txt')).toContain('no admin yet: sign-up is open');
  });

  it("fails with the containers' logs and a hint when Immich never answers", async () => {
    const { root, env } = await setup({ STANDIN_NEVER_READY: '1' });
    const run = await runCli(['--root', root], env);
    expect(run.code).toBe(1);
    expect(run.lines.find((l) => l.msg.includes('last log lines'))).toMatchObject({
      logs: expect.stringContaining('stand-in server log'),
    });
    expect(run.lines.find((l) => l.level === 50 && l.code)).toMatchObject({
      step: 'stack-ready',
      code: 'stack-not-ready',
      hint: expect.stringContaining('docker compose -p immich'),
    });
  }, 30_000);
});

describe('progress for systemd', () => {
  it('sends STATUS= lines through systemd-notify when NOTIFY_SOCKET is set, and none otherwise', async () => {
    const root = makeRoot();
    const log = path.join(mkdtempSync(path.join(os.tmpdir(), 'ifb-notify-')), 'notify.log');
    const bin = brokenBin('systemd-notify', `printf '%s\\n' "$*" >> ${log}`);
    await runCli(['--root', root, '--skip-stack'], { PATH: pathWith(bin), NOTIFY_SOCKET: '/run/systemd/notify' });
    const sent = readFileSync(log, 'utf8').trim().split('\n');
    expect(sent[0]).toMatch(/^STATUS=Step 1\/11: the data disk/);
    expect(sent.at(-1)).toBe('STATUS=First boot done');
    // The steps do not wait for systemd-notify: a line that a newer one replaced before it could be sent
    // is dropped, never sent out of order.
    const steps = sent.slice(0, -1).map((l) => Number(/^STATUS=Step (\d+)\/11: /.exec(l)?.[1]));
    expect(steps.every((n, i) => n > (steps[i - 1] ?? 0))).toBe(true);
    const quiet = makeRoot();
    await runCli(['--root', quiet, '--skip-stack'], { PATH: pathWith(bin) });
    expect(readFileSync(log, 'utf8').trim().split('\n')).toHaveLength(sent.length);
  });
});

describe('immich-firstboot --regenerate-cert', () => {
  it('makes a new pair and puts its fingerprint in the credentials file, keeping the secret', async () => {
    const root = makeRoot();
    await runCli(['--root', root, '--skip-stack']);
    const secret = password(root);
    const before = readFile(root, '/root/immich-credentials.txt');
    const run = await runCli(['--root', root, '--regenerate-cert']);
    expect(run.code).toBe(0);
    const after = readFile(root, '/root/immich-credentials.txt');
    const fingerprint = (t: string) => /SHA256 ([0-9A-F:]+)/.exec(t)![1];
    expect(fingerprint(after)).not.toBe(fingerprint(before));
    expect(JSON.parse((await runCli(['--root', root, 'status', '--json'])).stdout)).toMatchObject({
      status: 'done',
      certFingerprint: fingerprint(after),
    });
    expect(password(root)).toBe(secret);
  });
});

describe('the command line', () => {
  it('prints help and version, and rejects an unknown option with exit 2', async () => {
    expect((await runCli(['--help'])).stdout).toContain('Usage: immich-firstboot');
    expect((await runCli(['--version'])).stdout).toMatch(/^immich-firstboot \d+\.\d+\.\d+\n$/);
    const bad = await runCli(['--frobnicate']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe('immich-firstboot: unknown option "--frobnicate"\nhint: see `immich-firstboot --help`\n');
  });
});
