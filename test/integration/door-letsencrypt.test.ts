// Let's Encrypt from config.yaml at first boot, as a VM gets it: real certbot (webroot) against Debian's
// pebble, which validates HTTP-01 through a real nginx serving the root's ACME webroot on loopback, and
// resolves the domain through pebble-challtestsrv, the same DNS our "does it point here" check asks.
//
// Everything is on 127.0.0.1. The boot id is the test machine's for every run, so a test that plays "the
// next boot" (or "after the backoff") edits the journal's lastAttemptBoot / nextAttemptAfter: no sleeping.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliResult } from '../support/cli.js';
import { freePort, startEcho, startNginx, type Echo, type TestNginx } from '../support/door.js';
import { startMockDns, startPebble, type MockDns, type Pebble } from '../support/pebble.js';
import { makeRoot, readFile, writeFile } from '../support/root.js';

const SITE = '/etc/nginx/sites-available/immich';
const JOURNAL = '/var/lib/immich-firstboot/state.json';
const LE_CERT = '/etc/letsencrypt/live/immich-firstboot/fullchain.pem';
let ports: { http: number; https: number };
let pebble: Pebble;
let dns: MockDns;
let echo: Echo;
let bin: string;
let nginx: TestNginx | undefined;

/** `nginx -s reload` (certbot's deploy hook) reaches the test nginx; every other call is the real nginx's. */
function wrapNginx(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ifb-le-bin-'));
  writeFileSync(
    `${dir}/nginx`,
    `#!/bin/sh\nif [ "$1" = -s ] && [ "$2" = reload ] && [ -s ${dir}/current ]; then exec /usr/sbin/nginx $(cat ${dir}/current) -s reload; fi\nexec /usr/sbin/nginx "$@"\n`,
  );
  chmodSync(`${dir}/nginx`, 0o755);
  return dir;
}

const env = () => ({ REQUESTS_CA_BUNDLE: pebble.caBundle, PATH: `${bin}:${process.env.PATH}` });

function config(domain: string): string {
  return [
    'imds:\n  enabled: false',
    `domain: ${domain}`,
    'extraNames: [127.0.0.1]',
    `stack:\n  serverUrl: http://127.0.0.1:${echo.port}`,
    `letsencrypt:\n  email: owner@example.org\n  server: ${pebble.url}\n  resolver: ${dns.server}`,
    '',
  ].join('\n');
}

/** A fresh root and a test nginx on the shared ports (pebble validates on ports.http). */
async function vm(domain: string): Promise<string> {
  const root = makeRoot(config(domain));
  chmodSync(root, 0o755); // nginx's workers read the webroot through it
  nginx = await startNginx(root, ports);
  writeFileSync(`${bin}/current`, nginx.nginxArgs.join(' '));
  return root;
}

/** Issuer and names of the certificate nginx serves for `domain`, and its serial. */
function served(domain: string): string {
  const pem = execFileSync('openssl', ['s_client', '-connect', `127.0.0.1:${ports.https}`, '-servername', domain], {
    input: '',
    encoding: 'utf8',
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  return execFileSync('openssl', ['x509', '-noout', '-issuer', '-serial', '-ext', 'subjectAltName'], {
    input: pem,
    encoding: 'utf8',
  });
}

const status = async (root: string) =>
  JSON.parse((await runCli(['--root', root, 'status', '--json'])).stdout) as {
    letsencrypt: { state: string; domain: string; reason: string | null; nextAttemptAfter: string | null };
    warnings: Array<{ step: string; message: string; hint?: string }>;
  };

/**
 * A first boot as the units run it: `run` (immich-firstboot.service, which stays on loopback), then
 * `per-boot` (the per-boot unit, ordered after it at the same boot), which asks Let's Encrypt.
 */
async function firstBoot(root: string): Promise<CliResult> {
  const run = await runCli(['--root', root, 'run', '--skip-stack'], env());
  if (run.code !== 0) return run;
  expect(run.lines.some((l) => l.step === 'letsencrypt')).toBe(false);
  const perBoot = await runCli(['--root', root, 'per-boot'], env());
  return { ...perBoot, stdout: run.stdout + perBoot.stdout, lines: [...run.lines, ...perBoot.lines] };
}

function editJournal(root: string, change: (le: Record<string, unknown>) => void): void {
  const journal = JSON.parse(readFile(root, JOURNAL)) as { facts: { letsencrypt: Record<string, unknown> } };
  change(journal.facts.letsencrypt);
  writeFile(root, JOURNAL, JSON.stringify(journal), 0o600);
}

beforeAll(async () => {
  ports = { http: await freePort(), https: await freePort() };
  echo = await startEcho();
  dns = await startMockDns();
  pebble = await startPebble({ httpPort: ports.http, dnsServer: dns.server });
  bin = wrapNginx();
});

afterEach(() => {
  nginx?.stop();
  nginx = undefined;
  writeFileSync(`${bin}/current`, '');
});

afterAll(async () => {
  await pebble?.close();
  await dns?.close();
  await echo?.close();
  if (bin) rmSync(bin, { recursive: true, force: true });
});

describe("Let's Encrypt at first boot (per-boot, right after it), from config.yaml", () => {
  it('ends serving a pebble certificate for the domain; credentials and status name it; a rerun, per-boot, --regenerate-cert and a renewal keep it', async () => {
    const domain = 'photos.le-first.test';
    await dns.setA(domain, ['127.0.0.1']);
    const root = await vm(domain);
    const run = await firstBoot(root);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect((await status(root)).letsencrypt).toMatchObject({ state: 'issued', domain });
    expect(readFile(root, SITE)).toContain(`ssl_certificate ${LE_CERT};`);
    nginx!.reload();
    const first = served(domain);
    expect(first).toMatch(/issuer=.*Pebble/);
    expect(first).toContain(`DNS:${domain}`);
    const notes = readFile(root, '/root/immich-credentials.txt');
    expect(notes).toContain(`https://${domain}/`);
    expect(notes).toContain(`Server URL: https://${domain}/api`);
    expect(notes).toContain("nginx serves a Let's Encrypt certificate for photos.le-first.test");
    // The self-signed pair stays as the fallback.
    expect(readFile(root, '/etc/immich-firstboot/tls/current/cert.pem')).toContain('BEGIN CERTIFICATE');

    // Nothing asks pebble again: a rerun, per-boot, and --regenerate-cert (which keeps the LE certificate in the site).
    const orders = pebble.orders();
    expect(orders).toBe(1);
    const site = readFile(root, SITE);
    expect((await runCli(['--root', root, 'run', '--skip-stack'], env())).code).toBe(0);
    const perBoot = await runCli(['--root', root, 'per-boot'], env());
    expect(perBoot.code).toBe(0);
    expect(perBoot.stdout).toContain('per-boot check: same instance, same addresses; nothing to do');
    const fingerprint = () => /SHA256 ([0-9A-F:]+)/.exec(readFile(root, '/root/immich-credentials.txt'))![1];
    const before = fingerprint();
    const regenerate = await runCli(['--root', root, '--regenerate-cert'], env());
    expect(regenerate.code, regenerate.stdout).toBe(0);
    expect(fingerprint()).not.toBe(before); // a new self-signed fallback
    expect(readFile(root, SITE)).toBe(site);
    expect(pebble.orders()).toBe(orders);
    nginx!.reload();
    expect(served(domain)).toBe(first);

    // certbot's own renewal (its timer on a VM) runs the deploy hook, which reloads nginx: a new serial is served.
    execFileSync(
      'certbot',
      [
        'renew',
        '--force-renewal',
        '--no-random-sleep-on-renew', // certbot sleeps up to 8 minutes when not on a terminal
        '--config-dir',
        `${root}/etc/letsencrypt`,
        '--work-dir',
        `${root}/var/lib/letsencrypt`,
        '--logs-dir',
        `${root}/var/log/letsencrypt`,
      ],
      { env: { ...process.env, ...env() }, stdio: 'pipe', timeout: 120_000 },
    );
    // No nginx.reload() here: only the hook reloaded it. `nginx -s reload` returns once the signal is sent, and
    // the old workers serve the old certificate until the new ones start (the harness's reload() waits for that).
    const serial = (text: string): string => /serial=(\w+)/.exec(text)![1];
    await expect.poll(() => serial(served(domain)), { timeout: 10_000, interval: 100 }).not.toBe(serial(first));
    const renewed = served(domain);
    expect(renewed).toMatch(/issuer=.*Pebble/);
    expect(serial(renewed)).not.toBe(serial(first));
  }, 240_000);

  it('asks no CA while the domain resolves elsewhere (a warning, pending-dns), and per-boot gets it at the next boot once DNS is fixed', async () => {
    const domain = 'photos.le-dns.test';
    await dns.setA(domain, ['203.0.113.9']);
    const root = await vm(domain);
    const log = pebble.log();
    const run = await firstBoot(root);
    expect(run.code).toBe(0);
    expect(pebble.log()).toBe(log); // not one request
    const pending = await status(root);
    expect(pending.letsencrypt).toMatchObject({ state: 'pending-dns', domain, nextAttemptAfter: null });
    expect(pending.letsencrypt.reason).toContain(`${domain} resolves to 203.0.113.9`);
    expect(pending.warnings.find((w) => w.step === 'letsencrypt')?.message).toContain("none of this VM's addresses");
    expect(run.lines.find((l) => l.level === 40 && l.step === 'letsencrypt')?.msg).toContain(
      `${domain} resolves to 203.0.113.9`,
    );
    expect(readFile(root, '/root/immich-credentials.txt')).toContain(`Let's Encrypt for ${domain} is not issued yet`);

    await dns.setA(domain, ['127.0.0.1']);
    // The same boot: per-boot does not try again.
    const same = await runCli(['--root', root, 'per-boot'], env());
    expect(same.stdout).toContain('nothing to do');
    expect(pebble.log()).toBe(log);
    // The next boot.
    editJournal(root, (le) => void (le.lastAttemptBoot = 'an-earlier-boot'));
    const next = await runCli(['--root', root, 'per-boot'], env());
    expect(next.code, next.stdout).toBe(0);
    const done = await status(root);
    expect(done.letsencrypt).toMatchObject({ state: 'issued', domain });
    expect(done.warnings.filter((w) => w.step === 'letsencrypt')).toEqual([]);
    nginx!.reload();
    expect(served(domain)).toMatch(/issuer=.*Pebble/);
    expect(readFile(root, '/root/immich-credentials.txt')).toContain(`Server URL: https://${domain}/api`);
  }, 240_000);

  it('keeps the self-signed certificate while the CA is down (failed, a reason, a next attempt), and per-boot gets it after the backoff', async () => {
    const domain = 'photos.le-down.test';
    await dns.setA(domain, ['127.0.0.1']);
    const root = await vm(domain);
    await pebble.stop();
    try {
      const run = await firstBoot(root);
      expect(run.code).toBe(0);
    } finally {
      await pebble.start();
    }
    const failed = await status(root);
    expect(failed.letsencrypt.state).toBe('failed');
    expect(failed.letsencrypt.reason).toContain(`could not reach the ACME server ${pebble.url}`);
    const next = Date.parse(failed.letsencrypt.nextAttemptAfter ?? '');
    expect(next).toBeGreaterThan(Date.now());
    expect(readFile(root, SITE)).toContain('ssl_certificate /etc/immich-firstboot/tls/current/cert.pem;');
    nginx!.reload();
    expect(served(domain)).not.toMatch(/Pebble/);

    // Another boot, but before nextAttemptAfter: nothing is asked.
    editJournal(root, (le) => void (le.lastAttemptBoot = 'an-earlier-boot'));
    const log = pebble.log();
    const early = await runCli(['--root', root, 'per-boot'], env());
    expect(early.stdout).toContain('nothing to do');
    expect(pebble.log()).toBe(log);
    // After it.
    editJournal(root, (le) => void (le.nextAttemptAfter = new Date(Date.now() - 1000).toISOString()));
    const late = await runCli(['--root', root, 'per-boot'], env());
    expect(late.code, late.stdout).toBe(0);
    expect((await status(root)).letsencrypt.state).toBe('issued');
    nginx!.reload();
    expect(served(domain)).toMatch(/issuer=.*Pebble/);
  }, 240_000);
});

describe('immich-firstboot enable-https on a done VM', () => {
  it('writes domain and letsencrypt.email into config.yaml keeping every other byte, serves the certificate; a rerun asks nothing; another domain switches', async () => {
    const domain = 'photos.le-enable.test';
    await dns.setA(domain, ['127.0.0.1']);
    const root = makeRoot('');
    chmodSync(root, 0o755);
    const original = [
      "# The operator's own notes: kept as they are.",
      'imds:',
      '  enabled: false # no Azure here',
      'extraNames: [127.0.0.1]',
      'stack:',
      `  serverUrl: http://127.0.0.1:${echo.port}`,
      'letsencrypt:',
      '  # the ACME server of this test',
      `  server: ${pebble.url}`,
      `  resolver: ${dns.server}`,
      '',
    ].join('\n');
    writeFile(root, '/etc/immich-firstboot/config.yaml', original, 0o640);
    expect((await runCli(['--root', root, 'run', '--skip-stack'], env())).code).toBe(0);
    expect((await status(root)).letsencrypt.state).toBe('off');
    nginx = await startNginx(root, ports);
    writeFileSync(`${bin}/current`, nginx.nginxArgs.join(' '));

    const orders = pebble.orders();
    const enable = await runCli(
      ['--root', root, 'enable-https', '--domain', domain, '--email', 'owner@example.org'],
      env(),
    );
    expect(enable.code, enable.stdout + enable.stderr).toBe(0);
    expect(enable.lines.map((l) => l.msg)).toEqual(
      expect.arrayContaining([
        `checking that ${domain} resolves to this VM (asking ${dns.server})`,
        expect.stringMatching(
          new RegExp(`^enable-https: https://${domain.replace(/\./g, '\\.')}/ serves a Let's Encrypt certificate`),
        ),
      ]),
    );
    expect(pebble.orders()).toBe(orders + 1);
    const written = readFile(root, '/etc/immich-firstboot/config.yaml');
    const added = [`domain: ${domain}`, '  email: owner@example.org'];
    expect(
      written
        .split('\n')
        .filter((l) => added.includes(l))
        .sort(),
    ).toEqual([...added].sort());
    expect(written.split('\n').filter((l) => !added.includes(l))).toEqual(original.split('\n'));
    expect(statSync(path.join(root, '/etc/immich-firstboot/config.yaml')).mode & 0o777).toBe(0o640);
    expect((await status(root)).letsencrypt).toMatchObject({ state: 'issued', domain });
    nginx.reload();
    expect(served(domain)).toMatch(new RegExp(`issuer=.*Pebble[\\s\\S]*DNS:${domain}`));
    expect(readFile(root, '/root/immich-credentials.txt')).toContain(`Server URL: https://${domain}/api`);

    // Again: nothing renewed, nothing rewritten.
    const again = await runCli(
      ['--root', root, 'enable-https', '--domain', domain, '--email', 'owner@example.org'],
      env(),
    );
    expect(again.code).toBe(0);
    expect(pebble.orders()).toBe(orders + 1);
    expect(readFile(root, '/etc/immich-firstboot/config.yaml')).toBe(written);

    // Another domain: the certificate (same lineage) and the site switch to it.
    const other = 'photos.le-other.test';
    await dns.setA(other, ['127.0.0.1']);
    const moved = await runCli(
      ['--root', root, 'enable-https', '--domain', other, '--email', 'owner@example.org'],
      env(),
    );
    expect(moved.code, moved.stdout).toBe(0);
    expect(readFile(root, '/etc/immich-firstboot/config.yaml')).toContain(`domain: ${other}\n`);
    expect((await status(root)).letsencrypt).toMatchObject({ state: 'issued', domain: other });
    nginx.reload();
    const now = served(other);
    expect(now).toContain(`DNS:${other}`);
    expect(now).not.toContain(`DNS:${domain}`);
    expect(readFile(root, SITE)).toMatch(new RegExp(`server_name ${other.replace(/\./g, '\\.')}[ ;]`));
  }, 240_000);

  it('refuses a bad e-mail before writing anything (exit 3, the key named)', async () => {
    const root = makeRoot('imds:\n  enabled: false\n');
    expect((await runCli(['--root', root, 'run', '--skip-stack'], env())).code).toBe(0);
    const before = readFile(root, '/etc/immich-firstboot/config.yaml');
    const bad = await runCli(
      ['--root', root, 'enable-https', '--domain', 'photos.example.org', '--email', 'a b@example.org'],
      env(),
    );
    expect(bad.code).toBe(3);
    expect(bad.stdout + bad.stderr).toContain('letsencrypt.email must be an e-mail address');
    expect(readFile(root, '/etc/immich-firstboot/config.yaml')).toBe(before);
  });
});
