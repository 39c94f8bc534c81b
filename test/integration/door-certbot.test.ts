// Let's Encrypt as an operator gets it: Debian's pebble (the ACME test server) on loopback, real
// `certbot --nginx` against our site served by a real nginx, then `--regenerate-cert` and a full
// rerun of the bundle; and a regenerated certificate after the VM's address changed.
//
// certbot edits the test copy of the site that our nginx serves (free loopback ports, paths inside the
// root; see test/support/door.ts); toRootView() puts that edit back into the root exactly as certbot
// would have left /etc/nginx/sites-available/immich on a VM (its --config-dir is <root>/etc/letsencrypt).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { bootedRoot, startEcho, startNginx, toRootView, type Echo, type TestNginx } from '../support/door.js';
import { INSTANCE_DOC, startImdsStub, type ImdsStub } from '../support/imds-stub.js';
import { startPebble, type Pebble } from '../support/pebble.js';

const SITE = '/etc/nginx/sites-available/immich';
let root: string;
let work: string;
let echo: Echo;
let imds: ImdsStub;
let privateIp = '10.1.0.4';
let nginx: TestNginx;
let pebble: Pebble;
let pebbleUrl: string;

const env = () => ({ IMMICH_FIRSTBOOT_IMDS_URL: imds.url });
const site = () => readFileSync(path.join(root, SITE), 'utf8');
const certbotLines = (text: string) => text.split('\n').filter((l) => l.includes('# managed by Certbot'));

/** The certificate nginx serves, as `openssl x509 -noout -subject -issuer -ext subjectAltName` prints it. */
function served(): string {
  const pem = execFileSync(
    'openssl',
    ['s_client', '-connect', `127.0.0.1:${nginx.https}`, '-servername', 'immich.test'],
    { input: '', encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] },
  );
  return execFileSync('openssl', ['x509', '-noout', '-issuer', '-ext', 'subjectAltName'], {
    input: pem,
    encoding: 'utf8',
  });
}

beforeAll(async () => {
  echo = await startEcho();
  imds = await startImdsStub({ '/metadata/instance': { status: 200, body: INSTANCE_DOC('', privateIp) } });
  work = mkdtempSync(path.join(os.tmpdir(), 'ifb-certbot-'));
  // IMDS on a stub (never 169.254.169.254); its private address changes in the address test.
  root = await bootedRoot(
    'ifb-door-',
    [
      'imds:\n  enabled: true\n  retrySeconds: 0',
      'domain: immich.test',
      `stack:\n  serverUrl: http://127.0.0.1:${echo.port}`,
      '',
    ].join('\n'),
    env(),
  );
  nginx = await startNginx(root);

  // Every authorization valid without a real challenge (certbot --nginx's own temporary site is not served here).
  pebble = await startPebble({ httpPort: nginx.http, tlsPort: nginx.https, alwaysValid: true });
  pebbleUrl = pebble.url;
});

afterAll(async () => {
  nginx?.stop();
  await pebble?.close();
  await echo?.close();
  await imds?.close();
  for (const dir of [root, work]) if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the certificate after the VM moves to another address', () => {
  it('is regenerated naming the new address, and nginx serves it after the reload', async () => {
    expect(served()).toContain('IP Address:10.1.0.4');
    privateIp = '10.1.0.99';
    await imds.close();
    imds = await startImdsStub({ '/metadata/instance': { status: 200, body: INSTANCE_DOC('', privateIp) } });
    const run = await runCli(['--root', root, '--regenerate-cert'], env());
    expect(run.code).toBe(0);
    nginx.reload(); // in a root the bundle never signals a host nginx; on a VM, it reloads nginx itself
    const now = served();
    expect(now).toContain('IP Address:10.1.0.99');
    expect(now).not.toContain('IP Address:10.1.0.4');
    expect(readFileSync(`${root}/root/immich-credentials.txt`, 'utf8')).toContain('https://10.1.0.99/');
  });
});

describe('certbot --nginx against our site', () => {
  it('gets a certificate from pebble, and --regenerate-cert and a full rerun leave its lines intact with nginx -t green', async () => {
    const certbot = execFileSync(
      'certbot',
      [
        '--nginx',
        '--server',
        pebbleUrl,
        '-d',
        'immich.test',
        '--agree-tos',
        '--register-unsafely-without-email',
        '--non-interactive',
        '--no-redirect',
        '--config-dir',
        `${root}/etc/letsencrypt`,
        '--work-dir',
        `${work}/work`,
        '--logs-dir',
        `${work}/logs`,
        '--nginx-server-root',
        nginx.prefix,
        '--nginx-ctl',
        '/usr/sbin/nginx',
        '--http-01-port',
        String(nginx.http),
        '--nginx-sleep-seconds',
        '1',
      ],
      {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, REQUESTS_CA_BUNDLE: pebble.caBundle },
        timeout: 120_000,
      },
    );
    expect(certbot).toContain('Successfully deployed certificate');
    expect(served()).toMatch(/issuer=.*Pebble/);

    // Back into the root: what /etc/nginx/sites-available/immich on a VM now holds.
    writeFileSync(path.join(root, SITE), toRootView(readFileSync(nginx.siteCopy, 'utf8'), root, nginx));
    const edited = site();
    expect(certbotLines(edited)).toEqual([
      expect.stringMatching(
        /^\s*ssl_certificate \/etc\/letsencrypt\/live\/immich\.test\/fullchain\.pem; # managed by Certbot$/,
      ),
      expect.stringMatching(
        /^\s*ssl_certificate_key \/etc\/letsencrypt\/live\/immich\.test\/privkey\.pem; # managed by Certbot$/,
      ),
    ]);
    const fingerprint = () =>
      /SHA256 ([0-9A-F:]+)/.exec(readFileSync(`${root}/root/immich-credentials.txt`, 'utf8'))![1];
    const before = fingerprint();

    const regenerate = await runCli(['--root', root, '--regenerate-cert'], env());
    expect(regenerate.code).toBe(0);
    expect(regenerate.lines.map((l) => l.msg)).toContainEqual('nginx -t: the configuration is valid');
    expect(regenerate.lines.find((l) => l.level === 40 && l.msg.startsWith('nginx serves'))?.msg).toBe(
      'nginx serves /etc/letsencrypt/live/immich.test/fullchain.pem, not the self-signed /etc/immich-firstboot/tls/current/cert.pem; left as it is: the new self-signed certificate is not in use',
    );
    expect(fingerprint()).not.toBe(before);
    expect(site()).toBe(edited);
    // The operator's notes no longer claim a self-signed certificate that nginx does not serve.
    const notes = readFileSync(`${root}/root/immich-credentials.txt`, 'utf8');
    expect(notes).toContain(
      'nginx serves /etc/letsencrypt/live/immich.test/fullchain.pem (installed by certbot or by hand)',
    );
    expect(notes).not.toContain('The certificate is self-signed, so the browser warns once');

    // A full rerun from a fresh journal (no recorded hash at all): every step runs again.
    rmSync(`${root}/var/lib/immich-firstboot`, { recursive: true });
    const rerun = await runCli(['--root', root, '--skip-stack'], env());
    expect(rerun.code).toBe(0);
    expect(rerun.lines.find((l) => l.step === 'nginx-site' && l.level === 30 && 'changed' in l)?.msg).toBe(
      `nothing changed; kept the edited ${SITE}, ours is beside it`,
    );
    expect(site()).toBe(edited);
    expect(existsSync(`${root}${SITE}.firstboot-new`)).toBe(true);
    const status = JSON.parse((await runCli(['--root', root, 'status', '--json'])).stdout) as {
      warnings: Array<{ message: string }>;
    };
    expect(status.warnings.map((w) => w.message)).toContainEqual(
      expect.stringContaining(`${SITE} was changed by someone else; kept it`),
    );

    // And the real nginx agrees: the site as it now stands still loads and still serves pebble's certificate.
    execFileSync('nginx', [...nginx.nginxArgs, '-t', '-q'], { stdio: 'pipe' });
    nginx.reload();
    expect(served()).toMatch(/issuer=.*Pebble/);
    // certbot's edit keeps the rest of the door: the groups, no version, the edge's headers, a 308 without HSTS on 80.
    for (const line of [
      /^ {4}ssl_ecdh_curve (X25519MLKEM768:)?X25519:prime256v1:secp384r1;$/m,
      /^ {4}server_tokens off;$/m,
      /^ {4}proxy_set_header X-Forwarded-For \$remote_addr;$/m,
      /^ {4}proxy_redirect off;$/m,
    ])
      expect(edited).toMatch(line);
    const redirect = await new Promise<http.IncomingMessage>((resolve, reject) =>
      http
        .get({ host: '127.0.0.1', port: nginx.http, path: '/photos', headers: { host: 'immich.test' } }, resolve)
        .on('error', reject),
    );
    redirect.resume();
    expect({
      status: redirect.statusCode,
      location: redirect.headers.location,
      hsts: redirect.headers['strict-transport-security'],
      server: redirect.headers.server,
    }).toEqual({ status: 308, location: 'https://immich.test/photos', hsts: undefined, server: 'nginx' });
  }, 180_000);
});
