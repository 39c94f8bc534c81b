// The claim gate as a stranger and the owner see it: the bundle renders the site into a temp root, a real
// nginx serves it on loopback and on this machine's end of a veth pair, and a second host (a network
// namespace, test/support/engine.ts) talks to it with curl; a Node echo upstream records what reached Immich.
import { readFileSync, rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bootedRoot, startEcho, startNginx, toRootView, type Echo, type TestNginx } from '../support/door.js';
import { makeSecondHost, run, type SecondHost } from '../support/engine.js';

const SITE = '/etc/nginx/sites-available/immich';
const TOKEN_FILE = '/etc/immich-firstboot/nginx/claim-token.map';
const SIGN_UP = '/api/auth/admin-sign-up';

let root: string;
let echo: Echo;
let nginx: TestNginx;
let stranger: SecondHost;
let token: string;
let caFile: string;

beforeAll(async () => {
  echo = await startEcho();
  root = await bootedRoot(
    'ifb-claim-',
    `imds:\n  enabled: false\ndomain: immich.test\nstack:\n  serverUrl: http://127.0.0.1:${echo.port}\n`,
  );
  token = /\/claim\/([0-9a-f]{64})$/m.exec(readFileSync(`${root}/root/immich-credentials.txt`, 'utf8'))![1];
  caFile = `${root}/etc/immich-firstboot/tls/current/cert.pem`;
  stranger = await makeSecondHost();
  nginx = await startNginx(root, undefined, { alsoOn: stranger.hostAddress, accessLog: true });
}, 60_000);

afterAll(async () => {
  nginx?.stop();
  await stranger?.remove();
  await echo?.close();
  if (root) rmSync(root, { recursive: true, force: true });
});

interface Answer {
  status: number;
  headers: Record<string, string[]>;
  body: string;
}

/** curl's `-i` output: the last response's status line, headers (lower-case names, every value) and body. */
function parse(stdout: string): Answer {
  const [head, ...rest] = stdout.split('\r\n\r\n');
  const lines = head.split('\r\n');
  const headers: Record<string, string[]> = {};
  for (const line of lines.slice(1)) {
    const at = line.indexOf(':');
    (headers[line.slice(0, at).toLowerCase()] ??= []).push(line.slice(at + 1).trim());
  }
  return { status: Number(lines[0].split(' ')[1]), headers, body: rest.join('\r\n\r\n') };
}

const curlArgs = (address: string, urlPath: string, extra: string[]) => [
  '-sS',
  '-i',
  '--http1.1',
  '--path-as-is',
  '--cacert',
  caFile,
  '--resolve',
  `immich.test:${nginx.https}:${address}`,
  ...extra,
  `https://immich.test:${nginx.https}${urlPath}`,
];

async function fromStranger(urlPath: string, ...extra: string[]): Promise<Answer> {
  const result = await stranger.curl(curlArgs(stranger.hostAddress, urlPath, extra));
  if (result.code !== 0) throw new Error(`curl from the second host failed: ${result.stderr}`);
  return parse(result.stdout);
}

async function fromLoopback(urlPath: string, ...extra: string[]): Promise<Answer> {
  const result = await run('curl', curlArgs('127.0.0.1', urlPath, extra), 30_000);
  if (result.code !== 0) throw new Error(`curl from loopback failed: ${result.stderr}`);
  return parse(result.stdout);
}

/** How many requests for a path Immich (the echo) has seen. */
const reached = (pattern: RegExp) => echo.seen.filter((s) => pattern.test(s.url)).length;
const SIGN_UPS = /admin(-|%2D)sign-up/i;

const SECURITY_HEADERS = {
  'strict-transport-security': ['max-age=63072000'],
  'x-content-type-options': ['nosniff'],
  'referrer-policy': ['same-origin'],
  'x-frame-options': ['SAMEORIGIN'],
};

describe('the claim gate, from a stranger on another host', () => {
  it('serves a copy whose include of the token file points inside the root, and maps back to the site exactly', () => {
    const copy = readFileSync(nginx.siteCopy, 'utf8');
    expect(copy).toContain(`include ${root}${TOKEN_FILE};`);
    expect(copy).toContain(`listen ${stranger.hostAddress}:${nginx.https} ssl`);
    expect(toRootView(copy, root, { ...nginx, alsoOn: stranger.hostAddress })).toBe(
      readFileSync(`${root}${SITE}`, 'utf8'),
    );
  });

  it('refuses admin sign-up without the cookie with a 403 in JSON, and Immich never sees it', async () => {
    const answer = await fromStranger(SIGN_UP, '-X', 'POST', '-H', 'Content-Type: application/json', '-d', '{}');
    expect(answer.status).toBe(403);
    expect(answer.headers['content-type']).toEqual(['application/json']);
    expect(JSON.parse(answer.body)).toEqual({
      message:
        'Creating the first admin needs the claim link: open the claim link in /root/immich-credentials.txt on this VM',
      error: 'Forbidden',
      statusCode: 403,
    });
    expect(answer.headers).toMatchObject(SECURITY_HEADERS);
    expect(reached(SIGN_UPS)).toBe(0);
  });

  it('gives a browser (Accept: text/html) a short page instead', async () => {
    const answer = await fromStranger(SIGN_UP, '-X', 'POST', '-H', 'Accept: text/html,application/xhtml+xml');
    expect(answer.status).toBe(403);
    expect(answer.headers['content-type']).toEqual(['text/html']);
    expect(answer.body).toContain('open the claim link in <code>/root/immich-credentials.txt</code> on this VM');
    expect(reached(SIGN_UPS)).toBe(0);
  });

  it('refuses a wrong cookie, and every spelling Immich would route to admin sign-up, every method', async () => {
    const tries: Array<[string, string[]]> = [
      [SIGN_UP, ['-X', 'POST', '-b', `immich_claim=${'0'.repeat(64)}`]],
      [SIGN_UP, ['-X', 'POST', '-b', `immich_claim=${token.toUpperCase()}`]],
      [SIGN_UP, ['-X', 'POST', '-b', 'immich_claim=']],
      ['/api/auth/Admin-Sign-Up', ['-X', 'POST']],
      ['/api/auth/admin-sign-up/', ['-X', 'POST']],
      ['/api/auth/admin-sign-up//', ['-X', 'POST']],
      ['/api/auth/admin%2Dsign-up', ['-X', 'POST']],
      ['//api/auth/admin-sign-up', ['-X', 'POST']],
      ['/api/x/../auth/admin-sign-up', ['-X', 'POST']],
      ['/api/auth/admin-sign-up?x=1', ['-X', 'POST']],
      [SIGN_UP, ['-X', 'PUT']],
      [SIGN_UP, []],
    ];
    const statuses = [];
    for (const [urlPath, extra] of tries) statuses.push(`${urlPath} ${(await fromStranger(urlPath, ...extra)).status}`);
    expect(statuses).toEqual(tries.map(([urlPath]) => `${urlPath} 403`));
    expect(reached(SIGN_UPS)).toBe(0);
  });

  it('answers a wrong claim link with the same 403 as a refused sign-up, and sets no cookie', async () => {
    const refused = await fromStranger(SIGN_UP, '-X', 'POST');
    for (const urlPath of [
      `/claim/${'0'.repeat(64)}`,
      `/claim/${token.toUpperCase()}`,
      `/claim/${token}x`,
      '/claim/',
    ]) {
      const answer = await fromStranger(urlPath);
      expect({ urlPath, status: answer.status, body: answer.body, cookie: answer.headers['set-cookie'] }).toEqual({
        urlPath,
        status: 403,
        body: refused.body,
        cookie: undefined,
      });
    }
  });

  it('sets the claim cookie on the right link and sends the browser on to the sign-up page, security headers kept', async () => {
    const answer = await fromStranger(`/claim/${token}`);
    expect(answer.status).toBe(303);
    expect(answer.headers.location).toEqual(['/auth/register']);
    expect(answer.headers['set-cookie']).toEqual([
      `immich_claim=${token}; Path=/api/auth/admin-sign-up; Secure; HttpOnly; SameSite=Strict; Max-Age=86400`,
    ]);
    expect(answer.headers).toMatchObject(SECURITY_HEADERS);
    expect(reached(/claim/)).toBe(0);
  });

  it("keeps the claim link out of nginx's access log, over https and typed with http:// (308 to https)", async () => {
    await fromStranger(`/claim/${token}`);
    await fromStranger(`/claim/${'0'.repeat(64)}`);
    const plain = await stranger.curl([
      '-sS',
      '-i',
      '--resolve',
      `immich.test:${nginx.http}:${stranger.hostAddress}`,
      `http://immich.test:${nginx.http}/claim/${token}`,
    ]);
    const answer = parse(plain.stdout);
    expect(answer.status).toBe(308);
    expect(answer.headers.location).toEqual([`https://immich.test/claim/${token}`]);
    // A link copied with a trailing character is refused, and holds the whole token.
    expect((await fromStranger(`/claim/${token}.`)).status).toBe(403);
    // The log is written (a refused sign-up is in it), but no claim link, right or wrong, nor any 8
    // characters of the token.
    await fromStranger(SIGN_UP, '-X', 'POST');
    const log = readFileSync(nginx.accessLog, 'utf8');
    expect(log).toContain(`"POST ${SIGN_UP} HTTP/1.1" 403`);
    expect(log).not.toContain('/claim/');
    for (let i = 0; i + 8 <= token.length; i++) expect(log).not.toContain(token.slice(i, i + 8));
  });

  it('lets admin sign-up through to Immich with the cookie the link set', async () => {
    const before = reached(SIGN_UPS);
    const answer = await fromStranger(SIGN_UP, '-X', 'POST', '-b', `immich_claim=${token}`, '-d', '{}');
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toMatchObject({ method: 'POST', url: SIGN_UP });
    expect(reached(SIGN_UPS)).toBe(before + 1);
  });

  it('leaves the rest of Immich alone: the API, /.well-known/immich, the web app and a WebSocket upgrade reach it', async () => {
    for (const urlPath of ['/api/server/ping', '/api/auth/login', '/.well-known/immich', '/auth/register']) {
      const answer = await fromStranger(urlPath, ...(urlPath === '/api/auth/login' ? ['-X', 'POST', '-d', '{}'] : []));
      expect(`${urlPath} ${answer.status} ${String(answer.headers['set-cookie'])}`).toBe(`${urlPath} 200 undefined`);
      expect(reached(new RegExp(`^${urlPath.replace(/\./g, '\\.')}$`))).toBeGreaterThan(0);
    }
    const upgrade = await stranger.curl([
      ...curlArgs(stranger.hostAddress, '/api/socket.io/?EIO=4&transport=websocket', [
        '-H',
        'Connection: Upgrade',
        '-H',
        'Upgrade: websocket',
        '-H',
        'Sec-WebSocket-Version: 13',
        '-H',
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
        '--max-time',
        '2',
      ]),
    ]);
    expect(upgrade.stdout).toMatch(/^HTTP\/1\.1 101 Switching Protocols\r\n/);
    expect(echo.seen.find((s) => s.url.startsWith('/api/socket.io/'))?.headers.upgrade).toBe('websocket');
  });
});

describe('the claim gate, from this VM itself (an SSH tunnel)', () => {
  it('lets admin sign-up through to Immich without any cookie', async () => {
    const before = reached(SIGN_UPS);
    const answer = await fromLoopback(SIGN_UP, '-X', 'POST', '-d', '{}');
    expect(answer.status).toBe(200);
    expect(reached(SIGN_UPS)).toBe(before + 1);
  });
});
