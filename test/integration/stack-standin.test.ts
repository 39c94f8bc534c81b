// The stack steps through the built bundle with the stand-in `docker` (test/fixtures/bin/docker) on
// PATH: what status and the credentials file say about the first admin, and a port published beyond
// loopback as Docker would report it. No Docker engine; the real-engine tests are stack-engine.test.ts.
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FIXTURE_BIN, pathWith, runCli } from '../support/cli.js';
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
  cleanups.push(() => {
    const pidFile = path.join(standin, 'server.pid');
    if (existsSync(pidFile))
      try {
        process.kill(Number(readFileSync(pidFile, 'utf8')));
      } catch {
        /* already gone */
      }
  });
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
    expect(credentials).not.toContain('The first person to sign up');
    expect(JSON.parse((await runCli(['--root', root, 'status', '--json'])).stdout)).toMatchObject({
      status: 'done',
      adminRegistered: true,
    });
    expect((await runCli(['--root', root, 'status'])).stdout).toContain('first admin: registered\n');
  });

  it('says in status and in the credentials file that the first admin is still to be registered', async () => {
    const { root, env } = await setup({});
    expect((await runCli(['--root', root], env)).code).toBe(0);
    expect(readFile(root, '/root/immich-credentials.txt')).toContain(
      'The first person to sign up in the web UI becomes the admin',
    );
    expect((await runCli(['--root', root, 'status'])).stdout).toContain(
      'first admin: not registered yet (sign up in the web UI)\n',
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
