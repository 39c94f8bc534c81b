// Reading a site: which sockets its listen lines ask for (doctor's ports for "nginx is the only door").
import { describe, expect, it } from 'vitest';
import { render } from '../../src/render.js';
import { siteListens } from '../../src/nginx.js';
import { shipped } from '../support/fake-system.js';

describe('siteListens', () => {
  it('finds 80 and 443 (IPv4 and IPv6, TLS on 443) in the rendered site', async () => {
    const site = await render(shipped, 'nginx/immich.conf.hbs', {
      serverNames: '_',
      certPath: '/c',
      keyPath: '/k',
      acmeWebroot: '/w',
      upstream: '127.0.0.1:2283',
      legacyHttp2: false,
      claimTokenPath: '/t',
      claimCookiePath: '/api/auth/admin-sign-up',
      credentialsPath: '/root/immich-credentials.txt',
    });
    expect(siteListens(site)).toEqual([
      { address: '*', port: '80', ssl: false },
      { address: '::', port: '80', ssl: false },
      { address: '*', port: '443', ssl: true },
      { address: '::', port: '443', ssl: true },
    ]);
  });

  it('reads addresses with ports, ssl among other parameters, and leaves unix sockets out', () => {
    expect(
      siteListens(
        'listen 127.0.0.1:8443 ssl http2 default_server;\nlisten [::1]:8080;\nlisten unix:/run/x.sock;\n  listen 10.0.0.4;',
      ),
    ).toEqual([
      { address: '127.0.0.1', port: '8443', ssl: true },
      { address: '::1', port: '8080', ssl: false },
      { address: '10.0.0.4', port: '80', ssl: false },
    ]);
  });
});
