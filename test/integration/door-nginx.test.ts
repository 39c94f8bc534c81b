// The door as a client sees it: the bundle renders the site into a temp root, a real nginx serves it
// (listen lines rewritten to free loopback ports in a test copy, see test/support/door.ts) in front of
// a Node echo upstream on 127.0.0.1, and real clients (Node https/tls, sslscan, openssl s_client) talk to it.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import {
  filesUnder,
  openFilesUnder,
  readFrame,
  rssKiB,
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
  root = mkdtempSync(path.join(os.tmpdir(), 'ifb-door-'));
  chmodSync(root, 0o755); // like a real /: nginx's workers (nobody) read the ACME webroot inside it
  mkdirSync(`${root}/etc/immich-firstboot`, { recursive: true });
  writeFileSync(
    `${root}/etc/immich-firstboot/config.yaml`,
    [
      'imds:\n  enabled: false',
      'domain: immich.test',
      'extraNames: [127.0.0.1, "::1"]',
      `stack:\n  serverUrl: http://127.0.0.1:${echo.port}`,
      '',
    ].join('\n'),
  );
  const run = await runCli(['--root', root, '--skip-stack']);
  if (run.code !== 0) throw new Error(`first boot failed: ${run.stdout}${run.stderr}`);
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

function get(scheme: 'http' | 'https', urlPath: string, headers: Record<string, string> = {}): Promise<Answer> {
  const port = scheme === 'https' ? nginx.https : nginx.http;
  const lib = scheme === 'https' ? https : http;
  return new Promise((resolve, reject) => {
    const req = lib.request(
      {
        host: '127.0.0.1',
        port,
        path: urlPath,
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
  'strict-transport-security': 'max-age=63072000',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin',
  'x-frame-options': 'SAMEORIGIN',
  'permissions-policy': expect.stringContaining('camera=()'),
};

describe('the nginx door, served by real nginx', () => {
  it('redirects http to https, but serves the ACME challenge from the webroot without redirecting', async () => {
    const redirect = await get('http', '/photos/abc?size=preview');
    expect(redirect.status).toBe(301);
    expect(redirect.headers.location).toBe('https://immich.test/photos/abc?size=preview');

    mkdirSync(`${root}/var/www/immich-acme/.well-known/acme-challenge`, { recursive: true });
    writeFileSync(`${root}/var/www/immich-acme/.well-known/acme-challenge/token-123`, 'token-123.thumbprint');
    const challenge = await get('http', '/.well-known/acme-challenge/token-123');
    expect(challenge).toMatchObject({ status: 200, body: 'token-123.thumbprint' });
    expect((await get('http', '/.well-known/acme-challenge/missing')).status).toBe(404);
  });

  it('sends HSTS and the other security headers on 200s, redirects and errors, and no CSP of its own', async () => {
    const answers = {
      ok: await get('https', '/'),
      redirect: await get('http', '/'),
      nginxError: await get('http', '/.well-known/acme-challenge/missing'),
      upstreamError: await get('https', '/status/500'),
    };
    expect(Object.values(answers).map((a) => a.status)).toEqual([200, 301, 404, 500]);
    for (const [what, answer] of Object.entries(answers)) {
      expect({ what, ...answer.headers }).toMatchObject({ what, ...SECURITY_HEADERS });
      expect(answer.headers['content-security-policy']).toBeUndefined();
    }
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
