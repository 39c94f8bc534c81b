// The door as a client sees it: the bundle renders the site into a temp root, a real nginx serves it
// (listen lines rewritten to free loopback ports in a test copy, see test/support/door.ts) in front of
// a Node echo upstream on 127.0.0.1, and real clients (Node https/tls, sslscan, openssl s_client) talk to it.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import { Readable } from 'node:stream';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  filesUnder,
  openFilesUnder,
  readFrame,
  rssKiB,
  bootedRoot,
  startEcho,
  startNginx,
  textFrame,
  type Echo,
  type TestNginx,
} from '../support/door.js';

let root: string;
let echo: Echo;
let nginx: TestNginx;
let ca: string;

beforeAll(async () => {
  echo = await startEcho();
  root = await bootedRoot(
    'ifb-door-',
    [
      'imds:\n  enabled: false',
      'domain: immich.test',
      'extraNames: [127.0.0.1, "::1"]',
      `stack:\n  serverUrl: http://127.0.0.1:${echo.port}`,
      '',
    ].join('\n'),
  );
  ca = readFileSync(`${root}/etc/immich-firstboot/tls/current/cert.pem`, 'utf8');
  nginx = await startNginx(root);
});

afterAll(async () => {
  nginx?.stop();
  await echo?.close();
  if (root) rmSync(root, { recursive: true, force: true });
});

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function get(
  scheme: 'http' | 'https',
  urlPath: string,
  headers: Record<string, string> = {},
  method = 'GET',
): Promise<Answer> {
  const port = scheme === 'https' ? nginx.https : nginx.http;
  const lib = scheme === 'https' ? https : http;
  return new Promise((resolve, reject) => {
    const req = lib.request(
      {
        host: '127.0.0.1',
        port,
        path: urlPath,
        method,
        headers: { host: 'immich.test', ...headers },
        ca,
        servername: 'immich.test',
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin',
  'x-frame-options': 'SAMEORIGIN',
  'permissions-policy': expect.stringContaining('camera=()'),
};

describe('the nginx door, served by real nginx', () => {
  it('redirects http to https with 308 (a POST stays a POST), but serves the ACME challenge from the webroot', async () => {
    const redirect = await get('http', '/photos/abc?size=preview');
    expect(redirect.status).toBe(308);
    expect(redirect.headers.location).toBe('https://immich.test/photos/abc?size=preview');
    const post = await get('http', '/api/auth/login', { 'content-type': 'application/json' }, 'POST');
    expect({ status: post.status, location: post.headers.location }).toEqual({
      status: 308,
      location: 'https://immich.test/api/auth/login',
    });

    mkdirSync(`${root}/var/www/immich-acme/.well-known/acme-challenge`, { recursive: true });
    writeFileSync(`${root}/var/www/immich-acme/.well-known/acme-challenge/token-123`, 'token-123.thumbprint');
    const challenge = await get('http', '/.well-known/acme-challenge/token-123');
    expect(challenge).toMatchObject({ status: 200, body: 'token-123.thumbprint' });
    expect((await get('http', '/.well-known/acme-challenge/missing')).status).toBe(404);
  });

  it('sends the security headers on 200s, redirects and errors, HSTS over TLS only, and no CSP of its own', async () => {
    const answers = {
      ok: await get('https', '/'),
      redirect: await get('http', '/'),
      nginxError: await get('http', '/.well-known/acme-challenge/missing'),
      upstreamError: await get('https', '/status/500'),
      tlsNginxError: await get('https', '/%00'), // nginx's own 400: a NUL in the path
    };
    expect(Object.values(answers).map((a) => a.status)).toEqual([200, 308, 404, 500, 400]);
    for (const [what, answer] of Object.entries(answers)) {
      expect({ what, ...answer.headers }).toMatchObject({ what, ...SECURITY_HEADERS });
      expect(answer.headers['content-security-policy']).toBeUndefined();
      // RFC 6797 7.2: an HSTS host must not send it over plain HTTP (a browser ignores it there anyway).
      expect({ what, hsts: answer.headers['strict-transport-security'] }).toEqual({
        what,
        hsts: what === 'redirect' || what === 'nginxError' ? undefined : 'max-age=63072000',
      });
    }
  });

  it("names no nginx version, in the Server header or on nginx's own error pages", async () => {
    const answers = [
      await get('https', '/'),
      await get('https', '/status/502'),
      await get('https', '/%00'),
      await get('http', '/'),
      await get('http', '/.well-known/acme-challenge/missing'),
    ];
    expect(answers.map((a) => a.headers.server)).toEqual(['nginx', 'nginx', 'nginx', 'nginx', 'nginx']);
    const pages = answers.filter((a) => a.body.includes('<center>nginx'));
    expect(pages.length).toBeGreaterThan(0);
    for (const page of pages) expect(page.body).not.toMatch(/nginx\/\d/);
  });

  it('proxies /.well-known/immich to Immich with Host, X-Real-IP, X-Forwarded-For and X-Forwarded-Proto', async () => {
    const answer = await get('https', '/.well-known/immich');
    expect(answer.status).toBe(200);
    const seen = JSON.parse(answer.body) as { url: string; headers: Record<string, string> };
    expect(seen.url).toBe('/.well-known/immich');
    expect(seen.headers).toMatchObject({
      host: 'immich.test',
      'x-real-ip': '127.0.0.1',
      'x-forwarded-for': '127.0.0.1',
      'x-forwarded-proto': 'https',
    });
  });

  it("replaces a client's own X-Forwarded-For and X-Real-IP with its address: a claimed 10.9.9.9 never reaches Immich", async () => {
    const answer = await get('https', '/api/server/ping', {
      'x-forwarded-for': '10.9.9.9',
      'x-real-ip': '10.9.9.9',
    });
    expect(answer.status).toBe(200);
    const seen = JSON.parse(answer.body) as { headers: Record<string, string> };
    expect({ xff: seen.headers['x-forwarded-for'], realIp: seen.headers['x-real-ip'] }).toEqual({
      xff: '127.0.0.1',
      realIp: '127.0.0.1',
    });
    expect(JSON.stringify(seen.headers)).not.toContain('10.9.9.9');
  });

  it("passes Immich's Location header to the client as Immich wrote it (proxy_redirect off)", async () => {
    const answer = await get('https', '/redirect/auth/login?continue=%2Fphotos');
    expect(answer.status).toBe(302);
    expect(answer.headers.location).toBe(`http://127.0.0.1:${echo.port}/auth/login?continue=%2Fphotos`);
  });

  it('upgrades to a WebSocket and round-trips a message through it', async () => {
    const key = Buffer.from('immich-firstboot').toString('base64');
    const socket = tls.connect({
      host: '127.0.0.1',
      port: nginx.https,
      ca,
      servername: 'immich.test',
      ALPNProtocols: ['http/1.1'],
    });
    await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
    socket.write(
      [
        'GET /api/socket.io/?EIO=4&transport=websocket HTTP/1.1',
        'Host: immich.test',
        'Upgrade: websocket',
        'Connection: Upgrade',
        `Sec-WebSocket-Key: ${key}`,
        'Sec-WebSocket-Version: 13',
        '',
        '',
      ].join('\r\n'),
    );
    let received = Buffer.alloc(0);
    const handshake = await new Promise<string>((resolve) => {
      socket.on('data', function onData(chunk: Buffer) {
        received = Buffer.concat([received, chunk]);
        const end = received.indexOf('\r\n\r\n');
        if (end < 0) return;
        socket.off('data', onData);
        const head = received.subarray(0, end).toString();
        received = received.subarray(end + 4);
        resolve(head);
      });
    });
    expect(handshake).toMatch(/^HTTP\/1\.1 101 /);
    expect(handshake).toMatch(/sec-websocket-accept: iWrlQ7iJ\/Eh5prW\/hUE67StowdU=/i);
    socket.write(textFrame('hello from the phone', true));
    const reply = await new Promise<string>((resolve) => {
      const tryRead = () => {
        const frame = readFrame(received);
        if (frame) resolve(frame.text);
      };
      socket.on('data', (chunk: Buffer) => {
        received = Buffer.concat([received, chunk]);
        tryRead();
      });
      tryRead();
    });
    socket.destroy();
    expect(reply).toBe('echo: hello from the phone');
    expect(echo.seen.find((s) => s.url.startsWith('/api/socket.io/'))?.headers).toMatchObject({
      upgrade: 'websocket',
      connection: 'upgrade',
    });
  });

  it('streams a 1 GiB upload to Immich while nginx neither grows in memory nor spools the body to disk', async () => {
    const size = 1024 ** 3;
    const chunk = Buffer.alloc(1024 * 1024, 0x5a);
    const [worker] = nginx.workerPids();
    const rssBefore = rssKiB(worker);
    let rssMax = rssBefore;
    let spooled: string[] = [];
    const sampler = setInterval(() => {
      rssMax = Math.max(rssMax, rssKiB(worker));
      spooled = spooled.concat(filesUnder(nginx.bodyTemp), openFilesUnder(worker, nginx.bodyTemp));
    }, 100);
    let sent = 0;
    const body = new Readable({
      read() {
        if (sent >= size) return void this.push(null);
        sent += chunk.length;
        this.push(chunk);
      },
    });
    const answer = await new Promise<Answer>((resolve, reject) => {
      const req = https.request(
        {
          host: '127.0.0.1',
          port: nginx.https,
          path: '/api/assets',
          method: 'POST',
          ca,
          servername: 'immich.test',
          agent: false,
          headers: { host: 'immich.test', 'content-type': 'application/octet-stream', 'content-length': String(size) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: Buffer.concat(chunks).toString('utf8'),
            }),
          );
        },
      );
      req.on('error', reject);
      body.pipe(req);
    });
    clearInterval(sampler);
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toMatchObject({ url: '/api/assets', bytes: size });
    expect(spooled.concat(filesUnder(nginx.bodyTemp))).toEqual([]);
    // A buffered body would cost nginx (or its disk) the whole GiB; streaming costs a few buffers.
    const grownMiB = (Math.max(rssMax, rssKiB(worker)) - rssBefore) / 1024;
    expect(grownMiB).toBeLessThan(32);
  }, 180_000);

  it('lets one HTTP/2 upload have 8 MiB in flight: the flow-control window nginx grants its body (1 MiB caps it at 50 MiB/s over a 20 ms round trip)', async () => {
    // A raw HTTP/2 client (Node's does not show a stream's window): POST /api/assets with a content-length
    // of 100 MiB and no body yet, then add up the window nginx grants stream 1: its SETTINGS_INITIAL_WINDOW_SIZE
    // plus the WINDOW_UPDATE it sends once it starts reading the body for Immich.
    const frame = (type: number, flags: number, stream: number, payload: Buffer) => {
      const head = Buffer.alloc(9);
      head.writeUIntBE(payload.length, 0, 3);
      head.writeUInt8(type, 3);
      head.writeUInt8(flags, 4);
      head.writeUInt32BE(stream, 5);
      return Buffer.concat([head, payload]);
    };
    // HPACK (RFC 7541): :method POST and :scheme https from the static table, then literals without
    // indexing whose names are static entries 4 (:path), 1 (:authority) and 28 (content-length).
    const literal = (prefix: number[], value: string) => Buffer.from([...prefix, value.length, ...Buffer.from(value)]);
    const headerBlock = Buffer.concat([
      Buffer.from([0x83, 0x87]),
      literal([0x04], '/api/assets'),
      literal([0x01], 'immich.test'),
      literal([0x0f, 0x0d], String(100 * 1024 * 1024)),
    ]);
    const socket = tls.connect({
      host: '127.0.0.1',
      port: nginx.https,
      ca,
      servername: 'immich.test',
      ALPNProtocols: ['h2'],
    });
    const window = await new Promise<{ alpn: string | false | null; initial: number; update: number }>(
      (resolve, reject) => {
        let initial = 65535; // RFC 9113 6.5.2, until the server's SETTINGS says otherwise
        let data = Buffer.alloc(0);
        socket.on('secureConnect', () => {
          socket.write(Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'));
          socket.write(frame(0x4, 0, 0, Buffer.alloc(0))); // SETTINGS, none
          socket.write(frame(0x1, 0x4, 1, headerBlock)); // HEADERS, END_HEADERS, no END_STREAM: a body follows
        });
        socket.on('data', (chunk: Buffer) => {
          data = Buffer.concat([data, chunk]);
          while (data.length >= 9 && data.length >= 9 + data.readUIntBE(0, 3)) {
            const [length, type, flags, stream] = [
              data.readUIntBE(0, 3),
              data[3],
              data[4],
              data.readUInt32BE(5) & 0x7fffffff,
            ];
            const payload = data.subarray(9, 9 + length);
            data = data.subarray(9 + length);
            if (type === 0x4 && !(flags & 0x1)) {
              for (let i = 0; i + 6 <= payload.length; i += 6)
                if (payload.readUInt16BE(i) === 0x4) initial = payload.readUInt32BE(i + 2);
              socket.write(frame(0x4, 0x1, 0, Buffer.alloc(0))); // SETTINGS ACK
            }
            if (type === 0x8 && stream === 1)
              resolve({ alpn: socket.alpnProtocol, initial, update: payload.readUInt32BE(0) & 0x7fffffff });
            if (type === 0x1 && stream === 1) reject(new Error('nginx answered before asking for the body'));
          }
        });
        socket.on('error', reject);
        setTimeout(() => reject(new Error('no WINDOW_UPDATE for the upload within 10 s')), 10_000).unref();
      },
    ).finally(() => socket.destroy());
    expect(window.alpn).toBe('h2');
    expect(window.initial + window.update).toBe(8 * 1024 * 1024);
  });

  it('offers only TLS 1.2 and 1.3, and only the intended ECDHE AEAD ciphers (sslscan)', () => {
    const out = execFileSync(
      'sslscan',
      [
        '--no-colour',
        '--no-heartbleed',
        '--no-compression',
        '--no-fallback',
        '--no-renegotiation',
        '--no-groups',
        '--sni-name=immich.test',
        `127.0.0.1:${nginx.https}`,
      ],
      { encoding: 'utf8', timeout: 120_000 },
    );
    const protocols = Object.fromEntries(
      [...out.matchAll(/^(SSLv2|SSLv3|TLSv1\.[0-3])\s+(enabled|disabled)/gm)].map((m) => [m[1], m[2]]),
    );
    expect(protocols).toEqual({
      SSLv2: 'disabled',
      SSLv3: 'disabled',
      'TLSv1.0': 'disabled',
      'TLSv1.1': 'disabled',
      'TLSv1.2': 'enabled',
      'TLSv1.3': 'enabled',
    });
    const accepted = [...out.matchAll(/^(?:Preferred|Accepted)\s+(TLSv1\.[23])\s+\d+ bits\s+(\S+)/gm)].map(
      (m) => `${m[1]} ${m[2]}`,
    );
    // An ECDSA certificate: the ECDHE-ECDSA half of Mozilla's intermediate list, plus TLS 1.3's suites.
    expect(accepted.sort()).toEqual([
      'TLSv1.2 ECDHE-ECDSA-AES128-GCM-SHA256',
      'TLSv1.2 ECDHE-ECDSA-AES256-GCM-SHA384',
      'TLSv1.2 ECDHE-ECDSA-CHACHA20-POLY1305',
      'TLSv1.3 TLS_AES_128_GCM_SHA256',
      'TLSv1.3 TLS_AES_256_GCM_SHA384',
      'TLSv1.3 TLS_CHACHA20_POLY1305_SHA256',
    ]);
  }, 150_000);

  it("agrees only on Mozilla's key exchange groups: X25519, P-256 and P-384, never ffdhe2048, X448 or P-521 (openssl s_client)", () => {
    /** What `openssl s_client` offering only `groups` agrees on ("Server Temp Key"), or how it was refused. */
    const handshake = (groups: string, version: '-tls1_3' | '-tls1_2') => {
      const run = spawnSync(
        'openssl',
        ['s_client', '-connect', `127.0.0.1:${nginx.https}`, '-servername', 'immich.test', version, '-groups', groups],
        { input: '', encoding: 'utf8', timeout: 30_000 },
      );
      const key = /^Server Temp Key: (.+)$/m.exec(run.stdout)?.[1];
      return run.status === 0 && key ? key : `refused (${/alert [a-z ]+/.exec(run.stderr)?.[0] ?? run.status})`;
    };
    const groups = ['X25519', 'P-256', 'P-384', 'ffdhe2048', 'ffdhe3072', 'X448', 'P-521'];
    expect(Object.fromEntries(groups.map((g) => [g, handshake(g, '-tls1_3')]))).toEqual({
      X25519: 'X25519, 253 bits',
      'P-256': 'ECDH, prime256v1, 256 bits',
      'P-384': 'ECDH, secp384r1, 384 bits',
      ffdhe2048: 'refused (alert handshake failure)',
      ffdhe3072: 'refused (alert handshake failure)',
      X448: 'refused (alert handshake failure)',
      'P-521': 'refused (alert handshake failure)',
    });
    // TLS 1.2's ECDHE takes its curve from the same list (P-256 is offered too: the certificate's curve).
    expect({ X25519: handshake('X25519:P-256', '-tls1_2'), 'P-521': handshake('P-521:P-256', '-tls1_2') }).toEqual({
      X25519: 'X25519, 253 bits',
      'P-521': 'ECDH, prime256v1, 256 bits',
    });
  });

  it('serves a certificate whose SANs name the domain, the hostname and the configured addresses (openssl s_client)', () => {
    const served = execFileSync(
      'openssl',
      ['s_client', '-connect', `127.0.0.1:${nginx.https}`, '-servername', 'immich.test'],
      { input: '', encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] },
    );
    const san = execFileSync('openssl', ['x509', '-noout', '-ext', 'subjectAltName'], {
      input: served,
      encoding: 'utf8',
    });
    expect(san).toMatch(/DNS:immich\.test/);
    expect(san).toMatch(/IP Address:127\.0\.0\.1/);
    expect(san).toMatch(/IP Address:0:0:0:0:0:0:0:1/);
    expect(san).toContain(`DNS:${os.hostname().toLowerCase()}`);
  });
});
