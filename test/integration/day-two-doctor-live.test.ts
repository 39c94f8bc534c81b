// doctor --live against a host the test controls: a first boot through the stand-in docker (its Immich
// stand-in on a free loopback port), the rendered site served by a real nginx on free loopback ports,
// a stand-in systemctl, and the real ss (with an optional extra line). Each test breaks one claim.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { BUNDLE, FIXTURE_BIN, killStandins, pathWith, REPO, runCli } from '../support/cli.js';
import { freePort, listenOn, startNginx } from '../support/door.js';
import { INSTANCE_DOC, startImdsStub } from '../support/imds-stub.js';
import { makeRoot, readFile, writeFile } from '../support/root.js';

const HOST_BIN = path.join(REPO, 'test/fixtures/host-bin');
const SITE = '/etc/nginx/sites-available/immich';
const LIVE_IDS = [
  'loopback-2283',
  'nginx-only-80-443',
  'containers-healthy',
  'ping-through-nginx',
  'sign-up-state',
  'unit-state',
  'perboot-unit-state',
];

const HARDENING_IDS = ['ufw-22-80-443', 'fail2ban-jails', 'apparmor-docker-default', 'unattended-upgrades', 'auditd'];

interface Check {
  id: string;
  result: string;
  detail: string;
  fix?: string;
}

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

beforeAll(() => {
  if (!existsSync(BUNDLE)) throw new Error('run `npm run build` first (npm test does)');
});

/** A booted root whose Immich stand-in answers on a free port and whose site nginx serves on free ports. */
async function host(atBoot: Record<string, string> = {}) {
  const serverPort = await freePort();
  const config = `imds:\n  enabled: false\nstack:\n  serverUrl: http://127.0.0.1:${serverPort}\n  readyTimeoutSeconds: 10\n`;
  const root = makeRoot(config);
  const standin = mkdtempSync(path.join(os.tmpdir(), 'ifb-docker-'));
  const env = {
    PATH: pathWith(HOST_BIN, FIXTURE_BIN),
    STANDIN_DIR: standin,
    STANDIN_PING_PORT: String(serverPort),
    STANDIN_PERBOOT: '1',
  };
  cleanups.push(() => killStandins(standin));
  const run = await runCli(['--root', root], { ...env, ...atBoot });
  expect(run.code, run.stdout + run.stderr).toBe(0);
  const ports = { http: await freePort(), https: await freePort() };
  writeFile(root, SITE, listenOn(readFile(root, SITE), ports));
  const nginx = await startNginx(root, ports);
  cleanups.push(() => nginx.stop());
  const doctor = async (extra: Record<string, string> = {}) => {
    const result = await runCli(['--root', root, 'doctor', '--live', '--json'], { ...env, ...extra });
    const checks = Object.fromEntries((JSON.parse(result.stdout) as Check[]).map((c) => [c.id, c]));
    return { code: result.code, checks, stderr: result.stderr };
  };
  return { root, env, ports, standin, nginx, doctor, config };
}

/**
 * A `docker` in front of the stand-in whose `inspect` shows the containers in the states of
 * STANDIN_STATES ("immich-server=running/starting,redis=exited"): status, then the health check's state.
 */
function dockerReporting(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ifb-docker-states-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(
    path.join(dir, 'docker'),
    `#!${process.execPath}
const { spawnSync } = require('node:child_process');
const args = process.argv.slice(2);
const real = spawnSync(process.execPath, [${JSON.stringify(path.join(FIXTURE_BIN, 'docker'))}, ...args], { encoding: 'utf8' });
let out = real.stdout;
if (args[0] === 'inspect' && real.status === 0) {
  const want = Object.fromEntries((process.env.STANDIN_STATES || '').split(',').filter(Boolean).map((e) => e.split('=')));
  out = JSON.stringify(JSON.parse(out).map((c) => {
    const [status, health] = (want[c.Config.Labels['com.docker.compose.service']] || '').split('/');
    return status ? { ...c, State: { Status: status, ...(health ? { Health: { Status: health } } : {}) } } : c;
  }));
}
process.stdout.write(out);
process.stderr.write(real.stderr);
process.exit(real.status ?? 1);
`,
  );
  chmodSync(path.join(dir, 'docker'), 0o755);
  return dir;
}

async function listen(port: number, address: string): Promise<void> {
  const server = net.createServer((s) => s.destroy());
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, address, resolve));
  cleanups.push(() => new Promise((resolve) => server.close(resolve)));
}

describe('immich-firstboot doctor --live', () => {
  it('passes every check on a healthy host whose admin is registered, and exits 0', async () => {
    const { doctor, ports } = await host({ STANDIN_ADMIN_REGISTERED: '1' });
    const { code, checks, stderr } = await doctor();
    // The seed image's hardening is not in this tree (not installed: warnings); its own tests are in
    // day-two-doctor-hardening.test.ts.
    for (const c of Object.values(checks).filter((c) => !HARDENING_IDS.includes(c.id)))
      expect(c.result, `${c.id}: ${c.detail}`).toBe('pass');
    expect(Object.keys(checks)).toEqual(expect.arrayContaining(LIVE_IDS));
    expect(code, stderr).toBe(0);
    expect(checks['nginx-only-80-443']?.detail).toContain(`127.0.0.1:${ports.https}`);
    expect(checks['ping-through-nginx']?.detail).toContain(
      'answered pong with /etc/immich-firstboot/tls/current/cert.pem',
    );
  });

  it('fails loopback-2283 when Docker publishes the server on 0.0.0.0', async () => {
    const { doctor } = await host();
    const { code, checks } = await doctor({ STANDIN_PUBLISH_IP: '0.0.0.0' });
    expect(code).toBe(1);
    expect(checks['loopback-2283']).toMatchObject({
      result: 'fail',
      detail: expect.stringContaining('on 0.0.0.0:'),
      fix: expect.stringContaining("'127.0.0.1:2283:2283'"),
    });
  });

  it("fails loopback-2283 when a socket listens on 0.0.0.0 on Immich's port (as ss reports it)", async () => {
    const { doctor, env } = await host();
    const { code, checks } = await doctor({
      STANDIN_SS_EXTRA: `LISTEN 0 4096 0.0.0.0:${env.STANDIN_PING_PORT} 0.0.0.0:* users:(("intruder",pid=4242,fd=3))`,
    });
    expect(code).toBe(1);
    expect(checks['loopback-2283']).toMatchObject({
      result: 'fail',
      detail: expect.stringContaining(`a socket listens on 0.0.0.0:${env.STANDIN_PING_PORT}`),
    });
  });

  it("fails nginx-only-80-443 when a second program listens on the site's 443 port, naming its pid", async () => {
    const { doctor, ports } = await host();
    await listen(ports.https, '127.0.0.2');
    const { code, checks } = await doctor();
    expect(code).toBe(1);
    expect(checks['nginx-only-80-443']).toMatchObject({
      result: 'fail',
      detail: expect.stringContaining(`(pid ${process.pid}) listens on 127.0.0.2:${ports.https}`),
      fix: expect.stringContaining(`systemctl status ${process.pid}`),
    });
  });

  it('fails nginx-only-80-443 and ping-through-nginx when nginx is not running', async () => {
    const { doctor, nginx } = await host();
    nginx.stop();
    const { code, checks } = await doctor();
    expect(code).toBe(1);
    expect(checks['nginx-only-80-443']).toMatchObject({
      result: 'fail',
      detail: expect.stringContaining('nginx is not running'),
      fix: expect.stringContaining('systemctl restart nginx'),
    });
    expect(checks['ping-through-nginx']).toMatchObject({
      result: 'fail',
      detail: expect.stringContaining('ECONNREFUSED'),
    });
  });

  it('fails containers-healthy when the server container is unhealthy', async () => {
    const { doctor } = await host();
    const { code, checks } = await doctor({ STANDIN_NEVER_READY: '1' });
    expect(code).toBe(1);
    expect(checks['containers-healthy']).toMatchObject({
      result: 'fail',
      detail: expect.stringMatching(/^not healthy: immich_server running \(unhealthy\)$/),
      fix: expect.stringContaining('logs --tail 50 immich-server'),
    });
  });

  it('warns containers-healthy, naming the container, while a health check is still starting, and exits 0', async () => {
    const { doctor } = await host({ STANDIN_ADMIN_REGISTERED: '1' });
    const states = {
      PATH: pathWith(dockerReporting(), HOST_BIN, FIXTURE_BIN),
      STANDIN_STATES: 'immich-server=running/starting',
    };
    const { code, checks } = await doctor(states);
    expect(checks['containers-healthy']).toMatchObject({
      result: 'warn',
      detail: 'health check still starting: immich_server; re-run `immich-firstboot doctor` in a minute',
    });
    expect(code).toBe(0);
  });

  it('fails containers-healthy when a container is restarting or has exited', async () => {
    const { doctor } = await host({ STANDIN_ADMIN_REGISTERED: '1' });
    const PATH = pathWith(dockerReporting(), HOST_BIN, FIXTURE_BIN);
    const restarting = await doctor({ PATH, STANDIN_STATES: 'immich-server=restarting/starting' });
    expect(restarting.checks['containers-healthy']).toMatchObject({
      result: 'fail',
      detail: 'not healthy: immich_server restarting (starting)',
    });
    expect(restarting.code).toBe(1);
    const exited = await doctor({
      PATH,
      STANDIN_STATES: 'immich-server=running/starting,immich-machine-learning=exited',
    });
    expect(exited.checks['containers-healthy']).toMatchObject({
      result: 'fail',
      detail: 'not healthy: immich_machine_learning exited; health check still starting: immich_server',
    });
    expect(exited.code).toBe(1);
  });

  it('fails ping-through-nginx when Immich is down (nginx answers 502), and says Immich is the cause', async () => {
    const { doctor, standin } = await host();
    killStandins(standin);
    await new Promise((r) => setTimeout(r, 200));
    const { code, checks } = await doctor();
    expect(code).toBe(1);
    expect(checks['ping-through-nginx']).toMatchObject({
      result: 'fail',
      detail: expect.stringContaining('answered 502'),
      fix: expect.stringContaining('Immich does not answer on http://127.0.0.1:'),
    });
    expect(checks['sign-up-state']).toMatchObject({
      result: 'skipped',
      detail: expect.stringContaining('did not answer'),
    });
  });

  it('warns in ping-through-nginx when nginx presents a certificate other than the one on disk', async () => {
    const { doctor, root, env } = await host({ STANDIN_ADMIN_REGISTERED: '1' });
    expect((await runCli(['--root', root, 'regenerate-cert'], env)).code).toBe(0); // nginx not reloaded
    const { code, checks } = await doctor();
    expect(checks['ping-through-nginx']).toMatchObject({
      result: 'warn',
      detail: expect.stringContaining('not /etc/immich-firstboot/tls/current/cert.pem'),
      fix: 'nginx -t && systemctl reload nginx',
    });
    expect(code).toBe(0);
  });

  it('warns sign-up-state while no admin exists (isInitialized: false), with the URL to sign up at', async () => {
    const { doctor, ports } = await host();
    const { code, checks } = await doctor();
    expect(checks['sign-up-state']).toMatchObject({
      result: 'warn',
      detail:
        'no admin yet (isInitialized: false); the claim gate is in place (/etc/nginx/sites-available/immich includes /etc/immich-firstboot/nginx/claim-token.map: root:root 0600, a valid token)',
      fix: expect.stringMatching(
        new RegExp(
          `^sign up now at https://\\S+:${ports.https}/ after opening the claim link \\(https://\\S+/claim/…, in /root/immich-credentials.txt\\)`,
        ),
      ),
    });
    expect(code).toBe(0);
  });

  it('says in sign-up-state when the claim gate is not in place: a missing or too wide token file, a site without it', async () => {
    const { doctor, root } = await host();
    const TOKEN = '/etc/immich-firstboot/nginx/claim-token.map';
    chmodSync(path.join(root, TOKEN), 0o644);
    expect((await doctor()).checks['sign-up-state']).toMatchObject({
      result: 'warn',
      detail: expect.stringContaining(`no claim gate: ${TOKEN} is 0:0 mode 0644, not root:root 0600`),
      fix: expect.stringContaining(`rm ${TOKEN} && immich-firstboot --regenerate-cert`),
    });
    rmSync(path.join(root, TOKEN));
    expect((await doctor()).checks['sign-up-state']).toMatchObject({
      result: 'warn',
      detail: `no admin yet (isInitialized: false) and no claim gate: ${TOKEN} is missing; whoever signs up first becomes the admin`,
    });
    writeFile(
      root,
      SITE,
      readFile(root, SITE).replace(/^\s*include \/etc\/immich-firstboot\/nginx\/claim-token\.map;\n/gm, ''),
    );
    expect((await doctor()).checks['sign-up-state']).toMatchObject({
      result: 'warn',
      detail: expect.stringContaining(`no claim gate: ${SITE} does not include ${TOKEN}`),
    });
  });

  it('fails unit-state when immich-firstboot.service failed, and skips the per-boot unit when it is not installed', async () => {
    const { doctor } = await host();
    const { code, checks } = await doctor({ STANDIN_UNIT_FAILED: 'immich-firstboot.service', STANDIN_PERBOOT: '' });
    expect(code).toBe(1);
    expect(checks['unit-state']).toMatchObject({
      result: 'fail',
      detail: 'immich-firstboot.service failed/failed, result exit-code',
      fix: expect.stringContaining('systemctl restart immich-firstboot.service'),
    });
    expect(checks['perboot-unit-state']).toMatchObject({
      result: 'skipped',
      detail: 'immich-firstboot-perboot.service is not installed',
    });
  });

  it('fails unit-state when immich-firstboot-data-disk.service failed: the first-boot unit it holds back is inactive, not failed', async () => {
    const { doctor } = await host();
    const { code, checks } = await doctor({ STANDIN_UNIT_FAILED: 'immich-firstboot-data-disk.service' });
    expect(code).toBe(1);
    expect(checks['unit-state']).toMatchObject({
      result: 'fail',
      detail: 'immich-firstboot-data-disk.service failed/failed, result exit-code',
      fix: expect.stringContaining(
        'then: systemctl start immich-firstboot.service (it runs immich-firstboot-data-disk.service again first)',
      ),
    });
    expect(checks['perboot-unit-state']?.result).toBe('pass');
  });

  // Nearly every VM: config.yaml names no data disk, so the unit's ExecCondition= skipped it (Result=exec-condition).
  it('passes unit-state when immich-firstboot-data-disk.service was skipped by its ExecCondition=', async () => {
    const { doctor } = await host();
    const { checks } = await doctor({ STANDIN_UNIT_SKIPPED: 'immich-firstboot-data-disk.service' });
    expect(checks['unit-state']).toMatchObject({
      result: 'pass',
      detail: 'immich-firstboot.service active/exited, result success',
    });
  });

  it("fails perboot-unit-state when the per-boot check failed at this boot, while the first boot's unit passes", async () => {
    const { doctor } = await host();
    const { code, checks } = await doctor({ STANDIN_UNIT_FAILED: 'immich-firstboot-perboot.service' });
    expect(code).toBe(1);
    expect(checks['unit-state']?.result).toBe('pass');
    expect(checks['perboot-unit-state']).toMatchObject({
      result: 'fail',
      detail: 'immich-firstboot-perboot.service failed/failed, result exit-code',
      fix: expect.stringContaining('systemctl restart immich-firstboot-perboot.service'),
    });
  });

  it('fails cert-names when the host has an address the certificate does not name (a new public IP)', async () => {
    const { doctor, root, config } = await host();
    const imds = await startImdsStub({ '/metadata/instance': { status: 200, body: INSTANCE_DOC('198.51.100.9') } });
    cleanups.push(() => imds.close());
    writeFile(
      root,
      '/etc/immich-firstboot/config.yaml',
      config.replace('enabled: false', `enabled: true\n  url: ${imds.url}`),
    );
    const { code, checks } = await doctor();
    expect(code).toBe(1);
    expect(checks['cert-names']).toMatchObject({
      result: 'fail',
      detail: expect.stringContaining('current addresses 198.51.100.9, 10.1.0.4'),
      fix: 'immich-firstboot regenerate-cert',
    });
  });
});
