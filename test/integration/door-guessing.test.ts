// Password guessing at the door, as a stranger sees it: real nginx serving the rendered site in front of
// the echo (a fake Immich), a second host (a network namespace on a veth pair of the test's own) as the
// stranger, and Debian's fail2ban reading the access log that nginx wrote.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { REPO } from '../support/cli.js';
import { bootedRoot, startEcho, startNginx, type Echo, type TestNginx } from '../support/door.js';
import { makeSecondHost, run, type Run, type SecondHost } from '../support/engine.js';

const FILTER = path.join(REPO, 'debian/fail2ban/filter.d/immich-firstboot.conf');
const JAIL = path.join(REPO, 'debian/fail2ban/jail.d/immich-firstboot.conf');

let root: string;
let echo: Echo;
let stranger: SecondHost;
let nginx: TestNginx | undefined;

beforeAll(async () => {
  echo = await startEcho();
  root = await bootedRoot(
    'ifb-guess-',
    [
      'imds:\n  enabled: false',
      'domain: immich.test',
      'extraNames: [127.0.0.1, "::1"]',
      `stack:\n  serverUrl: http://127.0.0.1:${echo.port}`,
      '',
    ].join('\n'),
  );
  stranger = await makeSecondHost();
});

afterEach(() => {
  nginx?.stop();
  nginx = undefined;
});

afterAll(async () => {
  await stranger?.remove();
  await echo?.close();
  if (root) rmSync(root, { recursive: true, force: true });
});

/** A door of its own for each test: limit_req's counts live in nginx's shared memory, not in the site. */
async function door(): Promise<TestNginx> {
  nginx = await startNginx(root, undefined, { alsoOn: stranger.hostAddress, accessLog: true });
  return nginx;
}

interface Answer {
  status: number;
  headers: Record<string, string[]>;
  body: string;
}

/**
 * One curl, many requests on one connection (so "rapid" needs no clock): each path in turn, with the same
 * options, by name immich.test against the site's own certificate. From the stranger, or from loopback.
 */
async function curl(from: 'stranger' | '127.0.0.1' | '::1', paths: string[], options: string[]): Promise<Answer[]> {
  const port = nginx!.https;
  const address = from === 'stranger' ? stranger.hostAddress : from === '::1' ? '[::1]' : '127.0.0.1';
  const args = [
    '--silent',
    '--show-error',
    '--cacert',
    `${root}/etc/immich-firstboot/tls/current/cert.pem`,
    '--resolve',
    `immich.test:${port}:${address}`,
    '--write-out',
    '\n<<%{http_code}>>%{header_json}<<end>>\n',
    ...options,
    ...paths.map((p) => `https://immich.test:${port}${p}`),
  ];
  const result: Run = from === 'stranger' ? await stranger.curl(args) : await run('curl', args);
  if (result.code !== 0) throw new Error(`curl failed (exit ${result.code}): ${result.stderr}`);
  const answers = [...result.stdout.matchAll(/([\s\S]*?)\n<<(\d{3})>>([\s\S]*?)<<end>>\n/g)].map((m) => ({
    body: m[1],
    status: Number(m[2]),
    headers: JSON.parse(m[3]) as Record<string, string[]>,
  }));
  expect(answers).toHaveLength(paths.length);
  return answers;
}

const login = (marker: string, ...more: string[]) => [
  '--request',
  'POST',
  '--data',
  '{}',
  '--user-agent',
  marker,
  ...more,
];
const reached = (marker: string) => echo.seen.filter((s) => s.headers['user-agent'] === marker);
const times = (n: number, p = '/api/auth/login') => Array.from({ length: n }, () => p);

describe('password guessing at the door, from another host', () => {
  it('lets 10 rapid logins from another host reach Immich and answers the 11th with a 429 in JSON that Immich never sees', async () => {
    await door();
    const answers = await curl('stranger', times(11), login('burst'));
    expect(answers.map((a) => a.status)).toEqual([...times(10).map(() => 200), 429]);
    expect(reached('burst')).toHaveLength(10);

    const refused = answers[10];
    expect(refused.headers['content-type']).toEqual(['application/json']);
    expect(JSON.parse(refused.body)).toEqual({
      message: expect.stringMatching(/^Too many login attempts/),
      error: 'Too Many Requests',
      statusCode: 429,
    });
    // The server's security headers on nginx's own answer too (a header set in a location would drop them).
    expect(refused.headers).toMatchObject({
      'strict-transport-security': ['max-age=63072000'],
      'x-content-type-options': ['nosniff'],
      'referrer-policy': ['same-origin'],
      'x-frame-options': ['SAMEORIGIN'],
      'permissions-policy': [expect.stringContaining('camera=()')],
    });
    // nginx says why, once, at warn (limit_req_log_level), naming the address and the zone.
    const errors = readFileSync(path.join(nginx!.prefix, 'error.log'), 'utf8');
    expect(errors).toMatch(
      new RegExp(
        `\\[warn\\].*limiting requests, excess: .* by zone "immich_login", client: ${stranger.address.replace(/\./g, '\\.')}`,
      ),
    );
  });

  it('counts every spelling of the login path Immich accepts against the same limit, and proxies each as written', async () => {
    await door();
    const spellings = [
      '/api/auth/login',
      '/API/Auth/Login',
      '/api/auth/login/',
      '/Api/auth/LOGIN//',
      '/api/auth/login?lang=en',
      '/api/auth/%6cogin', // nginx matches the decoded path
      '/api/auth//login', // and merges slashes
      '/api/auth/login/?x=1',
      '/api/Auth/login',
      '/api/auth/login',
    ];
    const answers = await curl('stranger', [...spellings, '/API/AUTH/LOGIN/'], login('spellings'));
    expect(answers.map((a) => a.status)).toEqual([...spellings.map(() => 200), 429]);
    expect(reached('spellings').map((s) => s.url)).toEqual(spellings);
  });

  it('never limits a GET of the login path, another API path, or logins from loopback (an SSH tunnel)', async () => {
    await door();
    const spent = await curl('stranger', times(11), login('spent'));
    expect(spent.at(-1)!.status).toBe(429);

    const others = ['/api/auth/logout', '/api/auth/loginx', '/api/auth/login/x', '/api/assets', '/api/search/metadata'];
    const posts = await curl(
      'stranger',
      others.flatMap((p) => times(12, p)),
      login('other-paths'),
    );
    expect(new Set(posts.map((a) => a.status))).toEqual(new Set([200]));
    expect(reached('other-paths')).toHaveLength(others.length * 12);
    const gets = await curl('stranger', times(12), ['--user-agent', 'gets']);
    expect(new Set(gets.map((a) => a.status))).toEqual(new Set([200]));
    expect(reached('gets')).toHaveLength(12);

    // The stranger's limit is its own: the owner's tunnel arrives from loopback, and is never counted.
    for (const from of ['127.0.0.1', '::1'] as const) {
      const own = await curl(from, times(20), login(`owner ${from}`));
      expect(new Set(own.map((a) => a.status))).toEqual(new Set([200]));
      expect(reached(`owner ${from}`)).toHaveLength(20);
    }
    expect((await curl('stranger', times(1), login('still-spent')))[0].status).toBe(429);
  });
});

describe("fail2ban's immich-firstboot filter and jail (Debian's fail2ban)", () => {
  it('match in the access log nginx wrote exactly the failed logins: no login that succeeded, no 401 elsewhere, no 429', async () => {
    const { accessLog } = await door();
    const refuse = ['--header', 'x-echo-status: 401'];
    await curl('stranger', times(3), login('failed', ...refuse)); // HTTP/2
    await curl('stranger', ['/API/Auth/Login/?lang=en', '/api/auth/login//'], login('failed', ...refuse));
    await curl('stranger', times(1), login('failed', '--http1.1', ...refuse));
    await curl(
      'stranger',
      times(1),
      login('failed', '--http1.1', '--request-target', 'https://immich.test/api/auth/login', ...refuse),
    );
    await curl('stranger', times(1), login('logged-in', '--header', 'x-echo-status: 201'));
    await curl('stranger', times(1), login('logged-in'));
    // Other 401s: an expired session, a GET of the login path, a path that only starts like it.
    await curl('stranger', ['/api/users/me', '/api/auth/login'], ['--user-agent', 'other-401', ...refuse]);
    await curl('stranger', ['/api/auth/logout', '/api/auth/loginx'], login('other-401', ...refuse));
    // A client that writes a failed login of someone else into its own line.
    const forged = `198.51.100.7 - - [01/Jan/2025:00:00:00 +0000] "POST /api/auth/login HTTP/1.1" 401 0 "-" "-"`;
    await curl('stranger', ['/api/server/ping'], ['--user-agent', forged, '--referer', forged]);
    // 9 logins so far: the 10th reaches Immich, then nginx refuses (429) before Immich sees one.
    expect((await curl('stranger', times(1), login('failed', ...refuse)))[0].status).toBe(401);
    const limited = await curl('stranger', times(2), login('limited', ...refuse));
    expect(limited.map((a) => a.status)).toEqual([429, 429]);

    const lines = readFileSync(accessLog, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(17);
    const failed = lines.filter((l) => l.endsWith('"failed"'));
    expect(failed).toHaveLength(8);
    expect(failed.every((l) => / 401 \d+ "-" "failed"$/.test(l))).toBe(true);

    const regex = await run('fail2ban-regex', ['--print-all-matched', accessLog, FILTER]);
    expect(regex.code).toBe(0);
    expect(regex.stdout).toMatch(/^Lines: 17 lines, 0 ignored, 8 matched, 9 missed$/m);
    const matched = /\|- Matched line\(s\):\n([\s\S]*?)\n`-/.exec(regex.stdout)?.[1] ?? '';
    expect(matched.split('\n').map((l) => l.replace(/^\|\s+/, ''))).toEqual(failed);
    // Every match is the stranger's own address, whatever it wrote.
    expect(failed.every((l) => l.startsWith(`${stranger.address} - - [`))).toBe(true);
  });

  it('loads as an enabled jail reading the access log even where the default backend is the journal', async () => {
    // A scratch copy of Debian's /etc/fail2ban with our two files, and the [DEFAULT] of Ubuntu 24.04's
    // and Debian 13's jail.d/defaults-debian.conf: backend = systemd, under which a jail without a
    // backend of its own would ignore logpath and never see a failed login.
    const etc = mkdtempSync(path.join(os.tmpdir(), 'ifb-fail2ban-'));
    try {
      cpSync('/etc/fail2ban', etc, { recursive: true });
      cpSync(FILTER, path.join(etc, 'filter.d/immich-firstboot.conf'));
      cpSync(JAIL, path.join(etc, 'jail.d/immich-firstboot.conf'));
      // sshd off: on a machine without rsyslog its /var/log/auth.log is missing, which fails the whole test.
      writeFileSync(
        path.join(etc, 'jail.d/defaults-debian.conf'),
        '[DEFAULT]\nbackend = systemd\n\n[sshd]\nenabled = false\n',
      );
      // The control: the same jail without a backend of its own reads the journal there.
      const [, ...ours] = readFileSync(JAIL, 'utf8').split(/^\[immich-firstboot\]$/m);
      const control = `[control]\n${ours.join('').replace(/^backend = .*$/m, '')}`;
      writeFileSync(path.join(etc, 'jail.d/control.conf'), control);

      const check = await run('fail2ban-client', ['--conf', etc, '--test']);
      expect(`${check.stdout}${check.stderr}`).toContain('OK: configuration test is successful');
      expect(check.code).toBe(0);

      const dump = await run('fail2ban-client', ['--conf', etc, '--dump']);
      expect(dump.code).toBe(0);
      expect(dump.stdout).toContain("['add', 'control', 'systemd']");
      const jail = dump.stdout.split('\n').filter((l) => l.includes("'immich-firstboot'"));
      expect(jail).toContain("['add', 'immich-firstboot', 'auto']");
      expect(jail).toContain("['set', 'immich-firstboot', 'addlogpath', '/var/log/nginx/access.log', 'head']");
      for (const [key, value] of [
        ['maxretry', '10'],
        ['findtime', "'10m'"],
        ['bantime', "'1h'"],
      ])
        expect(jail).toContain(`['set', 'immich-firstboot', '${key}', ${value}]`);
      expect(jail.some((l) => l.includes("'addfailregex'") && l.includes('api/auth/login'))).toBe(true);
      // The ban closes the web ports (Debian 12's default banaction, iptables-multiport).
      expect(dump.stdout).toContain('--dports http,https -j f2b-immich-firstboot');
    } finally {
      rmSync(etc, { recursive: true, force: true });
    }
  });
});
