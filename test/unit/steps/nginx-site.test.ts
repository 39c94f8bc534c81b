// Real nginx -t (inside the temp root) and real openssl: a site is only kept if nginx accepts it.
import { readlinkSync, existsSync, symlinkSync, mkdirSync, copyFileSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { nginxSite } from '../../../src/steps/nginx-site.js';
import { tlsCert } from '../../../src/steps/tls-cert.js';
import { execReal } from '../../../src/system/exec.js';
import type { Exec } from '../../../src/system/index.js';
import type { Journal } from '../../../src/state.js';
import type { StepContext } from '../../../src/steps/step.js';
import { fakeSystem, hostFacts, stepContext } from '../../support/fake-system.js';
import { makeRoot, modeOf, readFile, writeClaimToken, writeFile } from '../../support/root.js';

const SITE = '/etc/nginx/sites-available/immich';
const result = (command: string, stderr: string, exitCode = 0) => ({
  command,
  exitCode,
  stdout: '',
  stderr,
  notFound: false,
  timedOut: false,
});

/** Real programs, except that `nginx -V` may claim another version; `calls` records every nginx run. */
function programs(version: string | undefined, calls: string[] = []): Exec {
  return async (file, args, options) => {
    if (file === 'nginx') calls.push(args.join(' '));
    const real = await execReal(file, args, options);
    if (file !== 'nginx' || args[0] !== '-V' || !version) return real;
    return { ...real, stderr: real.stderr.replace(/nginx\/\d+\.\d+\.\d+/, `nginx/${version}`) };
  };
}

/** No nginx here but `nginx -V`, which prints `lines`. */
const nginxV =
  (...lines: string[]): Exec =>
  async (file, args) =>
    args[0] === '-V' ? result('nginx -V', `${lines.join('\n')}\n`) : { ...result(file, ''), notFound: true };

interface ContextOptions {
  version?: string;
  domain?: string | null;
  calls?: string[];
  newCert?: boolean;
}

async function context(
  root: string,
  { version, domain = 'photos.example.com', calls = [], newCert = false }: ContextOptions = {},
) {
  const { ctx } = stepContext(fakeSystem(root, { exec: programs(version, calls) }), { domain }, { newCert });
  ctx.journal.facts.host = hostFacts();
  await tlsCert.apply(ctx);
  writeClaimToken(root);
  return ctx;
}

describe('the nginx-site step', () => {
  it('renders the site for nginx 1.24 (listen ... http2), enables it, disables the distro default, and nginx -t accepts it', async () => {
    const root = makeRoot();
    mkdirSync(`${root}/etc/nginx/sites-enabled`, { recursive: true });
    symlinkSync('/etc/nginx/sites-available/default', `${root}/etc/nginx/sites-enabled/default`);
    const calls: string[] = [];
    await nginxSite.apply(await context(root, { version: '1.24.0', calls }));
    const site = readFile(root, SITE);
    expect(site).toMatchSnapshot();
    expect(site).toContain('listen 443 ssl http2 default_server;');
    expect(site).not.toContain('http2 on;');
    expect(site).toContain('server_name photos.example.com immich-vm;');
    expect(modeOf(root, SITE)).toBe('0644');
    expect(readlinkSync(`${root}/etc/nginx/sites-enabled/immich`)).toBe(SITE);
    expect(existsSync(`${root}/etc/nginx/sites-enabled/default`)).toBe(false);
    expect(calls).toContainEqual(expect.stringMatching(/^-t -q -c /));
  });

  it('uses `http2 on;` from nginx 1.25.1', async () => {
    const root = makeRoot();
    const { ctx } = stepContext(fakeSystem(root, { exec: nginxV('nginx version: nginx/1.25.1') }));
    ctx.journal.facts.host = hostFacts({ addresses: [] });
    await nginxSite.apply(ctx);
    expect(readFile(root, SITE)).toContain('    http2 on;');
    expect(readFile(root, SITE)).toContain('listen 443 ssl default_server;');
  });

  it("offers only the key exchange groups of Mozilla's guidelines 6.0, X25519MLKEM768 first only where nginx runs with OpenSSL 3.5 or newer", async () => {
    const curves = async (...lines: string[]) => {
      const { ctx } = stepContext(fakeSystem(makeRoot(), { exec: nginxV(...lines) }));
      ctx.journal.facts.host = hostFacts({ addresses: [] });
      await nginxSite.apply(ctx);
      return readFile(ctx.sys.fs.root, SITE).match(/^ {4}ssl_ecdh_curve .*$/gm);
    };
    const classical = ['    ssl_ecdh_curve X25519:prime256v1:secp384r1;'];
    const hybrid = ['    ssl_ecdh_curve X25519MLKEM768:X25519:prime256v1:secp384r1;'];
    // Debian 12, Debian 13, and the library nginx runs with counting over the one it was built with.
    expect(await curves('nginx version: nginx/1.22.1', 'built with OpenSSL 3.0.22 25 Aug 2026')).toEqual(classical);
    expect(
      await curves(
        'nginx version: nginx/1.26.3',
        'built with OpenSSL 3.5.7 9 Jun 2026 (running with OpenSSL 3.5.9 29 Sep 2026)',
      ),
    ).toEqual(hybrid);
    expect(
      await curves('nginx version: nginx/1.26.3', 'built with OpenSSL 3.5.0 8 Apr 2025 (running with OpenSSL 3.0.13)'),
    ).toEqual(classical);
    expect(await curves('nginx version: nginx/1.28.0', 'built with OpenSSL 4.0.0 1 Apr 2026')).toEqual(hybrid);
    expect(await curves('nginx version: nginx/1.26.3', 'built with LibreSSL 4.0.0')).toEqual(classical);
    expect(await curves()).toEqual(classical); // nginx not installed: an offline render
  });

  it("keeps the previous site when nginx -t rejects the new one, and fails with nginx's own message", async () => {
    const root = makeRoot();
    const first = await context(root);
    await nginxSite.apply(first);
    const good = readFile(root, SITE);
    // This nginx (1.22) claims to be 1.25.1, so the render uses `http2 on;`, which it does not know.
    const ctx = await context(root, { version: '1.25.1', domain: 'new.example.com' });
    ctx.journal.managed = first.journal.managed;
    const hashBefore = ctx.journal.managed[SITE];
    await expect(nginxSite.apply(ctx)).rejects.toMatchObject({
      code: 'nginx-test-failed',
      message: expect.stringMatching(new RegExp(`unknown directive "http2" in ${SITE}:\\d+`)),
      hint: expect.stringContaining('the previous site was put back'),
    });
    expect(readFile(root, SITE)).toBe(good);
    expect(readlinkSync(`${root}/etc/nginx/sites-enabled/immich`)).toBe(SITE);
    expect(ctx.journal.managed[SITE]).toBe(hashBefore);
  });

  it('leaves no site enabled when the very first render is rejected', async () => {
    const root = makeRoot();
    await expect(nginxSite.apply(await context(root, { version: '1.25.1' }))).rejects.toMatchObject({
      code: 'nginx-test-failed',
    });
    expect(existsSync(`${root}${SITE}`)).toBe(false);
    expect(existsSync(`${root}/etc/nginx/sites-enabled/immich`)).toBe(false);
  });

  it('passes nginx -t with the distro nginx.conf and leaves that file untouched (the TLS policy is in our server block)', async () => {
    const root = makeRoot();
    mkdirSync(`${root}/etc/nginx`, { recursive: true });
    for (const f of ['nginx.conf', 'mime.types']) copyFileSync(`/etc/nginx/${f}`, `${root}/etc/nginx/${f}`);
    const distro = readFile(root, '/etc/nginx/nginx.conf');
    expect(distro).toMatch(/^\s*ssl_prefer_server_ciphers on;/m);
    const ctx = await context(root);
    const result = await nginxSite.apply(ctx);
    expect(result.changed).toBe(true);
    expect(readFile(root, '/etc/nginx/nginx.conf')).toBe(distro);
    const site = readFile(root, SITE);
    const server443 = site.slice(site.indexOf('listen 443'));
    expect(server443).toMatch(/^ {4}ssl_protocols TLSv1\.2 TLSv1\.3;$/m);
    expect(site.slice(0, site.indexOf('server {'))).not.toMatch(/^ssl_/m);
  });

  it("passes nginx -t with Debian 13's nginx.conf too, whose http level says server_tokens off (ours is per server)", async () => {
    const root = makeRoot();
    mkdirSync(`${root}/etc/nginx`, { recursive: true });
    copyFileSync('/etc/nginx/mime.types', `${root}/etc/nginx/mime.types`);
    const debian12 = readFileSync('/etc/nginx/nginx.conf', 'utf8');
    expect(debian12).toMatch(/^\s*# server_tokens off;/m);
    writeFile(root, '/etc/nginx/nginx.conf', debian12.replace(/# server_tokens off;/, 'server_tokens off;'));
    const result = await nginxSite.apply(await context(root));
    expect(result.changed).toBe(true);
    const site = readFile(root, SITE);
    expect(site.match(/^ {4}server_tokens off;$/gm)).toHaveLength(2);
    expect(site).not.toMatch(/^server_tokens/m);
  });

  /**
   * A rerun's context after a first apply in a fresh root, carrying what that apply recorded (the managed
   * files, the certificate nginx was given) and `facts`; the nginx it runs is recorded in `calls`.
   */
  async function afterFirstApply(calls: string[], facts: Partial<Journal['facts']> = {}): Promise<StepContext> {
    const root = makeRoot();
    const ctx = await context(root);
    await nginxSite.apply(ctx);
    const again = await context(root, { calls });
    Object.assign(again.journal, {
      managed: ctx.journal.managed,
      facts: { ...again.journal.facts, nginxCertFingerprint: ctx.journal.facts.nginxCertFingerprint, ...facts },
    });
    return again;
  }

  it('runs no nginx at all on a rerun that changes nothing', async () => {
    const calls: string[] = [];
    const again = await afterFirstApply(calls);
    const result = await nginxSite.apply(again);
    expect(result).toMatchObject({ changed: false, summary: 'nothing changed' });
    expect(calls).toEqual(['-V']);
  });

  it('checks and reloads for a new claim token alone (a clone), so nginx loads the include again', async () => {
    const calls: string[] = [];
    const again = await afterFirstApply(calls, {
      nginxClaimTokenAt: '2026-11-28T12:00:00.000Z',
      claimTokenAt: '2026-11-29T08:00:00.000Z',
    });
    const result = await nginxSite.apply(again);
    expect(result).toMatchObject({ changed: true, summary: 'new claim token' });
    expect(calls.filter((c) => c.startsWith('-t'))).toHaveLength(1);
    expect(again.journal.facts.nginxClaimTokenAt).toBe('2026-11-29T08:00:00.000Z');
  });

  it('keeps every security header out of the locations (add_header there would drop them all)', async () => {
    const root = makeRoot();
    await nginxSite.apply(await context(root));
    const site = readFile(root, SITE);
    for (const block of site.split(/\n\s*location /).slice(1))
      expect(block.split('\n}')[0]).not.toContain('add_header');
    // HSTS once, in the TLS server (RFC 6797 7.2: never over plain HTTP); door-nginx.test.ts shows it on the wire.
    expect(site.match(/add_header Strict-Transport-Security "max-age=63072000" always;/g)).toHaveLength(1);
    expect(site.indexOf('add_header Strict-Transport-Security')).toBeGreaterThan(site.indexOf('listen 443'));
  });

  it('keeps a site someone else edited (certbot) and writes ours beside it', async () => {
    const root = makeRoot();
    await nginxSite.apply(await context(root));
    const edited = readFile(root, SITE).replace(
      '    ssl_certificate_key',
      '    # a hand edit\n    ssl_certificate_key',
    );
    writeFile(root, SITE, edited);
    const ctx = await context(root, { domain: 'other.example.com' });
    ctx.journal.managed[SITE] = 'some-older-render'; // the recorded hash is what protects the edit
    await nginxSite.apply(ctx);
    expect(readFile(root, SITE)).toBe(edited);
    expect(readFile(root, `${SITE}.firstboot-new`)).toContain('server_name other.example.com immich-vm;');
    expect(ctx.journal.warnings[0]?.message).toContain('was changed by someone else; kept it');
  });

  it('says nginx serves a certificate that is not ours on --regenerate-cert, and leaves the site alone', async () => {
    const root = makeRoot();
    await nginxSite.apply(await context(root));
    const certbot = readFile(root, SITE)
      .replace(
        /ssl_certificate \S+;/,
        'ssl_certificate /etc/letsencrypt/live/photos.example.com/fullchain.pem; # managed by Certbot',
      )
      .replace(
        /ssl_certificate_key \S+;/,
        'ssl_certificate_key /etc/letsencrypt/live/photos.example.com/privkey.pem; # managed by Certbot',
      );
    writeFile(root, SITE, certbot);
    const ctx = await context(root, { newCert: true });
    ctx.journal.managed[SITE] = 'our-earlier-render';
    // certbot's files are not in this root, so nginx -t refuses; the message names them as the site does.
    await expect(nginxSite.apply(ctx)).rejects.toMatchObject({
      message: expect.stringContaining(
        'cannot load certificate "/etc/letsencrypt/live/photos.example.com/fullchain.pem"',
      ),
    });
    expect(readFile(root, SITE)).toBe(certbot);
    expect(ctx.journal.warnings.map((w) => w.message)).toContainEqual(
      expect.stringContaining(
        'nginx serves /etc/letsencrypt/live/photos.example.com/fullchain.pem, not the self-signed',
      ),
    );
  });

  it('uses the catch-all server name when there is no name at all', async () => {
    const root = makeRoot();
    const ctx = await context(root, { domain: null });
    ctx.journal.facts.host!.hostname = 'localhost';
    await nginxSite.apply(ctx);
    expect(readFile(root, SITE)).toContain('server_name _;');
  });
});
