// End to end under a real systemd: the built .deb installed with apt into a Debian 12 tree while no
// systemd runs (as image builders do), then the tree booted with systemd-nspawn (PID-1 systemd, Docker
// inside, stand-in Immich images): the first boot does everything once, the second does nothing, a third
// with a new machine-id is a clone (per-boot: new certificate, the secret kept), and a fourth with a new
// address on an interface renews the certificate for it.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO } from '../support/cli.js';
import { FIRST_BOOT } from '../../src/steps/index.js';
import { Machine } from './machine.js';

const WORK = '/var/tmp/immich-firstboot-e2e';
const UNIT = 'immich-firstboot.service';
const PERBOOT = 'immich-firstboot-perboot.service';
const CERT = '/etc/immich-firstboot/tls/current/cert.pem';
const machine = new Machine(path.join(WORK, `machine-${process.pid}`));
const DEB_DIR = path.join(WORK, `deb-${process.pid}`);
let deb = '';
let stockConf = '';
const t0 = Date.now();
const timings: string[] = [];
const mark = (what: string): void => void timings.push(`${what} at ${((Date.now() - t0) / 1000).toFixed(1)}s`);

/** DB_PASSWORD in the machine's .env. */
const secret = (): string => /^DB_PASSWORD=(.*)$/m.exec(readFileSync(machine.host('/opt/immich/.env'), 'utf8'))?.[1] ?? '';

/** SHA-256 fingerprint of our certificate on disk, and of the one nginx serves on 443 inside the machine. */
const onDisk = (): string => spawnSync('openssl', ['x509', '-in', machine.host(CERT), '-noout', '-fingerprint', '-sha256'], { encoding: 'utf8' }).stdout.trim();
const served = (): string => machine.out('sh', '-c', 'openssl s_client -connect 127.0.0.1:443 </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256').trim();
const unitState = (unit: string): Record<string, string> =>
  Object.fromEntries(machine.out('systemctl', 'show', unit, '-p', 'ActiveState,SubState,Result,ConditionResult').trim().split('\n').map((l) => l.split('=', 2) as [string, string]));
const thisBoot = (unit: string): string => machine.out('journalctl', '-b', '0', '-u', unit, '--no-pager', '-o', 'cat');
const pong = (): string => machine.exec('sh', '-c', 'for i in $(seq 120); do curl -sfk --max-time 2 https://127.0.0.1/api/server/ping && exit 0; sleep 0.5; done; exit 1').stdout.trim();

beforeAll(() => {
  rmSync(DEB_DIR, { recursive: true, force: true });
  const built = spawnSync('bash', [path.join(REPO, 'test/e2e/build-deb.sh'), DEB_DIR], { encoding: 'utf8' });
  if (built.status !== 0) throw new Error(`build-deb.sh failed:\n${built.stdout}${built.stderr}`);
  deb = built.stdout.trim().split('\n').at(-1)!;
  mark('deb built');

  // The Debian 12 tree (systemd, docker.io, docker-compose 1.29, nginx-light, nodejs) is cached.
  machine.script('prepare', ['ifb-e2e']);
  // The stand-in images must be in the machine's Docker before the first boot, because the unit runs
  // during that boot. So this is the image builder's own earlier stage: boot the tree before our package
  // is installed (no unit yet), `docker import` the stand-ins into its Docker with the fixture's own
  // build script, power off, and generalise the image (an empty machine-id, as cloud images ship).
  machine.script('boot');
  mkdirSync(machine.host('/var/tmp/standin-build'), { recursive: true });
  const images = spawnSync('bash', [path.join(REPO, 'test/fixtures/standin-images/build.sh')], {
    encoding: 'utf8',
    env: { ...process.env, PATH: `${path.join(REPO, 'test/e2e/shim')}:${process.env.PATH}`, IFB_MACHINE: machine.dir, TMPDIR: machine.host('/var/tmp/standin-build') },
  });
  if (images.status !== 0) throw new Error(`stand-in images failed:\n${images.stdout}${images.stderr}`);
  machine.script('poweroff');
  rmSync(machine.host('/var/tmp/standin-build'), { recursive: true, force: true });
  writeFileSync(machine.host('/etc/machine-id'), '');
  mark('machine prepared with images');
}, 300_000);

afterAll(() => {
  // Even after a failure: stop the machine (and its Docker), then remove it.
  console.log(`e2e timings: ${timings.join(', ')}`);
  const cleanup = machine.raw(path.join(REPO, 'test/env/nspawn-machine.sh'), ['cleanup', machine.dir], {});
  rmSync(DEB_DIR, { recursive: true, force: true });
  if (cleanup.code !== 0) throw new Error(`cleanup of ${machine.dir} failed:\n${cleanup.stderr}`);
}, 120_000);

describe('the package in a Debian 12 machine under systemd', () => {
  it('installs with `apt install ./x.deb` in a chroot with no systemd running, enables the unit and generates nothing', () => {
    // /tmp in the chroot is not the host's; /var/tmp is part of the tree.
    writeFileSync(machine.host('/var/tmp/immich-firstboot.deb'), readFileSync(deb));
    // sd_booted(3) is false in there: /run/systemd/system exists only when systemd is PID 1.
    const install = machine.script('chroot', ['sh', '-c', 'test ! -e /run/systemd/system && echo "no systemd running" && cd /var/tmp && apt install -y --no-install-recommends ./immich-firstboot.deb']);
    expect(install.stdout).toContain('no systemd running');
    expect(install.stdout).toContain('Setting up immich-firstboot (0.1.0)');
    // Enabled through the [Install] symlink, not started: nothing ran, so nothing exists yet.
    for (const unit of [UNIT, PERBOOT]) {
      expect(spawnSync('readlink', [machine.host(`/etc/systemd/system/multi-user.target.wants/${unit}`)], { encoding: 'utf8' }).stdout.trim()).toBe(`/lib/systemd/system/${unit}`);
    }
    for (const made of [
      '/opt/immich/.env',
      '/opt/immich/docker-compose.yml',
      '/etc/immich-firstboot/tls',
      '/etc/nginx/sites-available/immich',
      '/root/immich-credentials.txt',
      '/var/lib/immich-firstboot',
    ]) expect(existsSync(machine.host(made)), `${made} after install`).toBe(false);
    const daemonJson = machine.host('/etc/docker/daemon.json');
    if (existsSync(daemonJson)) expect(readFileSync(daemonJson, 'utf8')).not.toContain('max-size');
    rmSync(machine.host('/var/tmp/immich-firstboot.deb'));
    mark('installed');
  }, 120_000);

  it('runs once at the first boot under PID-1 systemd, ends active (exited) and shows our STATUS', () => {
    // Stand-in necessities, not part of what is proven:
    // 1. No Azure here: IMDS off in the conffile, as an image builder may set it (169.254.169.254 is never contacted).
    writeFileSync(machine.host('/etc/immich-firstboot/config.yaml'), 'imds:\n  enabled: false\n');
    // 2. The stand-in images can never match the pinned @sha256 digests of the shipped compose file, so
    //    the installed data file loses its digests (everything else of it is used as shipped).
    const compose = machine.host('/usr/lib/immich-firstboot/compose/docker-compose.yml');
    writeFileSync(compose, readFileSync(compose, 'utf8').replace(/@sha256:[0-9a-f]{64}/g, ''));
    // Debian's stock nginx.conf stays as shipped (it sets TLS 1.0/1.1 at http level): our site must
    // load with it and override it, see the test below.
    stockConf = readFileSync(machine.host('/etc/nginx/nginx.conf'), 'utf8');

    // `boot` waits for is-system-running = running/degraded: that waits for our oneshot to finish.
    machine.script('boot');
    mark('first boot up');
    expect(machine.out('readlink', '/proc/1/exe').trim()).toMatch(/systemd$/);
    const show = machine.out('systemctl', 'show', UNIT, '-p', 'ActiveState,SubState,Result,ExecMainStatus,ConditionResult,NRestarts');
    expect(Object.fromEntries(show.trim().split('\n').map((l) => l.split('=', 2)))).toEqual({
      ActiveState: 'active', SubState: 'exited', Result: 'success', ExecMainStatus: '0', ConditionResult: 'yes', NRestarts: '0',
    });
    const status = machine.exec('systemctl', 'status', UNIT, '--no-pager');
    expect(status.stdout).toContain('Active: active (exited)');
    expect(status.stdout).toContain('Status: "First boot done"');
    // Exactly one run: one start of the program, one "Finished" from systemd.
    const journal = machine.out('journalctl', '-u', UNIT, '--no-pager', '-o', 'cat');
    expect(journal.match(/"msg":"first boot starting"/g)).toHaveLength(1);
    expect(journal.match(/^Finished immich-firstboot\.service/gm)).toHaveLength(1);
  }, 180_000);

  it('logs JSON lines to the journal and never the secret', () => {
    const lines = machine.out('journalctl', '-u', UNIT, '--no-pager', '-o', 'cat').split('\n').filter((l) => l.startsWith('{'));
    const records = lines.map((l) => JSON.parse(l) as { msg: string; step?: string; level: number; changed?: boolean });
    expect(records.map((r) => r.msg)).toEqual(expect.arrayContaining(['first boot starting', 'first boot done; see /root/immich-credentials.txt']));
    // Every step logged its summary, in order, once.
    const summaries = records.filter((r) => r.step && 'changed' in r).map((r) => r.step);
    expect(summaries).toEqual(FIRST_BOOT.map((s) => s.id));
    expect(records.filter((r) => r.level >= 50)).toEqual([]);
    const pw = secret();
    expect(pw).toMatch(/^[A-Za-z0-9]{32}$/);
    // The whole journal of the machine (every unit, Docker included), not only ours.
    expect(machine.out('journalctl', '--no-pager', '-o', 'verbose')).not.toContain(pw);
  });

  it('writes its files root-owned with the specified modes', () => {
    const stat = (p: string): string => machine.out('stat', '-L', '-c', '%a %U:%G', p).trim();
    expect(stat('/opt/immich/.env')).toBe('640 root:root');
    expect(stat('/opt/immich/docker-compose.yml')).toBe('644 root:root');
    expect(stat('/etc/immich-firstboot/tls/current/key.pem')).toBe('600 root:root');
    expect(stat('/etc/immich-firstboot/tls/current/cert.pem')).toBe('644 root:root');
    expect(stat('/root/immich-credentials.txt')).toBe('600 root:root');
    expect(stat('/var/lib/immich-firstboot/state.json')).toBe('600 root:root');
    expect(stat('/var/lib/immich-firstboot/done')).toMatch(/^6[04]4 root:root$/);
    expect(stat('/etc/nginx/sites-available/immich')).toBe('644 root:root');
    expect(machine.out('readlink', '/etc/nginx/sites-enabled/immich').trim()).toBe('/etc/nginx/sites-available/immich');
    expect(machine.exec('test', '-e', '/etc/nginx/sites-enabled/default').code).not.toBe(0);
    expect(readFileSync(machine.host('/root/immich-credentials.txt'), 'utf8')).toContain(secret());
  });

  it('answers pong through nginx on https://127.0.0.1 while 2283 listens on loopback only', () => {
    expect(machine.out('curl', '-sSk', '--max-time', '10', 'https://127.0.0.1/api/server/ping').trim()).toBe('{"res":"pong"}');
    const listeners = machine.out('ss', '-ltnH').split('\n').filter(Boolean).map((l) => l.trim().split(/\s+/)[3]!);
    const immich = listeners.filter((a) => a.endsWith(':2283'));
    expect(immich.length).toBeGreaterThan(0);
    expect(immich.every((a) => a === '127.0.0.1:2283')).toBe(true);
    expect(listeners).toEqual(expect.arrayContaining(['0.0.0.0:443', '0.0.0.0:80']));
  });

  it('reports done in `immich-firstboot status --json`', () => {
    const run = machine.exec('immich-firstboot', 'status', '--json');
    expect(run.code).toBe(0);
    const report = JSON.parse(run.stdout) as { status: string; pending: unknown[]; errors: unknown[] };
    expect(report).toMatchObject({ status: 'done', pending: [], errors: [] });
  });

  it("works with Debian's stock nginx.conf, untouched, and nginx -t accepts it", () => {
    expect(readFileSync(machine.host('/etc/nginx/nginx.conf'), 'utf8')).toBe(stockConf);
    expect(stockConf).toMatch(/^\s*ssl_prefer_server_ciphers on;/m);
    const check = machine.exec('nginx', '-t', '-q');
    expect(check.stderr).toBe('');
    expect(check.code).toBe(0);
  });

  it('does nothing at the second boot: the unit is skipped by its condition, the secret is unchanged, Immich is back', () => {
    const before = { secret: secret(), done: readFileSync(machine.host('/var/lib/immich-firstboot/done'), 'utf8') };
    machine.script('poweroff');
    machine.script('boot');
    mark('second boot up');
    expect(machine.out('systemctl', 'show', UNIT, '-p', 'ConditionResult', '--value').trim()).toBe('no');
    expect(machine.out('systemctl', 'show', UNIT, '-p', 'ActiveState', '--value').trim()).toBe('inactive');
    const firstBootUnit = thisBoot(UNIT);
    expect(firstBootUnit).toMatch(/skipped because of an unmet condition check \(ConditionPathExists=!\/var\/lib\/immich-firstboot\/done\)/);
    expect(firstBootUnit).not.toContain('{"level"');
    // Across both boots, still exactly one run.
    expect(machine.out('journalctl', '-u', UNIT, '--no-pager', '-o', 'cat').match(/"msg":"first boot starting"/g)).toHaveLength(1);
    expect(secret()).toBe(before.secret);
    expect(readFileSync(machine.host('/var/lib/immich-firstboot/done'), 'utf8')).toBe(before.done);
    expect(JSON.parse(machine.out('immich-firstboot', 'status', '--json')).status).toBe('done');
    // The per-boot check ran, found the same instance and addresses, and did nothing.
    expect(unitState(PERBOOT)).toEqual({ ActiveState: 'active', SubState: 'exited', Result: 'success', ConditionResult: 'yes' });
    expect(thisBoot(PERBOOT)).toContain('"msg":"per-boot check: same instance, same addresses; nothing to do"');
    // Docker brings the containers back by itself (restart: always); nginx still answers for them.
    expect(pong()).toBe('{"res":"pong"}');
  }, 180_000);

  it('takes the clone path at a boot with a new machine-id: new certificate served, secret kept (Postgres holds data), status and MOTD say so', () => {
    const before = { secret: secret(), fingerprint: onDisk(), instance: JSON.parse(readFileSync(machine.host('/var/lib/immich-firstboot/done'), 'utf8')).instanceId as string };
    // What the stand-in Postgres was initialised with: the clone must keep exactly this.
    expect(readFileSync(machine.host('/opt/immich/postgres/standin-postgres-password'), 'utf8').trim()).toBe(before.secret);
    machine.script('poweroff');
    const cloneId = 'c10e0000000000000000000000000001';
    expect(before.instance).not.toBe(cloneId);
    writeFileSync(machine.host('/etc/machine-id'), `${cloneId}\n`);
    machine.script('boot');
    mark('clone boot up');

    expect(unitState(UNIT).ConditionResult).toBe('no');
    expect(unitState(PERBOOT)).toEqual({ ActiveState: 'active', SubState: 'exited', Result: 'success', ConditionResult: 'yes' });
    const journal = thisBoot(PERBOOT);
    expect(journal).toContain(`"msg":"this VM is a clone: first boot ran on instance ${before.instance}, this is ${cloneId}; making a new certificate and credentials, keeping the Postgres secret (Postgres holds data)"`);
    expect(secret()).toBe(before.secret);
    expect(before.fingerprint).toMatch(/^sha256 Fingerprint=[0-9A-F:]{95}$/i);
    expect(onDisk()).not.toBe(before.fingerprint);
    // nginx was reloaded: it serves the new certificate, and Immich still answers through it with the kept secret.
    expect(served()).toBe(onDisk());
    expect(pong()).toBe('{"res":"pong"}');
    const report = JSON.parse(machine.out('immich-firstboot', 'status', '--json')) as Record<string, unknown>;
    expect(report).toMatchObject({ status: 'done', instanceId: cloneId, clone: { fromInstanceId: before.instance, toInstanceId: cloneId, secret: 'kept (Postgres holds data)' } });
    expect(JSON.parse(readFileSync(machine.host('/var/lib/immich-firstboot/done'), 'utf8')).instanceId).toBe(cloneId);
    expect(machine.out('immich-firstboot', 'motd')).toContain(`This VM is a copy of instance ${before.instance}`);
    expect(readFileSync(machine.host('/root/immich-credentials.txt'), 'utf8')).toContain(onDisk().replace(/^.*Fingerprint=/, ''));
    expect(machine.out('journalctl', '--no-pager', '-o', 'verbose')).not.toContain(before.secret);
  }, 180_000);

  it('renews the certificate for a new address at the next boot, and nginx serves it', () => {
    // A new address at boot, as a resized or moved VM gets one: a test-only unit adds a veth with it
    // before the per-boot check (the machine has only lo under --private-network; no dummy module here).
    writeFileSync(machine.host('/etc/systemd/system/ifb-test-address.service'), [
      '[Unit]', 'Before=immich-firstboot-perboot.service', '[Service]', 'Type=oneshot', 'RemainAfterExit=yes',
      "ExecStart=/bin/sh -ec 'ip link add eth1 type veth peer name eth1p; ip addr add 192.0.2.50/24 dev eth1; ip link set eth1p up; ip link set eth1 up'",
      '[Install]', 'WantedBy=multi-user.target', '',
    ].join('\n'));
    machine.script('poweroff');
    mkdirSync(machine.host('/etc/systemd/system/multi-user.target.wants'), { recursive: true });
    symlinkSync('/etc/systemd/system/ifb-test-address.service', machine.host('/etc/systemd/system/multi-user.target.wants/ifb-test-address.service'));
    const before = { secret: secret(), fingerprint: onDisk() };
    machine.script('boot');
    mark('moved boot up');

    expect(unitState(PERBOOT)).toEqual({ ActiveState: 'active', SubState: 'exited', Result: 'success', ConditionResult: 'yes' });
    expect(thisBoot(PERBOOT)).toMatch(/"msg":"new ECDSA certificate \(it does not name 192\.0\.2\.50\)/);
    expect(spawnSync('openssl', ['x509', '-in', machine.host(CERT), '-noout', '-ext', 'subjectAltName'], { encoding: 'utf8' }).stdout).toContain('IP Address:192.0.2.50');
    expect(onDisk()).not.toBe(before.fingerprint);
    expect(served()).toBe(onDisk());
    expect(secret()).toBe(before.secret);
    expect(JSON.parse(machine.out('immich-firstboot', 'status', '--json'))).toMatchObject({ addressChange: { to: ['192.0.2.50'], certificate: 'renewed' } });
    expect(readFileSync(machine.host('/root/immich-credentials.txt'), 'utf8')).toContain('https://192.0.2.50/');
  }, 180_000);
});
