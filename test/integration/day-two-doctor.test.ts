// doctor against a booted --root without --live (an offline tree): each claim of the tree broken on
// purpose is caught; host checks say skipped. The host checks: day-two-doctor-live.test.ts.
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BUNDLE, REPO, runCli } from '../support/cli.js';
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
      'immich-dir-mode',
      'env-mode',
      'compose-mode',
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
      'apparmor-docker-default',
    ]) {
      expect(checks[id]).toMatchObject({ result: 'skipped', detail: expect.stringContaining('add --live') });
    }
    // This tree has none of the seed image's hardening installed: warnings (day-two-doctor-hardening.test.ts).
    for (const id of ['ufw-22-80-443', 'fail2ban-jails', 'unattended-upgrades', 'auditd'])
      expect(checks[id]).toMatchObject({ result: 'warn', detail: expect.stringContaining('is not installed') });
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

  const KEY = '/etc/immich-firstboot/tls/current/key.pem';
  it.each([
    ['env-mode', '/opt/immich/.env', 'uid 1000', 1000, 0, undefined, 'chmod 0640'],
    ['env-mode', '/opt/immich/.env', 'gid 100', 0, 100, undefined, 'chmod 0640'],
    ['credentials-mode', '/root/immich-credentials.txt', 'uid 1000', 1000, 0, undefined, 'chmod 0600'],
    ['credentials-mode', '/root/immich-credentials.txt', 'gid 100', 0, 100, undefined, 'chmod 0600'],
    ['key-mode', KEY, 'uid 1000', 1000, 0, undefined, 'chmod 0600'],
    ['key-mode', KEY, 'gid 100', 0, 100, undefined, 'chmod 0600'],
    ['compose-mode', '/opt/immich/docker-compose.yml', 'uid 1000', 1000, 0, undefined, 'chmod go-w'],
    ['compose-mode', '/opt/immich/docker-compose.yml', 'gid 100', 0, 100, undefined, 'chmod go-w'],
    ['compose-mode', '/opt/immich/docker-compose.yml', 'mode 0664', 0, 0, 0o664, 'chmod go-w'],
    ['immich-dir-mode', '/opt/immich', 'uid 1000', 1000, 0, undefined, 'chmod go-w'],
    ['immich-dir-mode', '/opt/immich', 'gid 100', 0, 100, undefined, 'chmod go-w'],
    ['immich-dir-mode', '/opt/immich', 'mode 0775', 0, 0, 0o775, 'chmod go-w'],
    ['immich-dir-mode', '/opt/immich', 'mode 0757', 0, 0, 0o757, 'chmod go-w'],
  ] as const)('fails %s when %s has %s, with the chown and chmod', async (id, inside, _, uid, gid, mode, chmod) => {
    const root = await booted();
    chownSync(path.join(root, inside), uid, gid);
    if (mode !== undefined) chmodSync(path.join(root, inside), mode);
    const { code, checks } = await doctor(root);
    expect(code).toBe(1);
    expect(checks[id]).toMatchObject({
      result: 'fail',
      detail: expect.stringContaining(`owned by uid ${uid}, gid ${gid}`),
      fix: `chown root:root ${inside} && ${chmod} ${inside}`,
    });
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

describe('a first boot over files someone else owns, and doctor after it', () => {
  const ENV = `UPLOAD_LOCATION=/opt/immich/library\nDB_DATA_LOCATION=/opt/immich/postgres\nTZ=UTC\nIMMICH_VERSION=v3.2.4\nDB_PASSWORD=KeptSecret0123456789abcdefABCDEF\nDB_USERNAME=postgres\nDB_DATABASE_NAME=immich\n`;
  const owned = (root: string, inside: string) => {
    const st = statSync(path.join(root, inside));
    return `${(st.mode & 0o7777).toString(8).padStart(4, '0')} ${st.uid}:${st.gid}`;
  };
  const firstError = async (root: string) =>
    (
      JSON.parse((await runCli(['--root', root, 'status', '--json'])).stdout) as {
        errors: Array<{ code: string; hint: string }>;
      }
    ).errors[0];

  it('refuses a complete .env owned by uid 1000 with the fix; once the fix is run, the boot ends and doctor passes', async () => {
    const root = makeRoot();
    writeFile(root, '/opt/immich/.env', ENV, 0o640);
    chownSync(path.join(root, '/opt/immich/.env'), 1000, 1000);
    expect((await runCli(['--root', root, 'run', '--skip-stack'])).code).toBe(1);
    const error = await firstError(root);
    expect(error).toMatchObject({ code: 'not-root-owned' });
    expect(error?.hint).toContain('`chown root:root /opt/immich/.env && chmod 0640 /opt/immich/.env`');
    expect((await doctor(root)).checks['env-mode']?.result).toBe('fail');
    execFileSync('sh', ['-c', 'chown root:root opt/immich/.env && chmod 0640 opt/immich/.env'], { cwd: root });
    expect((await runCli(['--root', root, 'run', '--skip-stack'])).code).toBe(0);
    expect(readFile(root, '/opt/immich/.env')).toBe(ENV);
    expect((await doctor(root)).code).toBe(0);
  });

  it('refuses /opt/immich owned by uid 1000, naming the chown; doctor fails immich-dir-mode', async () => {
    const root = makeRoot();
    mkdirSync(path.join(root, '/opt/immich'), { recursive: true });
    chownSync(path.join(root, '/opt/immich'), 1000, 1000);
    expect((await runCli(['--root', root, 'run', '--skip-stack'])).code).toBe(1);
    expect((await firstError(root))?.hint).toContain('`chown root:root /opt/immich && chmod go-w /opt/immich`');
    expect((await doctor(root)).checks['immich-dir-mode']?.result).toBe('fail');
  });

  it('makes root:root a .env of group 100 (0640), our compose file owned by uid 1000, and /opt/immich of group 100; doctor passes', async () => {
    const root = makeRoot();
    writeFile(root, '/opt/immich/.env', ENV, 0o640);
    chownSync(path.join(root, '/opt/immich/.env'), 0, 100);
    writeFile(
      root,
      '/opt/immich/docker-compose.yml',
      readFileSync(path.join(REPO, 'compose/docker-compose.yml'), 'utf8'),
    );
    chownSync(path.join(root, '/opt/immich/docker-compose.yml'), 1000, 1000);
    chownSync(path.join(root, '/opt/immich'), 0, 100);
    const before = await doctor(root);
    expect([
      before.checks['env-mode']?.result,
      before.checks['compose-mode']?.result,
      before.checks['immich-dir-mode']?.result,
    ]).toEqual(['fail', 'fail', 'fail']);
    expect((await runCli(['--root', root, 'run', '--skip-stack'])).code).toBe(0);
    expect(owned(root, '/opt/immich/.env')).toBe('0640 0:0');
    expect(owned(root, '/opt/immich/docker-compose.yml')).toBe('0644 0:0');
    expect(owned(root, '/opt/immich')).toBe('0755 0:0');
    expect(readFile(root, '/opt/immich/.env')).toBe(ENV);
    expect((await doctor(root)).code).toBe(0);
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

  /**
   * A P-256 certificate for `name` (CN, and a DNS SAN with `san`), `days` days valid, by real openssl;
   * `issued`: when it was issued (openssl under libfaketime, the clock frozen there with -f: without it the
   * clock starts there and runs, and a slow openssl signs a second late), else now. The key is 0600.
   */
  function makeCert(
    key: string,
    cert: string,
    opts: { name: string; days: number; san?: boolean; issued?: string },
  ): void {
    const req = [
      'openssl',
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-days',
      String(opts.days),
      '-noenc',
      '-subj',
      `/CN=${opts.name}`,
      ...(opts.san ? ['-addext', `subjectAltName=DNS:${opts.name}`] : []),
      '-keyout',
      key,
      '-out',
      cert,
    ];
    const [file, ...args] = opts.issued ? ['faketime', '-f', opts.issued, ...req] : req;
    execFileSync(file, args, { stdio: 'pipe' });
    chmodSync(key, 0o600);
  }

  it('warns cert-expiry when the served certificate expires within 30 days', async () => {
    const root = await booted();
    const dir = path.join(root, '/etc/immich-firstboot/tls/current');
    makeCert(path.join(dir, 'key.pem'), path.join(dir, 'cert.pem'), { name: 'vm', days: 10 });
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
    makeCert(path.join(dir, 'key.pem'), path.join(dir, 'cert.pem'), {
      name: 'vm',
      days: 30,
      issued: '2020-01-01 00:00:00',
    });
    const { code, checks } = await doctor(root);
    expect(code).toBe(1);
    expect(checks['cert-expiry']).toMatchObject({
      result: 'fail',
      detail:
        '/etc/immich-firstboot/tls/current/cert.pem (our self-signed certificate) expired 2020-01-31T00:00:00.000Z',
      fix: 'immich-firstboot regenerate-cert',
    });
  });

  /** A certificate for `name` valid `days` days at `live`, and the site serving it (with certbot's marks, or not). */
  function serve(root: string, live: string, name: string, days: number, certbotMarks: boolean): void {
    mkdirSync(path.join(root, live), { recursive: true });
    makeCert(path.join(root, live, 'privkey.pem'), path.join(root, live, 'fullchain.pem'), { name, days, san: true });
    const mark = certbotMarks ? ' # managed by Certbot' : '';
    const site = readFile(root, '/etc/nginx/sites-available/immich')
      .replace(/ssl_certificate \S+;/, `ssl_certificate ${live}/fullchain.pem;${mark}`)
      .replace(/ssl_certificate_key \S+;/, `ssl_certificate_key ${live}/privkey.pem;${mark}`);
    writeFile(root, '/etc/nginx/sites-available/immich', site);
  }

  it('checks the expiry of a certificate certbot put in the site, and that it names the domain of config.yaml', async () => {
    const root = await booted();
    const live = '/etc/letsencrypt/live/photos.example.com';
    serve(root, live, 'photos.example.com', 5, true);
    const before = await doctor(root);
    expect(before.checks['cert-expiry']).toMatchObject({
      result: 'warn',
      detail: expect.stringMatching(
        new RegExp(
          `^${live}/fullchain\\.pem \\(a certificate certbot \\(certbot --nginx\\) .*\\) expires .* \\(< 20 days\\)$`,
        ),
      ),
      fix: 'certbot renew',
    });
    expect(before.checks['cert-names']).toMatchObject({
      result: 'pass',
      detail: expect.stringContaining('config.yaml names no domain to compare with'),
    });
    writeFile(root, '/etc/immich-firstboot/config.yaml', 'imds:\n  enabled: false\ndomain: photos.example.org\n');
    expect((await doctor(root)).checks['cert-names']).toMatchObject({
      result: 'fail',
      detail: expect.stringContaining('names photos.example.com, not the domain photos.example.org of config.yaml'),
      fix: 'certbot --nginx -d photos.example.org',
    });
  });

  it("tells our Let's Encrypt certificate (webroot, the site untouched) from certbot's, warns under 20 days, and checks its name", async () => {
    const root = await booted();
    const live = '/etc/letsencrypt/live/immich-firstboot';
    writeFile(
      root,
      '/etc/immich-firstboot/config.yaml',
      'imds:\n  enabled: false\ndomain: photos.example.org\nletsencrypt:\n  email: owner@example.org\n',
    );
    serve(root, live, 'photos.example.org', 45, false);
    const fresh = await doctor(root);
    expect(fresh.checks['cert-expiry']).toMatchObject({
      result: 'pass',
      detail: expect.stringContaining(`${live}/fullchain.pem (our Let's Encrypt certificate (certbot's webroot;`),
    });
    expect(fresh.checks['cert-names']).toMatchObject({
      result: 'pass',
      detail: expect.stringContaining('names photos.example.org, the domain among them'),
    });
    // 15 days left: certbot's timer should have renewed it at 30.
    serve(root, live, 'photos.example.net', 15, false);
    const stale = await doctor(root);
    expect(stale.checks['cert-expiry']).toMatchObject({
      result: 'warn',
      detail: expect.stringContaining('(< 20 days)'),
      fix: expect.stringMatching(/^certbot renew --cert-name immich-firstboot .*certbot\.timer/),
    });
    expect(stale.checks['cert-names']).toMatchObject({
      result: 'fail',
      fix: 'immich-firstboot enable-https --domain photos.example.org --email owner@example.org',
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
