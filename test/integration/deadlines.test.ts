// Whole-request deadlines, seen from outside: the built program against servers on loopback that send
// their answer one byte a second (test/support/trickle.ts), as an IMDS, as Immich's port, and behind a
// real nginx for doctor. An idle timeout never fires on such a server; before the deadlines, each of
// these runs lasted as long as the trickle (minutes) and the test ended at vitest's timeout. Each test
// asserts the error a person sees, that it names its bound, and that the client hung up on the server.
import { existsSync, mkdtempSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BUNDLE, FIXTURE_BIN, killStandins, pathWith, REPO, runCli } from '../support/cli.js';
import { freePort, listenOn, startNginx } from '../support/door.js';
import { INSTANCE_DOC } from '../support/imds-stub.js';
import { makeRoot, readFile, writeFile } from '../support/root.js';
import { slowAnswer, startTrickle, type Trickle, type TrickleMode } from '../support/trickle.js';

const HOST_BIN = path.join(REPO, 'test/fixtures/host-bin');
const SITE = '/etc/nginx/sites-available/immich';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

beforeAll(() => {
  if (!existsSync(BUNDLE)) throw new Error('run `npm run build` first (npm test does)');
});

async function trickle(mode: TrickleMode, port?: number): Promise<Trickle> {
  const server = await startTrickle(mode, { port });
  cleanups.push(() => server.close());
  return server;
}

/** An answer whose headers come at once and whose body (`body`, padded to minutes) trickles. */
function slowBody(body: string, headers = ''): TrickleMode {
  const padded = `${body}${' '.repeat(600)}`;
  const head = `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${padded.length}\r\n${headers}\r\n`;
  return { answer: head + padded, fast: head.length };
}

function standinDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ifb-docker-'));
  cleanups.push(() => killStandins(dir));
  return dir;
}

describe('an IMDS that answers one byte a second', () => {
  it.each([
    ['its headers', { answer: slowAnswer(INSTANCE_DOC('203.0.113.9')) }],
    ['its body', slowBody(INSTANCE_DOC('203.0.113.9'))],
  ] as const)(
    'is cut off at imds.timeoutSeconds per request (%s), and the first boot goes on without it',
    async (_, mode) => {
      const imds = await trickle(mode);
      const root = makeRoot('imds:\n  timeoutSeconds: 2\n  retrySeconds: 10\n');
      const run = await runCli(['--root', root, 'run', '--skip-stack'], { IMMICH_FIRSTBOOT_IMDS_URL: imds.url });
      expect(run.code, run.stdout + run.stderr).toBe(0);
      expect(run.lines.find((l) => l.msg.startsWith('Azure IMDS not available'))).toMatchObject({
        reason: expect.stringContaining('ETIMEDOUT'),
      });
      await imds.allClosed();
      expect(imds.connections.length).toBeGreaterThan(0);
      expect(imds.connections.every((c) => c.cutOff)).toBe(true);
      // Without IMDS, the instance is the machine-id, and no public address is invented.
      expect(JSON.parse(readFile(root, '/var/lib/immich-firstboot/done'))).toMatchObject({
        instanceIdSource: 'machine-id',
      });
      expect(readFile(root, '/root/immich-credentials.txt')).not.toContain('203.0.113.9');
    },
  );
});

describe("a server on Immich's port that answers one byte a second", () => {
  it.each([
    ['its headers', { answer: slowAnswer('{"res":"pong"}') }],
    ['its body', slowBody('{"res":"pong"}')],
  ] as const)('ends the wait at stack.readyTimeoutSeconds with stack-not-ready (%s)', async (_, mode) => {
    const port = await freePort();
    const immich = await trickle(mode, port);
    const root = makeRoot(
      `imds:\n  enabled: false\nstack:\n  serverUrl: http://127.0.0.1:${port}\n  readyTimeoutSeconds: 10\n`,
    );
    const env = {
      PATH: pathWith(FIXTURE_BIN),
      STANDIN_DIR: standinDir(),
      STANDIN_PING_PORT: String(port),
      STANDIN_NEVER_READY: '1', // the stand-in starts no server: the trickle is all that answers
    };
    const run = await runCli(['--root', root], env);
    expect(run.code, run.stdout + run.stderr).toBe(1);
    const failure = run.lines.find((l) => l.level === 50 && l.code);
    expect(failure).toMatchObject({ step: 'stack-ready', code: 'stack-not-ready' });
    // It waited its whole budget (the loop ends only past it); vitest's timeout is the bound above.
    const waited = new RegExp(`Immich did not answer http://127\\.0\\.0\\.1:${port}/api/server/ping within (\\d+)s`);
    expect(failure?.msg).toMatch(waited);
    expect(Number(waited.exec(failure!.msg)![1])).toBeGreaterThanOrEqual(10);
    await immich.allClosed();
    expect(immich.connections.length).toBeGreaterThan(0);
    expect(immich.connections.every((c) => c.cutOff)).toBe(true);
    const status = JSON.parse((await runCli(['--root', root, 'status', '--json'])).stdout);
    expect(status).toMatchObject({ status: 'error', step: 'stack-ready' });
  });
});

/**
 * A first boot whose Immich stand-in answered, then the site served by a real nginx on free loopback
 * ports, and the stand-in stopped so the test can put its own server on Immich's port.
 */
async function bootedDoor() {
  const port = await freePort();
  const root = makeRoot(
    `imds:\n  enabled: false\nstack:\n  serverUrl: http://127.0.0.1:${port}\n  readyTimeoutSeconds: 10\n`,
  );
  const standin = standinDir();
  const env = { PATH: pathWith(HOST_BIN, FIXTURE_BIN), STANDIN_DIR: standin, STANDIN_PING_PORT: String(port) };
  const boot = await runCli(['--root', root], env);
  expect(boot.code, boot.stdout + boot.stderr).toBe(0);
  const ports = { http: await freePort(), https: await freePort() };
  writeFile(root, SITE, listenOn(readFile(root, SITE), ports));
  const nginx = await startNginx(root, ports);
  cleanups.push(() => nginx.stop());
  killStandins(standin);
  await new Promise((resolve) => setTimeout(resolve, 200));
  const doctor = async () => {
    const result = await runCli(['--root', root, 'doctor', '--live', '--json'], env);
    const checks = Object.fromEntries(
      (JSON.parse(result.stdout) as Array<{ id: string; result: string; detail: string }>).map((c) => [c.id, c]),
    );
    return { code: result.code, checks };
  };
  return { port, target: `https://127.0.0.1:${ports.https}/api/server/ping`, doctor };
}

describe('doctor --live, through a real nginx', () => {
  it('fails ping-through-nginx at its deadline when Immich answers a byte a second, instead of hanging', async () => {
    const { port, target, doctor } = await bootedDoor();
    // Its headers come at once, its body a byte a second, and it asks nginx not to buffer (as a
    // streaming answer does), so each byte reaches doctor over TLS as it comes.
    const immich = await trickle(slowBody('{"res":"pong"}', 'x-accel-buffering: no\r\n'), port);
    const { code, checks } = await doctor();
    expect(code).toBe(1);
    expect(checks['ping-through-nginx']).toMatchObject({
      result: 'fail',
      detail: expect.stringContaining(`failed: no complete answer from ${target} within 5000 ms`),
    });
    // The admin question goes to Immich directly, with its own deadline.
    expect(checks['sign-up-state']).toMatchObject({
      result: 'skipped',
      detail: expect.stringContaining('did not answer'),
    });
    expect(immich.connections.length).toBeGreaterThanOrEqual(2); // nginx's request, and doctor's own
  });

  it('fails ping-through-nginx, naming the cap, when the answer through nginx is over 64 KiB', async () => {
    const { port, target, doctor } = await bootedDoor();
    const server = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ res: 'pong', pad: '.'.repeat(100 * 1024) }));
    });
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => server.close(resolve)));
    const { code, checks } = await doctor();
    expect(code).toBe(1);
    expect(checks['ping-through-nginx']).toMatchObject({
      result: 'fail',
      detail: expect.stringContaining(`failed: the answer from ${target} is larger than 65536 bytes`),
    });
  });
});
