// The bad-input matrix: each case hands the built bundle one broken thing and checks the exit code,
// that the message names the file, key or line and the fix, and that nothing was lost or half-written.
import { execFile, execFileSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BUNDLE, FIXTURE_BIN, killStandins, pathWith, REPO, runCli, type CliResult } from '../support/cli.js';
import { INSTANCE_DOC, LB_DOC, LB_NOT_READY, startImdsStub, type Route } from '../support/imds-stub.js';
import { freePort } from '../support/net.js';
import { makeRoot, modeOf, readFile, snapshotTree, writeFile } from '../support/root.js';

const standin = mkdtempSync(path.join(os.tmpdir(), 'ifb-bad-'));
const mounts: string[] = [];
afterAll(() => {
  killStandins(standin);
  for (const m of mounts.reverse()) {
    execFileSync('umount', ['-l', m]);
    rmSync(m, { recursive: true, force: true });
  }
});

const GOOD_PASSWORD = 'GoodPassword0123456789abcdefABCD';
const errorLine = (run: CliResult) => run.lines.find((l) => l.level === 50 && typeof l.code === 'string');
const noTemps = (root: string) => Object.keys(snapshotTree(root)).filter((k) => k.endsWith('.tmp'));

/** A tmpfs of `size` mounted at a fresh root (ENOSPC and EROFS cases): real kernel errors. */
function tmpfsRoot(size: string): string {
  const root = mkdtempSync(path.join(os.tmpdir(), 'ifb-tmpfs-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'ifb-test', root]);
  mounts.push(root);
  writeFile(root, '/etc/immich-firstboot/config.yaml', 'imds:\n  enabled: false\n');
  return root;
}

describe('config.yaml and the command line', () => {
  const rejects = (name: string, config: string, message: RegExp) =>
    it(`rejects ${name} with exit 3, naming it, and writes nothing`, async () => {
      const root = makeRoot(config);
      const before = snapshotTree(root);
      const run = await runCli(['--root', root, '--skip-stack']);
      expect(run.code).toBe(3);
      expect(run.stderr).toMatch(message);
      expect(run.stderr).toMatch(/\nhint: fix .*config\.yaml .*nothing was written\n$/);
      expect(snapshotTree(root)).toEqual(before);
    });
  rejects('text that is not YAML', 'imds: [enabled: false\n', /config\.yaml line \d+: not valid YAML/);
  rejects(
    'an unknown key',
    'imds:\n  enabled: false\nadmin_password: x\n',
    /config\.yaml line 3: unknown key "admin_password"/,
  );
  rejects(
    'a wrong type',
    'imds:\n  enabled: "no"\n',
    /config\.yaml line 2: imds\.enabled must be true or false, not "no"/,
  );
  rejects('a domain with spaces', 'domain: "photos example.com"\n', /line 1: domain must be a DNS name/);
  rejects('a domain with quotes', `domain: 'x.com" ssl off;'\n`, /line 1: domain must be a DNS name/);
  rejects('a domain with a template', 'domain: "{{dbPassword}}.example.com"\n', /line 1: domain must be a DNS name/);
  rejects('a domain with a newline', 'domain: "a.example.com\\nserver { }"\n', /line 1: domain must be a DNS name/);
  rejects('a list instead of a mapping', '- domain: x.com\n', /must be a mapping of keys/);
  rejects(
    'a certificate valid longer than Apple accepts',
    'tls:\n  days: 825\n',
    /line 2: tls\.days must be a whole number from 1 to 397, not 825/,
  );
  rejects(
    'a server URL off loopback',
    'stack:\n  serverUrl: http://0.0.0.0:2283\n',
    /stack\.serverUrl must be a loopback http:\/\/ URL/,
  );

  // Each of these passed validation before and failed a step later (code internal, files written).
  rejects(
    'an IPv6 zone id in extraNames (net.isIP takes it; a URL and a certificate cannot)',
    'imds:\n  enabled: false\nextraNames: [immich.lan, "fe80::1%eth0"]\n',
    /config\.yaml line 3: extraNames must be a list of DNS names or IP addresses \(item 2, "fe80::1%eth0", has an IPv6 zone id, %eth0,/,
  );
  rejects(
    'a name in extraNames that a URL reads as an IPv4 address it is not',
    'imds:\n  enabled: false\nextraNames: [256.1.1.1]\n',
    /line 3: extraNames .*\(item 1, "256\.1\.1\.1", ends in a number, so a URL reads it as an IPv4 address/,
  );
  rejects(
    'a domain whose last label is a number',
    'imds:\n  enabled: false\ndomain: photos.123\n',
    /line 3: domain must be a DNS name .*\(this one ends in a number/,
  );
  rejects(
    'a server URL with a port beyond 65535',
    'imds:\n  enabled: false\nstack:\n  serverUrl: http://127.0.0.1:99999\n',
    /line 4: stack\.serverUrl must be a loopback http:\/\/ URL .*\(port 99999 is not from 1 to 65535\)/,
  );
  rejects(
    'a server URL whose address is not an IPv4 address',
    'imds:\n  enabled: false\nstack:\n  serverUrl: http://127.999.0.1:2283\n',
    /line 4: stack\.serverUrl must be .*127\.999\.0\.1 is not an address of 127\.0\.0\.0\/8/,
  );

  it('rejects a --config file that does not exist with exit 3', async () => {
    const run = await runCli(['--root', makeRoot(), '--config', '/nonexistent/config.yaml']);
    expect(run.code).toBe(3);
    expect(run.stderr).toMatch(/cannot read --config \/nonexistent\/config\.yaml: ENOENT/);
  });

  it('rejects a bad IMMICH_FIRSTBOOT_IMDS_URL with exit 3', async () => {
    const run = await runCli(['--root', makeRoot(), '--skip-stack'], {
      IMMICH_FIRSTBOOT_IMDS_URL: 'http://x/$(reboot)',
    });
    expect(run.code).toBe(3);
    expect(run.stderr).toMatch(/IMMICH_FIRSTBOOT_IMDS_URL must be an http:\/\/ base URL/);
  });
});

describe('an address no certificate or URL can hold, from IMDS (a stub on 127.0.0.1)', () => {
  const ZONED = 'fe80::4%eth0'; // net.isIP says 6; `new URL` and openssl refuse it
  const imdsSaying = (privateIp: string) =>
    startImdsStub({ '/metadata/instance': { status: 200, body: INSTANCE_DOC('203.0.113.50', privateIp) } });
  const dropped = (run: CliResult) =>
    run.lines.find((l) => l.level === 40 && l.msg.includes(`ignoring the address ${ZONED} from Azure IMDS`));

  it('is left out with a warning at first boot, which finishes with the other addresses', async () => {
    const stub = await imdsSaying(ZONED);
    try {
      const root = makeRoot('imds:\n  retrySeconds: 0\n');
      const run = await runCli(['--root', root, '--skip-stack'], { IMMICH_FIRSTBOOT_IMDS_URL: stub.url });
      expect(run.code, run.stdout).toBe(0);
      expect(dropped(run)?.msg).toContain('has an IPv6 zone id');
      const credentials = readFile(root, '/root/immich-credentials.txt');
      expect(credentials).toContain('https://203.0.113.50/');
      expect(credentials).not.toContain('fe80');
    } finally {
      await stub.close();
    }
  });

  it('is left out with a warning by per-boot at a later boot, which exits 0', async () => {
    let stub = await imdsSaying('10.1.0.4');
    try {
      const root = makeRoot('imds:\n  retrySeconds: 0\n');
      expect((await runCli(['--root', root, '--skip-stack'], { IMMICH_FIRSTBOOT_IMDS_URL: stub.url })).code).toBe(0);
      await stub.close();
      stub = await imdsSaying(ZONED);
      const run = await runCli(['--root', root, 'per-boot'], { IMMICH_FIRSTBOOT_IMDS_URL: stub.url });
      expect(run.code, run.stdout).toBe(0);
      expect(dropped(run)).toBeDefined();
      expect(errorLine(run)).toBeUndefined();
      expect(readFile(root, '/root/immich-credentials.txt')).not.toContain('fe80');
    } finally {
      await stub.close();
    }
  });
});

describe('control characters from other programs, printed for a person', () => {
  // The process name: retitle the terminal (OSC 0 ... BEL), clear the screen (ESC [2J); then a C1
  // CSI (U+009B, two bytes in UTF-8) and J: 15 bytes, a process name's limit. It reaches us through the
  // stand-in test/fixtures/host-bin/ss (the real ss plus the line in $STANDIN_SS_EXTRA), not a real
  // process: no test may listen on a non-loopback address.
  const NAME = '\u001b]0;PWN\u0007\u001b[2J\u009b2J';
  const SHOWN = '\\u001b]0;PWN\\u0007\\u001b[2J\\u009b2J';
  // Any control character but tab and newline, as a terminal would obey it.
  // eslint-disable-next-line no-control-regex -- finding control characters is the point
  const RAW = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;
  const HOST_BIN = path.join(REPO, 'test/fixtures/host-bin');

  /** The bundle on a pseudo-terminal (util-linux `script`), so the log is the readable format. */
  const onTerminal = (args: string[], env: Record<string, string>) =>
    new Promise<{ code: number; out: string }>((resolve) => {
      execFile(
        'script',
        ['-qec', [process.execPath, BUNDLE, ...args].join(' '), '/dev/null'],
        { env: { LANG: 'C.UTF-8', ...env }, timeout: 120_000, maxBuffer: 16 * 1024 * 1024 },
        (error, stdout) => resolve({ code: typeof error?.code === 'number' ? error.code : 0, out: stdout }),
      );
    });

  it('a process so named listening beyond loopback fails first boot with port-exposed; the log, STATUS=, status, motd and doctor show it escaped', async () => {
    const port = await freePort();
    const root = makeRoot(`imds:\n  enabled: false\nstack:\n  serverUrl: http://127.0.0.1:${port}\n`);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ifb-escapes-'));
    const notifyLog = path.join(dir, 'notify.log');
    writeFileSync(path.join(dir, 'systemd-notify'), `#!/bin/sh\nprintf '%s\\n' "$*" >> ${notifyLog}\n`);
    chmodSync(path.join(dir, 'systemd-notify'), 0o755);
    const env = {
      PATH: pathWith(dir, HOST_BIN, FIXTURE_BIN),
      STANDIN_DIR: dir,
      STANDIN_PING_PORT: String(port),
      STANDIN_SS_EXTRA: `LISTEN 0 4096 0.0.0.0:${port} 0.0.0.0:* users:(("${NAME}",pid=4242,fd=3))`,
      NOTIFY_SOCKET: '/run/systemd/notify',
    };
    try {
      // JSON lines (stdout is a pipe): the name escaped, and decoded exactly by a JSON reader.
      const run = await runCli(['--root', root], env);
      expect(run.code).toBe(1);
      expect(errorLine(run)).toMatchObject({ code: 'port-exposed', msg: expect.stringContaining(NAME) });
      expect(run.stdout).not.toMatch(RAW);
      // STATUS= (systemctl status shows it to every user).
      const notified = readFileSync(notifyLog, 'utf8');
      expect(notified).toMatch(/^STATUS=Failed at stack-start: /m);
      expect(notified).toContain(SHOWN);
      expect(notified).not.toMatch(RAW);
      // The readable log on a terminal: the rerun resumes at stack-start and fails the same way.
      const tty = await onTerminal(['--root', root], env);
      const out = tty.out.replace(/\r\n/g, '\n'); // the terminal's own line ends
      expect(tty.code).toBe(1);
      expect(out).toMatch(/ERROR \[stack-start\] failed: Immich must listen on 127\.0\.0\.1 only/);
      expect(out).toContain(SHOWN);
      expect(out).not.toMatch(RAW);
      // What an operator asks afterwards.
      for (const args of [
        ['status'],
        ['motd'],
        ['doctor', '--live'],
        ['status', '--json'],
        ['doctor', '--live', '--json'],
      ]) {
        const shown = await runCli(['--root', root, ...args], env);
        expect(shown.stdout, args.join(' ')).toContain(SHOWN);
        expect(shown.stdout, args.join(' ')).not.toMatch(RAW);
      }
      // JSON still means the exact name to a JSON reader.
      const status = JSON.parse((await runCli(['--root', root, 'status', '--json'])).stdout) as {
        errors: Array<{ message: string }>;
      };
      expect(status.errors.at(-1)?.message).toContain(NAME);
      const doctor = JSON.parse((await runCli(['--root', root, 'doctor', '--live', '--json'], env)).stdout) as Array<{
        id: string;
        detail: string;
      }>;
      expect(doctor.find((c) => c.id === 'loopback-2283')?.detail).toContain(NAME);
    } finally {
      killStandins(dir);
    }
  }, 120_000);
});

describe('an existing /opt/immich/.env', () => {
  const envCase = (
    name: string,
    text: string,
    mode: number,
    expectCode: number,
    check: (root: string, run: CliResult) => void,
    pgData = false,
  ) =>
    it(name, async () => {
      const root = makeRoot();
      writeFile(root, '/opt/immich/.env', text, mode);
      if (pgData) writeFile(root, '/opt/immich/postgres/PG_VERSION', '14\n');
      const run = await runCli(['--root', root, '--skip-stack']);
      expect(run.code).toBe(expectCode);
      check(root, run);
      expect(noTemps(root)).toEqual([]);
    });

  envCase(
    'that is malformed is left untouched, and the line is named',
    `DB_PASSWORD=${GOOD_PASSWORD}\nthis is not an assignment\n`,
    0o640,
    1,
    (root, run) => {
      expect(readFile(root, '/opt/immich/.env')).toBe(`DB_PASSWORD=${GOOD_PASSWORD}\nthis is not an assignment\n`);
      expect(errorLine(run)).toMatchObject({
        code: 'env-malformed',
        msg: expect.stringContaining('/opt/immich/.env line 2 is not KEY=VALUE'),
        hint: expect.stringContaining('fix or remove that line'),
      });
    },
  );
  envCase(
    'with CRLF line ends keeps its secret and its line ends',
    `DB_PASSWORD=${GOOD_PASSWORD}\r\n`,
    0o640,
    0,
    (root) => {
      const text = readFile(root, '/opt/immich/.env');
      expect(text.startsWith(`DB_PASSWORD=${GOOD_PASSWORD}\r\n`)).toBe(true);
      expect(text.replace(/\r\n/g, '')).not.toContain('\n');
    },
  );
  envCase(
    'without DB_PASSWORD, before Postgres ever ran, gets a new one appended',
    'TZ=Europe/Paris\n',
    0o640,
    0,
    (root) => {
      expect(readFile(root, '/opt/immich/.env')).toMatch(
        /^TZ=Europe\/Paris\n# Added by immich-firstboot\n(.|\n)*DB_PASSWORD=[A-Za-z0-9]{32}\n/,
      );
    },
  );
  envCase(
    'without DB_PASSWORD, after Postgres ran, is refused: a new secret would lock Immich out',
    'TZ=Europe/Paris\n',
    0o640,
    1,
    (root, run) => {
      expect(readFile(root, '/opt/immich/.env')).toBe('TZ=Europe/Paris\n');
      expect(errorLine(run)).toMatchObject({
        code: 'env-secret-lost',
        hint: expect.stringContaining('DB_PASSWORD=<the password Postgres was initialised with>'),
      });
    },
    true,
  );
  envCase(
    "whose password breaks Immich's charset is refused, untouched",
    'DB_PASSWORD=p@ss word!\n',
    0o640,
    1,
    (root, run) => {
      expect(readFile(root, '/opt/immich/.env')).toBe('DB_PASSWORD=p@ss word!\n');
      expect(errorLine(run)).toMatchObject({ code: 'env-bad-password', hint: expect.stringContaining('ALTER USER') });
    },
  );
  envCase(
    'that is world-readable is narrowed to 0640, content kept',
    `DB_PASSWORD=${GOOD_PASSWORD}\nUPLOAD_LOCATION=/opt/immich/library\nDB_DATA_LOCATION=/opt/immich/postgres\nTZ=UTC\nIMMICH_VERSION=v3.2.4\nDB_USERNAME=postgres\nDB_DATABASE_NAME=immich\n`,
    0o644,
    0,
    (root) => {
      expect(modeOf(root, '/opt/immich/.env')).toBe('0640');
      expect(readFile(root, '/opt/immich/.env')).toContain(`DB_PASSWORD=${GOOD_PASSWORD}\n`);
    },
  );
});

describe('an existing /etc/docker/daemon.json', () => {
  const daemonCase = (name: string, text: string, code: number, expected: (json: string, run: CliResult) => void) =>
    it(name, async () => {
      const root = makeRoot();
      writeFile(root, '/etc/docker/daemon.json', text);
      const run = await runCli(['--root', root, '--skip-stack']);
      expect(run.code).toBe(code);
      expected(readFile(root, '/etc/docker/daemon.json'), run);
      if (code !== 0) expect(existsSync(`${root}/var/lib/immich-firstboot/done`)).toBe(false);
    });
  daemonCase(
    'that is not JSON is left untouched and the run fails clearly',
    '{"data-root": "/mnt/docker",}',
    1,
    (json, run) => {
      expect(json).toBe('{"data-root": "/mnt/docker",}');
      expect(errorLine(run)).toMatchObject({
        code: 'daemon-json-invalid',
        hint: expect.stringContaining('python3 -m json.tool'),
      });
    },
  );
  daemonCase('that is empty is treated as {}', '', 0, (json) =>
    expect(JSON.parse(json)['log-driver']).toBe('json-file'),
  );
  daemonCase('that is not an object is left untouched', '"json-file"', 1, (json, run) => {
    expect(json).toBe('"json-file"');
    expect(errorLine(run)?.msg).toContain('must hold a JSON object');
  });
  daemonCase(
    "with a conflicting log-driver keeps the operator's choice and warns",
    '{"log-driver": "local"}',
    0,
    (json, run) => {
      expect(json).toBe('{"log-driver": "local"}');
      expect(run.lines.find((l) => l.level === 40)?.msg).toContain('sets log-driver "local"; kept it');
    },
  );
});

describe('under --root, nothing outside the root is read, chmod-ed or quoted', () => {
  const COMPLETE_ENV = `DB_PASSWORD=${GOOD_PASSWORD}\nUPLOAD_LOCATION=/opt/immich/library\nDB_DATA_LOCATION=/opt/immich/postgres\nTZ=UTC\nIMMICH_VERSION=v3.2.4\nDB_USERNAME=postgres\nDB_DATABASE_NAME=immich\n`;
  /** A file on the host, outside the root. */
  const hostFile = (text: string, mode: number): string => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ifb-host-'));
    writeFileSync(`${dir}/file`, text, { mode });
    chmodSync(`${dir}/file`, mode);
    return `${dir}/file`;
  };
  const linkAt = (root: string, inside: string, target: string): void => {
    mkdirSync(path.dirname(`${root}${inside}`), { recursive: true });
    symlinkSync(target, `${root}${inside}`);
  };
  const everything = (root: string): string => Object.values(snapshotTree(root)).join('\n');

  it('refuses a .env that links to a complete host file, leaving its mode as it was', async () => {
    const root = makeRoot();
    const host = hostFile(COMPLETE_ENV, 0o600);
    linkAt(root, '/opt/immich/.env', host);
    const run = await runCli(['--root', root, '--skip-stack']);
    expect(run.code).toBe(1);
    expect(errorLine(run)).toMatchObject({
      code: 'path-escapes-root',
      msg: expect.stringContaining('/opt/immich/.env'),
    });
    expect((lstatSync(host).mode & 0o7777).toString(8)).toBe('600');
    expect(readFileSync(host, 'utf8')).toBe(COMPLETE_ENV);
  });

  it('refuses a .env that links to an incomplete host file, copying none of it into the tree', async () => {
    const root = makeRoot();
    const host = hostFile('TZ=HostOnlyMarker/Zone\n', 0o600);
    linkAt(root, '/opt/immich/.env', host);
    const run = await runCli(['--root', root, '--skip-stack']);
    expect(run.code).toBe(1);
    expect(errorLine(run)).toMatchObject({ code: 'path-escapes-root' });
    expect(everything(root)).not.toContain('HostOnlyMarker');
    expect(readFileSync(host, 'utf8')).toBe('TZ=HostOnlyMarker/Zone\n');
  });

  it('refuses a .env that links to /etc/shadow without quoting a byte of it', async () => {
    const root = makeRoot();
    linkAt(root, '/opt/immich/.env', '/etc/shadow');
    const run = await runCli(['--root', root, '--skip-stack']);
    expect(run.code).toBe(1);
    expect(errorLine(run)).toMatchObject({ code: 'path-escapes-root' });
    expect(`${run.stdout}${run.stderr}`).not.toMatch(/root:[^\s]*:/);
    expect(everything(root)).not.toMatch(/root:[^\s]*:/);
  });

  it('refuses a daemon.json that links to /etc/shadow without quoting a byte of it', async () => {
    const root = makeRoot();
    linkAt(root, '/etc/docker/daemon.json', '/etc/shadow');
    const run = await runCli(['--root', root, '--skip-stack']);
    expect(run.code).toBe(1);
    expect(errorLine(run)).toMatchObject({
      code: 'path-escapes-root',
      msg: expect.stringContaining('/etc/docker/daemon.json'),
    });
    expect(`${run.stdout}${run.stderr}`).not.toMatch(/root:[^\s]*:/);
    expect(everything(root)).not.toMatch(/root:[^\s]*:/);
  });

  it('fails fast on a FIFO at .env, naming it, and releases the lock', async () => {
    const root = makeRoot();
    mkdirSync(`${root}/opt/immich`, { recursive: true });
    execFileSync('mkfifo', ['-m', '0640', `${root}/opt/immich/.env`]);
    const started = Date.now();
    const run = await runCli(['--root', root, '--skip-stack']);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(run.code).toBe(1);
    expect(errorLine(run)).toMatchObject({
      code: 'not-a-regular-file',
      msg: expect.stringContaining('/opt/immich/.env is a FIFO'),
    });
    expect(existsSync(`${root}/var/lib/immich-firstboot/lock`)).toBe(false);
  }, 30_000);

  it('refuses a directory at daemon.json, naming it', async () => {
    const root = makeRoot();
    mkdirSync(`${root}/etc/docker/daemon.json`, { recursive: true });
    const run = await runCli(['--root', root, '--skip-stack']);
    expect(run.code).toBe(1);
    expect(errorLine(run)).toMatchObject({
      code: 'not-a-regular-file',
      msg: expect.stringContaining('/etc/docker/daemon.json is a directory'),
    });
  });
});

describe('the sweep of temp files an interrupted run left', () => {
  it("removes our own, and keeps a directory or a file that only looks like one (root's .ssh)", async () => {
    const root = makeRoot();
    writeFile(root, '/root/.ssh.0badc0de.tmp/id_rsa', 'PRIVATE KEY', 0o600);
    writeFile(root, '/opt/immich/.notes.0123abcd.tmp', 'an operator file', 0o600);
    writeFile(root, '/etc/docker/.immich-firstboot-daemon.json.0123abcd.tmp', '{"half', 0o644);
    const run = await runCli(['--root', root, '--skip-stack']);
    expect(run.code).toBe(0);
    expect(readFile(root, '/root/.ssh.0badc0de.tmp/id_rsa')).toBe('PRIVATE KEY');
    expect(readFile(root, '/opt/immich/.notes.0123abcd.tmp')).toBe('an operator file');
    expect(existsSync(`${root}/etc/docker/.immich-firstboot-daemon.json.0123abcd.tmp`)).toBe(false);
  });
});

describe('Azure IMDS misbehaving (a stub on 127.0.0.1)', () => {
  const imdsCase = (name: string, routes: Record<string, Route | Route[]>, expectPublic: string | null, timeout = 1) =>
    it(
      name,
      async () => {
        const stub = await startImdsStub(routes);
        try {
          const root = makeRoot(`imds:\n  timeoutSeconds: ${timeout}\n  retrySeconds: 3\n`);
          const run = await runCli(['--root', root, '--skip-stack'], { IMMICH_FIRSTBOOT_IMDS_URL: stub.url });
          expect(run.code).toBe(0);
          const credentials = readFile(root, '/root/immich-credentials.txt');
          if (expectPublic) expect(credentials).toContain(`https://${expectPublic}/`);
          else
            expect(run.lines.some((l) => l.msg.includes('IMDS not available; using local interfaces only'))).toBe(true);
        } finally {
          await stub.close();
        }
      },
      30_000,
    );
  imdsCase('that never answers (timeout) falls back to local interfaces', { '/metadata/instance': 'hang' }, null, 0.5);
  imdsCase('that resets the connection falls back to local interfaces', { '/metadata/instance': 'reset' }, null);
  imdsCase(
    'that answers 429 first is retried',
    {
      '/metadata/instance': [
        { status: 429, body: '' },
        { status: 200, body: INSTANCE_DOC('203.0.113.50') },
      ],
    },
    '203.0.113.50',
  );
  imdsCase(
    'that answers 410 until the budget runs out falls back',
    { '/metadata/instance': { status: 410, body: '' } },
    null,
  );
  imdsCase(
    'that answers HTML falls back',
    { '/metadata/instance': { status: 200, body: '<html>proxy login</html>' } },
    null,
  );
  imdsCase(
    'with an empty public IP asks the load balancer',
    {
      '/metadata/instance': { status: 200, body: INSTANCE_DOC('') },
      '/metadata/loadbalancer': { status: 200, body: LB_DOC('198.51.100.77') },
    },
    '198.51.100.77',
  );
  imdsCase(
    'whose load balancer answers 404 "not available right now" first is asked again (a Standard-SKU public IP)',
    {
      '/metadata/instance': { status: 200, body: INSTANCE_DOC('') },
      '/metadata/loadbalancer': [LB_NOT_READY, { status: 200, body: LB_DOC('198.51.100.78') }],
    },
    '198.51.100.78',
  );

  it('that refuses connections falls back to local interfaces', async () => {
    const root = makeRoot('imds:\n  url: http://127.0.0.1:9\n');
    const run = await runCli(['--root', root, '--skip-stack']);
    expect(run.code).toBe(0);
    expect(run.lines.find((l) => l.msg.includes('IMDS not available'))).toMatchObject({
      reason: expect.stringContaining('ECONNREFUSED'),
    });
  });
});

describe('missing or failing programs', () => {
  it('fails with a hint when there is no docker at all', async () => {
    const run = await runCli(['--root', makeRoot()], { PATH: dirWith('openssl') });
    expect(run.code).toBe(1);
    expect(errorLine(run)).toMatchObject({
      step: 'stack-start',
      code: 'compose-missing',
      hint: expect.stringContaining('Debian 13: apt install docker-cli docker-compose'),
    });
  });

  it('fails after bounded retries when compose exits non-zero, keeping .env', async () => {
    const root = makeRoot();
    writeFileSync(path.join(standin, 'up-failures'), '99');
    const run = await runCli(['--root', root], { PATH: pathWith(FIXTURE_BIN), STANDIN_DIR: standin });
    writeFileSync(path.join(standin, 'up-failures'), '0');
    expect(run.code).toBe(1);
    expect(errorLine(run)).toMatchObject({
      step: 'stack-start',
      code: 'compose-up-failed',
      msg: expect.stringContaining('failed 3 times: Error response from daemon: stand-in failure (simulated)'),
    });
    expect(readFile(root, '/opt/immich/.env')).toMatch(/DB_PASSWORD=[A-Za-z0-9]{32}/);
  }, 60_000);

  it('fails with a hint when openssl is missing, and resumes once it is back', async () => {
    const root = makeRoot();
    const run = await runCli(['--root', root, '--skip-stack'], { PATH: dirWith() });
    expect(run.code).toBe(1);
    expect(errorLine(run)).toMatchObject({
      step: 'tls-cert',
      code: 'openssl-missing',
      hint: expect.stringContaining('apt install openssl'),
    });
    const secret = readFile(root, '/opt/immich/.env');
    expect((await runCli(['--root', root, '--skip-stack'])).code).toBe(0);
    expect(readFile(root, '/opt/immich/.env')).toBe(secret);
  });
});

describe('the filesystem refusing', () => {
  it('fails with ENOSPC and a hint when the disk is full, leaves no half-written file, and resumes after space is freed', async () => {
    // A whole first boot needs about 80k at its peak here (the nginx -t copy beside the site).
    const root = tmpfsRoot('128k');
    writeFileSync(`${root}/filler`, Buffer.alloc(112 * 1024));
    const run = await runCli(['--root', root, '--skip-stack']);
    expect(run.code).toBe(1);
    expect(errorLine(run)).toMatchObject({
      code: 'io-enospc',
      msg: expect.stringMatching(/could not write \S+: ENOSPC/),
      hint: expect.stringContaining('free disk space'),
    });
    expect(noTemps(root)).toEqual([]);
    execFileSync('rm', [`${root}/filler`]);
    const again = await runCli(['--root', root, '--skip-stack']);
    expect(again.code).toBe(0);
    expect(readFile(root, '/opt/immich/.env')).toMatch(/DB_PASSWORD=[A-Za-z0-9]{32}\n/);
  });

  it('fails with EROFS and a hint when the root is read-only, changing nothing', async () => {
    const root = tmpfsRoot('1m');
    execFileSync('mount', ['-o', 'remount,ro', root]);
    const run = await runCli(['--root', root, '--skip-stack']);
    expect(run.code).toBe(1);
    expect(`${run.stdout}${run.stderr}`).toMatch(/EROFS/);
    expect(`${run.stdout}${run.stderr}`).toMatch(/read-only: remount it read-write/);
    expect(existsSync(`${root}/opt`)).toBe(false);
  });

  it('refuses an /opt/immich that is a symlink out of the root, writing nothing there', async () => {
    const root = makeRoot();
    const elsewhere = mkdtempSync(path.join(os.tmpdir(), 'ifb-elsewhere-'));
    mkdirSync(`${root}/opt`);
    symlinkSync(elsewhere, `${root}/opt/immich`);
    const run = await runCli(['--root', root, '--skip-stack']);
    expect(run.code).toBe(1);
    expect(errorLine(run)).toMatchObject({
      code: 'path-escapes-root',
      hint: expect.stringContaining('replace the symlink'),
    });
    expect(execFileSync('ls', ['-A', elsewhere], { encoding: 'utf8' })).toBe('');
  });

  it('refuses an absolute /opt/immich symlink under --root (it would resolve on the host), writing nothing', async () => {
    const root = makeRoot();
    mkdirSync(`${root}/datadisk/immich`, { recursive: true });
    mkdirSync(`${root}/opt`);
    symlinkSync('/datadisk/immich', `${root}/opt/immich`);
    const run = await runCli(['--root', root, '--skip-stack']);
    expect(run.code).toBe(1);
    expect(errorLine(run)).toMatchObject({
      code: 'path-escapes-root',
      msg: expect.stringContaining('/opt/immich leads outside the root'),
    });
    expect(execFileSync('ls', ['-A', `${root}/datadisk/immich`], { encoding: 'utf8' })).toBe('');
  });

  it('follows a relative /opt/immich symlink that stays inside the root (a data disk), with the right modes', async () => {
    const root = makeRoot();
    mkdirSync(`${root}/datadisk/immich`, { recursive: true });
    mkdirSync(`${root}/opt`);
    symlinkSync('../datadisk/immich', `${root}/opt/immich`);
    const run = await runCli(['--root', root, '--skip-stack']);
    expect(run.code).toBe(0);
    expect(modeOf(root, '/datadisk/immich/.env')).toBe('0640');
    expect(modeOf(root, '/datadisk/immich/postgres')).toBe('0700');
  });
});

function dirWith(...programs: string[]): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ifb-path-'));
  for (const program of programs) {
    const real = execFileSync('sh', ['-c', `command -v ${program}`], { encoding: 'utf8' }).trim();
    symlinkSync(real, path.join(dir, program));
  }
  chmodSync(dir, 0o755);
  return dir;
}

void readFileSync;
