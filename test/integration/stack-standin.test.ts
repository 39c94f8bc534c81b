// The stack steps through the built bundle with the stand-in `docker` (test/fixtures/bin/docker) on
// PATH: what status and the credentials file say about the first admin, and a port published beyond
// loopback as Docker would report it. No Docker engine; the real-engine tests are stack-engine.test.ts.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FIXTURE_BIN, killStandins, pathWith, runCli } from '../support/cli.js';
import { makeRoot, readFile, writeFile } from '../support/root.js';

const cleanups: Array<() => void> = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});

async function setup(extra: Record<string, string>) {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  const root = makeRoot();
  writeFile(
    root,
    '/etc/immich-firstboot/config.yaml',
    `imds:\n  enabled: false\nstack:\n  serverUrl: http://127.0.0.1:${port}\n  readyTimeoutSeconds: 10\n`,
  );
  const standin = mkdtempSync(path.join(os.tmpdir(), 'ifb-docker-'));
  cleanups.push(() => killStandins(standin));
  return {
    root,
    env: { PATH: pathWith(FIXTURE_BIN), STANDIN_DIR: standin, STANDIN_PING_PORT: String(port), ...extra },
  };
}

describe('immich-firstboot and the first admin', () => {
  it('says in status and in the credentials file that an admin is already registered', async () => {
    const { root, env } = await setup({ STANDIN_ADMIN_REGISTERED: '1' });
    expect((await runCli(['--root', root], env)).code).toBe(0);
    const credentials = readFile(root, '/root/immich-credentials.txt');
    expect(credentials).toContain('Immich already has an admin account');
    expect(credentials).not.toContain('The first account becomes the admin');
    expect(JSON.parse((await runCli(['--root', root, 'status', '--json'])).stdout)).toMatchObject({
      status: 'done',
      adminRegistered: true,
    });
    expect((await runCli(['--root', root, 'status'])).stdout).toContain('first admin: registered\n');
  });

  it('says in status and in the credentials file that the first admin is still to be registered', async () => {
    const { root, env } = await setup({});
    expect((await runCli(['--root', root], env)).code).toBe(0);
    expect(readFile(root, '/root/immich-credentials.txt')).toMatch(
      /The first account becomes the admin, so only you can create it[^]*\n {4}https:\/\/\S+\/claim\/[0-9a-f]{64}\n/,
    );
    expect((await runCli(['--root', root, 'status'])).stdout).toContain(
      'first admin: not registered yet (open the claim link in /root/immich-credentials.txt, then sign up)\n',
    );
  });
});

describe('immich-firstboot and a port published beyond loopback', () => {
  it('fails at stack-start, stops the server, and status shows the error with the fix', async () => {
    const { root, env } = await setup({ STANDIN_PUBLISH_IP: '0.0.0.0' });
    const run = await runCli(['--root', root], env);
    expect(run.code).toBe(1);
    const argv = readFileSync(path.join(env.STANDIN_DIR, 'argv.log'), 'utf8');
    expect(argv).toContain('"stop","immich-server"]');
    const status = JSON.parse((await runCli(['--root', root, 'status', '--json'])).stdout);
    expect(status).toMatchObject({
      status: 'error',
      step: 'stack-start',
      errors: [
        {
          code: 'port-exposed',
          message: expect.stringContaining('Docker publishes immich_server on 0.0.0.0:'),
          hint: expect.stringContaining("'127.0.0.1:2283:2283'"),
        },
      ],
    });
    expect(existsSync(`${root}/var/lib/immich-firstboot/done`)).toBe(false);
  });
});

/** Resolves once nothing accepts connections on 127.0.0.1:port any more (a killed server has let go of it). */
async function refused(port: number): Promise<void> {
  for (;;) {
    const connected = await new Promise<boolean>((resolve) =>
      net
        .connect(port, '127.0.0.1', function (this: net.Socket) {
          this.destroy();
          resolve(true);
        })
        .on('error', () => resolve(false)),
    );
    if (!connected) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('immich-firstboot resumed at stack-ready', () => {
  it('after a crash during the wait and `docker compose down`, runs `up -d` again first and reaches done', async () => {
    const { root, env } = await setup({});
    const crashed = await runCli(['--root', root], { ...env, IMMICH_FIRSTBOOT_CRASH_AT: 'before:stack-ready' });
    expect(crashed.signal).toBe('SIGKILL');
    // The operator's `docker compose down` while nothing runs: the containers and the server are gone.
    execFileSync(path.join(FIXTURE_BIN, 'docker'), ['compose', '-p', 'immich', 'down'], { env });
    killStandins(env.STANDIN_DIR);
    await refused(Number(env.STANDIN_PING_PORT));
    const argv = path.join(env.STANDIN_DIR, 'argv.log');
    const before = readFileSync(argv, 'utf8').split('\n').length;

    const rerun = await runCli(['--root', root], env);
    expect(rerun.code, rerun.stdout).toBe(0);
    expect(rerun.lines[0]?.msg).toBe(
      'resuming first boot at step stack-ready, from stack-start (`up -d` again: the containers may be gone since)',
    );
    const calls = readFileSync(argv, 'utf8')
      .split('\n')
      .slice(before - 1)
      .filter(Boolean);
    expect(calls.filter((c) => c.includes('"up","-d"'))).toHaveLength(1);
    expect(JSON.parse((await runCli(['--root', root, 'status', '--json'])).stdout)).toMatchObject({
      status: 'done',
      pending: [],
    });
  });
});

describe('immich-firstboot without the compose plugin', () => {
  // Debian 12's docker.io has no compose plugin; docker-compose (1.29, Python) does it. docker's CLI refuses
  // `docker compose -p ...` itself (the stand-in says what it says); then, and only then, docker-compose runs.
  it('runs `docker compose ... up -d` at once, then docker-compose when docker has no plugin, asking no version first', async () => {
    const { root, env } = await setup({ STANDIN_NO_COMPOSE: '1' });
    const shims = mkdtempSync(path.join(os.tmpdir(), 'ifb-compose-'));
    const log = path.join(shims, 'docker-compose.log');
    // docker-compose: the stand-in's compose, its calls logged apart.
    writeFileSync(
      path.join(shims, 'docker-compose'),
      `#!/bin/sh\necho "$*" >> ${log}\nSTANDIN_NO_COMPOSE= exec ${path.join(FIXTURE_BIN, 'docker')} compose "$@"\n`,
      { mode: 0o755 },
    );
    const run = await runCli(['--root', root], { ...env, PATH: pathWith(shims, FIXTURE_BIN) });
    expect(run.code, run.stdout).toBe(0);
    const file = path.join(root, 'opt/immich/docker-compose.yml');
    expect(readFileSync(log, 'utf8').split('\n')[0]).toBe(`-p immich -f ${file} up -d`);
    const calls = readFileSync(path.join(env.STANDIN_DIR, 'argv.log'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as string[])
      .filter((c) => c[0] === 'compose');
    // docker's own refusal, then docker-compose's `up -d` (through the stand-in): nothing asked before either.
    expect(calls.slice(0, 2)).toEqual([
      ['compose', '-p', 'immich', '-f', file, 'up', '-d'],
      ['compose', '-p', 'immich', '-f', file, 'up', '-d'],
    ]);
    expect(
      run.lines.some((l) => l.step === 'stack-start' && /^`docker-compose -p immich up -d` done/.test(l.msg)),
    ).toBe(true);
  });
});
