// doctor against a booted --root without --live (an offline tree): each claim of the tree broken on
// purpose is caught; host checks say skipped. The host checks: day-two-doctor-live.test.ts.
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BUNDLE, runCli } from '../support/cli.js';
import { makeRoot, readFile, writeFile } from '../support/root.js';

beforeAll(() => {
  if (!existsSync(BUNDLE)) throw new Error('run `npm run build` first (npm test does)');
});

interface Check {
  id: string;
  result: string;
  detail: string;
  fix?: string;
}

async function booted(): Promise<string> {
  const root = makeRoot();
  const run = await runCli(['--root', root, 'run', '--skip-stack']);
  expect(run.code, run.stderr).toBe(0);
  return root;
}

async function doctor(root: string): Promise<{ code: number; checks: Record<string, Check> }> {
  const result = await runCli(['--root', root, 'doctor', '--json']);
  const checks = Object.fromEntries((JSON.parse(result.stdout) as Check[]).map((c) => [c.id, c]));
  return { code: result.code, checks };
}

describe('immich-firstboot doctor', () => {
  it('passes a fresh first boot, and says every host-only check is skipped and why', async () => {
    const { code, checks } = await doctor(await booted());
    expect(code).toBe(0);
    for (const id of [
      'config',
      'env-mode',
      'credentials-mode',
      'key-mode',
      'log-rotation',
      'cert-expiry',
      'cert-names',
      'nginx-config',
    ])
      expect(checks[id]?.result, id).toBe('pass');
    for (const id of [
      'loopback-2283',
      'nginx-only-80-443',
      'containers-healthy',
      'ping-through-nginx',
      'sign-up-state',
      'unit-state',
      'perboot-unit-state',
    ]) {
      expect(checks[id]).toMatchObject({ result: 'skipped', detail: expect.stringContaining('add --live') });
    }
  });

  it.each([
    ['env-mode', '/opt/immich/.env'],
    ['credentials-mode', '/root/immich-credentials.txt'],
    ['key-mode', '/etc/immich-firstboot/tls/current/key.pem'],
  ])('fails %s when %s is world-readable, with the fix, and exits 1', async (id, inside) => {
    const root = await booted();
    chmodSync(path.join(root, inside), 0o644);
    const { code, checks } = await doctor(root);
    expect(code).toBe(1);
    expect(checks[id]).toMatchObject({ result: 'fail', fix: expect.stringContaining(`chmod 0`) });
  });

  it('fails log-rotation when daemon.json has no max-size/max-file', async () => {
    const root = await booted();
    writeFile(root, '/etc/docker/daemon.json', '{}\n');
    const { code, checks } = await doctor(root);
    expect(code).toBe(1);
    expect(checks['log-rotation']?.result).toBe('fail');
  });

  it('fails cert-names when the recorded addresses are not all in the certificate', async () => {
    const root = await booted();
    const journal = JSON.parse(readFile(root, '/var/lib/immich-firstboot/state.json'));
    journal.facts.host.addresses.push('198.51.100.9');
    writeFile(root, '/var/lib/immich-firstboot/state.json', JSON.stringify(journal), 0o600);
    const { code, checks } = await doctor(root);
    expect(code).toBe(1);
    expect(checks['cert-names']).toMatchObject({ result: 'fail', fix: 'immich-firstboot regenerate-cert' });
  });
});

describe('immich-firstboot doctor on the tree', () => {
  it('fails nginx-config when nginx -t rejects the site, quoting nginx', async () => {
    const root = await booted();
    const site = readFile(root, '/etc/nginx/sites-available/immich');
    writeFile(
      root,
      '/etc/nginx/sites-available/immich',
      site.replace('ssl_session_tickets off;', 'ssl_session_tickets off;\n    bogus_directive on;'),
    );
    const { code, checks } = await doctor(root);
    expect(code).toBe(1);
    expect(checks['nginx-config']).toMatchObject({
      result: 'fail',
      detail: expect.stringContaining('unknown directive "bogus_directive"'),
      fix: expect.stringContaining('nginx -t && systemctl reload nginx'),
    });
  });

  it('warns cert-expiry when the served certificate expires within 30 days', async () => {
    const root = await booted();
    const dir = path.join(root, '/etc/immich-firstboot/tls/current');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-days',
        '10',
        '-noenc',
        '-subj',
        '/CN=vm',
        '-keyout',
        path.join(dir, 'key.pem'),
        '-out',
        path.join(dir, 'cert.pem'),
      ],
      { stdio: 'pipe' },
    );
    chmodSync(path.join(dir, 'key.pem'), 0o600);
    const { code, checks } = await doctor(root);
    expect(checks['cert-expiry']).toMatchObject({
      result: 'warn',
      detail: expect.stringContaining('(< 30 days)'),
      fix: 'immich-firstboot regenerate-cert',
    });
    expect(code).toBe(1); // the new certificate names none of the addresses: cert-names fails
    expect(checks['cert-names']?.result).toBe('fail');
  });

  it('fails cert-expiry when the served certificate has expired', async () => {
    const root = await booted();
    const dir = path.join(root, '/etc/immich-firstboot/tls/current');
    // Real openssl, run under libfaketime: a 30-day certificate issued on 2020-01-01.
    execFileSync(
      'faketime',
      [
        '2020-01-01 00:00:00',
        'openssl',
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-days',
        '30',
        '-noenc',
        '-subj',
        '/CN=vm',
        '-keyout',
        path.join(dir, 'key.pem'),
        '-out',
        path.join(dir, 'cert.pem'),
      ],
      { stdio: 'pipe' },
    );
    chmodSync(path.join(dir, 'key.pem'), 0o600);
    const { code, checks } = await doctor(root);
    expect(code).toBe(1);
    expect(checks['cert-expiry']).toMatchObject({
      result: 'fail',
      detail: '/etc/immich-firstboot/tls/current/cert.pem expired 2020-01-31T00:00:00.000Z',
      fix: 'immich-firstboot regenerate-cert',
    });
  });

  it('checks the expiry of a certificate certbot installed, and leaves its names to its issuer', async () => {
    const root = await booted();
    const live = '/etc/letsencrypt/live/photos.example.com';
    mkdirSync(path.join(root, live), { recursive: true });
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-days',
        '5',
        '-noenc',
        '-subj',
        '/CN=photos.example.com',
        '-keyout',
        path.join(root, live, 'privkey.pem'),
        '-out',
        path.join(root, live, 'fullchain.pem'),
      ],
      { stdio: 'pipe' },
    );
    const site = readFile(root, '/etc/nginx/sites-available/immich')
      .replace(/ssl_certificate \S+;/, `ssl_certificate ${live}/fullchain.pem; # managed by Certbot`)
      .replace(/ssl_certificate_key \S+;/, `ssl_certificate_key ${live}/privkey.pem; # managed by Certbot`);
    writeFile(root, '/etc/nginx/sites-available/immich', site);
    const { checks } = await doctor(root);
    expect(checks['cert-expiry']).toMatchObject({
      result: 'warn',
      detail: expect.stringContaining(`${live}/fullchain.pem expires`),
      fix: 'certbot renew',
    });
    expect(checks['cert-names']).toMatchObject({
      result: 'skipped',
      detail: expect.stringContaining('not our self-signed certificate'),
    });
  });

  it('reports an invalid config.yaml as a failed check and audits the rest with the defaults', async () => {
    const root = await booted();
    writeFile(root, '/etc/immich-firstboot/config.yaml', 'stack:\n  serverUrl: http://0.0.0.0:2283\n');
    const { code, checks } = await doctor(root);
    expect(code).toBe(1);
    expect(checks.config).toMatchObject({
      result: 'fail',
      detail: expect.stringContaining('line 2: stack.serverUrl must be a loopback http:// URL'),
    });
    expect(checks['env-mode']?.result).toBe('pass');
  });
});

describe('immich-firstboot doctor --live on the command line', () => {
  it('is accepted with doctor only (exit 2 elsewhere), and --help documents it', async () => {
    const misplaced = await runCli(['status', '--live']);
    expect(misplaced).toMatchObject({ code: 2, stderr: expect.stringContaining('--live goes with doctor') });
    expect((await runCli(['--help'])).stdout).toMatch(/--live +doctor with --root: audit this running host too/);
  });
});
