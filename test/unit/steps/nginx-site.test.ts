import { readlinkSync, existsSync, symlinkSync, mkdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { nginxSite } from '../../../src/steps/nginx-site.js';
import type { Exec } from '../../../src/system/index.js';
import { fakeSystem, stepContext } from '../../support/fake-system.js';
import { makeRoot, modeOf, readFile, writeFile } from '../../support/root.js';

const SITE = '/etc/nginx/sites-available/immich';
const nginxV = (version: string): Exec => async (file, args) => {
  if (file === 'nginx' && args[0] === '-v') return { command: 'nginx -v', exitCode: 0, stdout: '', stderr: `nginx version: nginx/${version}\n`, notFound: false, timedOut: false };
  throw new Error(`unexpected exec ${file} ${args.join(' ')}`);
};

function context(root: string, version = '1.24.0', domain: string | null = 'photos.example.com') {
  const { ctx } = stepContext(fakeSystem(root, { exec: nginxV(version) }), { domain });
  ctx.journal.facts.host = { hostname: 'immich-vm', addresses: ['203.0.113.9'], publicIp: null, privateIp: null, instanceId: 'x', instanceIdSource: 'none' };
  return ctx;
}

describe('the nginx-site step', () => {
  it('renders the site for nginx 1.24 (listen ... http2), enables it and disables the distro default', async () => {
    const root = makeRoot();
    mkdirSync(`${root}/etc/nginx/sites-enabled`, { recursive: true });
    symlinkSync('/etc/nginx/sites-available/default', `${root}/etc/nginx/sites-enabled/default`);
    await nginxSite.apply(context(root));
    const site = readFile(root, SITE);
    expect(site).toMatchSnapshot();
    expect(site).toContain('listen 443 ssl http2 default_server;');
    expect(site).not.toContain('http2 on;');
    expect(site).toContain('server_name photos.example.com immich-vm;');
    expect(modeOf(root, SITE)).toBe('0644');
    expect(readlinkSync(`${root}/etc/nginx/sites-enabled/immich`)).toBe(SITE);
    expect(existsSync(`${root}/etc/nginx/sites-enabled/default`)).toBe(false);
  });

  it('uses `http2 on;` from nginx 1.25.1', async () => {
    const root = makeRoot();
    await nginxSite.apply(context(root, '1.25.1'));
    expect(readFile(root, SITE)).toContain('    http2 on;');
    expect(readFile(root, SITE)).toContain('listen 443 ssl default_server;');
  });

  it('keeps every security header out of the locations (add_header there would drop them all)', async () => {
    const root = makeRoot();
    await nginxSite.apply(context(root));
    const site = readFile(root, SITE);
    for (const block of site.split(/\n\s*location /).slice(1)) expect(block.split('\n}')[0]).not.toContain('add_header');
    expect(site.match(/add_header Strict-Transport-Security "max-age=63072000" always;/g)).toHaveLength(2);
  });

  it('keeps a site someone else edited (certbot) and writes ours beside it', async () => {
    const root = makeRoot();
    await nginxSite.apply(context(root));
    const edited = `${readFile(root, SITE)}    ssl_certificate /etc/letsencrypt/live/x/fullchain.pem; # managed by Certbot\n`;
    writeFile(root, SITE, edited);
    const ctx = context(root, '1.24.0', 'other.example.com');
    const first = ctx.journal; // a fresh journal knows nothing: the recorded hash is what protects the edit
    first.managed[SITE] = 'some-older-render';
    await nginxSite.apply(ctx);
    expect(readFile(root, SITE)).toBe(edited);
    expect(readFile(root, `${SITE}.firstboot-new`)).toContain('server_name other.example.com immich-vm;');
    expect(ctx.journal.warnings[0]?.message).toContain('was changed by someone else; kept it');
  });

  it('uses the catch-all server name when there is no name at all', async () => {
    const root = makeRoot();
    const ctx = context(root, '1.24.0', null);
    ctx.journal.facts.host!.hostname = 'localhost';
    await nginxSite.apply(ctx);
    expect(readFile(root, SITE)).toContain('server_name _;');
  });
});
