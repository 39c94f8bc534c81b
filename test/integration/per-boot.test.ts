// `per-boot`, the check at every later boot, as the bundle against a temp --root with real openssl and
// nginx -t: a clone (a new machine-id) and new addresses (the IMDS stub on 127.0.0.1 answering another
// private IP), with our certificate and with one that is not ours; and nothing at all when nothing changed.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BUNDLE, FIXTURE_BIN, runCli } from '../support/cli.js';
import { INSTANCE_DOC, startImdsStub, type ImdsStub } from '../support/imds-stub.js';
import { makeRoot, readFile, snapshotTree, writeFile } from '../support/root.js';
import { STRACE_NEEDED } from '../support/strace.js';

const SITE = '/etc/nginx/sites-available/immich';
const CERT = '/etc/immich-firstboot/tls/current/cert.pem';
const password = (root: string) => /^DB_PASSWORD=(.*)$/m.exec(readFile(root, '/opt/immich/.env'))![1];
const opensslX509 = (root: string, ...args: string[]) =>
  execFileSync('openssl', ['x509', '-in', path.join(root, CERT), '-noout', ...args], { encoding: 'utf8' });
const fingerprint = (root: string) => /Fingerprint=([0-9A-F:]+)/.exec(opensslX509(root, '-fingerprint', '-sha256'))![1];
const status = async (root: string) =>
  JSON.parse((await runCli(['--root', root, 'status', '--json'])).stdout) as Record<string, unknown>;
const stamp = (root: string) =>
  JSON.parse(readFile(root, '/var/lib/immich-firstboot/done')) as {
    instanceId: string;
    completedAt: string;
    version: string;
  };

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

beforeAll(() => {
  if (!existsSync(BUNDLE)) throw new Error('run `npm run build` first (npm test does)');
});

/** A root after a --skip-stack first boot, IMDS off: its instance id is /etc/machine-id. */
async function doneRoot(): Promise<string> {
  const root = makeRoot();
  const run = await runCli(['--root', root, 'run', '--skip-stack']);
  if (run.code !== 0) throw new Error(`first boot failed: ${run.stdout}${run.stderr}`);
  return root;
}

/** Every file, directory and link under the root with its mtime (and ctime: a chmod counts too). */
function times(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const full = path.join(dir, name);
      const st = lstatSync(full);
      out[path.relative(root, full)] = `${st.mtimeMs} ${st.ctimeMs}`;
      if (st.isDirectory()) walk(full);
    }
  };
  walk(root);
  return out;
}

/** Every file under the root whose content holds `text`. */
function filesHolding(root: string, text: string): string[] {
  return Object.entries(snapshotTree(root))
    .filter(([, entry]) => entry.includes(text))
    .map(([file]) => file);
}

describe('per-boot when nothing changed', () => {
  it("exits 0 and writes nothing, not even the lock, and starts no program (strace: one execve, node's own)", async () => {
    const root = await doneRoot();
    const before = { tree: snapshotTree(root), times: times(root) };
    const trace = path.join(mkdtempSync(path.join(os.tmpdir(), 'ifb-strace-')), 'execve.log');
    cleanups.push(() => rmSync(path.dirname(trace), { recursive: true, force: true }));
    const run = spawnSync(
      'strace',
      ['-f', '-qq', '-e', 'trace=execve,execveat', '-o', trace, process.execPath, BUNDLE, '--root', root, 'per-boot'],
      { encoding: 'utf8', env: { PATH: process.env.PATH } },
    );
    expect(run.error, STRACE_NEEDED).toBeUndefined();
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toContain('per-boot check: same instance, same addresses; nothing to do');
    const execs = readFileSync(trace, 'utf8')
      .split('\n')
      .filter((l) => /execve(at)?\(/.test(l));
    expect(execs).toEqual([expect.stringContaining(`execve("${process.execPath}"`)]);
    expect(snapshotTree(root)).toEqual(before.tree);
    expect(times(root)).toEqual(before.times);
  });

  it("exits 0 at once, writing nothing, when first boot has not finished (that is the first-boot unit's job)", async () => {
    const root = makeRoot();
    const before = snapshotTree(root);
    const run = await runCli(['--root', root, 'per-boot']);
    expect(run.code).toBe(0);
    expect(run.lines.map((l) => l.msg)).toEqual([
      'first boot has not finished; nothing to check (immich-firstboot.service does the first boot)',
    ]);
    expect(snapshotTree(root)).toEqual(before);
  });
});

// The every-boot check runs on the Config the journal recorded while config.yaml holds the same text
// (no YAML parser at every boot): any edit of the file must still be seen at the next boot.
describe('per-boot after config.yaml was edited', () => {
  const CONFIG = '/etc/immich-firstboot/config.yaml';
  const JOURNAL = '/var/lib/immich-firstboot/state.json';
  const recorded = (root: string) =>
    (JSON.parse(readFile(root, JOURNAL)) as { config?: { version: string; text: string | null } }).config;

  it('sees a name added to extraNames: a new certificate names it, and the journal records the new file', async () => {
    const root = await doneRoot();
    expect(recorded(root)?.text).toBe(readFile(root, CONFIG));
    writeFile(root, CONFIG, `${readFile(root, CONFIG)}extraNames: [photos.example.org]\n`);
    const run = await runCli(['--root', root, 'per-boot']);
    expect(run.code, run.stdout).toBe(0);
    expect(run.lines.map((l) => l.msg)).toContain(
      'the certificate does not name photos.example.org; checking the certificate, the site and /root/immich-credentials.txt',
    );
    expect(opensslX509(root, '-ext', 'subjectAltName')).toContain('DNS:photos.example.org');
    expect(recorded(root)?.text).toBe(readFile(root, CONFIG));
  });

  it('refuses a config.yaml made invalid since first boot: exit 3 naming the file and the line, nothing written', async () => {
    const root = await doneRoot();
    writeFile(root, CONFIG, `${readFile(root, CONFIG)}tls:\n  days: 9999\n`);
    const before = snapshotTree(root);
    const run = await runCli(['--root', root, 'per-boot']);
    expect(run.code).toBe(3);
    expect(run.stderr).toMatch(/config\.yaml line 4: tls\.days must be a whole number from 1 to 397, not 9999/);
    expect(snapshotTree(root)).toEqual(before);
  });

  for (const [what, edit] of [
    [
      'a comment added to config.yaml',
      (root: string) => writeFile(root, CONFIG, `${readFile(root, CONFIG)}# edited\n`),
    ],
    [
      'a journal another version wrote',
      (root: string) => {
        const journal = JSON.parse(readFile(root, JOURNAL)) as { config: { version: string } };
        journal.config.version = '0.0.1-older';
        writeFile(root, JOURNAL, JSON.stringify(journal), 0o600);
      },
    ],
  ] as const)
    it(`records config.yaml again after ${what} (nothing else to do), and the boots after it write nothing`, async () => {
      const root = await doneRoot();
      edit(root);
      const first = await runCli(['--root', root, 'per-boot']);
      expect(first.code, first.stdout).toBe(0);
      expect(first.lines.map((l) => l.msg)).toEqual([
        'per-boot check: same instance, same addresses; nothing to do',
        'per-boot: /etc/immich-firstboot/config.yaml recorded in the journal (it changed, or another version wrote the journal)',
      ]);
      expect(recorded(root)).toEqual({
        version: stamp(root).version,
        text: readFile(root, CONFIG),
        config: expect.any(Object),
      });
      expect(existsSync(path.join(root, '/var/lib/immich-firstboot/lock'))).toBe(false);
      const before = { tree: snapshotTree(root), times: times(root) };
      const next = await runCli(['--root', root, 'per-boot']);
      expect(next.lines.map((l) => l.msg)).toEqual(['per-boot check: same instance, same addresses; nothing to do']);
      expect(snapshotTree(root)).toEqual(before.tree);
      expect(times(root)).toEqual(before.times);
    });
});

describe("per-boot on a clone (the machine-id differs from the done-stamp's)", () => {
  it('keeps the secret when Postgres holds data; new certificate, claim token, credentials, done-stamp; status and MOTD say so', async () => {
    const root = await doneRoot();
    writeFile(root, '/opt/immich/postgres/PG_VERSION', '14\n');
    const secret = password(root);
    const claimToken = () =>
      /^~\^([0-9a-f]{64})\$ 1;$/m.exec(readFile(root, '/etc/immich-firstboot/nginx/claim-token.map'))![1];
    const old = {
      token: claimToken(),
      fingerprint: fingerprint(root),
      stamp: stamp(root),
      credentials: readFile(root, '/root/immich-credentials.txt'),
    };
    writeFile(root, '/etc/machine-id', 'fedcba9876543210fedcba9876543210\n');

    const run = await runCli(['--root', root, 'per-boot']);
    expect(run.code, run.stdout).toBe(0);
    expect(run.lines.find((l) => l.level === 40)?.msg).toBe(
      'this VM is a clone: first boot ran on instance 0123456789abcdef0123456789abcdef, this is fedcba9876543210fedcba9876543210; making a new certificate and credentials',
    );
    expect(password(root)).toBe(secret);
    expect(fingerprint(root)).not.toBe(old.fingerprint);
    const credentials = readFile(root, '/root/immich-credentials.txt');
    expect(credentials).not.toBe(old.credentials);
    expect(credentials).toContain(`SHA256 ${fingerprint(root)}`);
    expect(credentials).toContain(`Password: ${secret}`);
    // The image's claim token was known to whoever built it: the clone's own, and its link, replace it.
    expect(claimToken()).not.toBe(old.token);
    expect(credentials).toContain(`/claim/${claimToken()}\n`);
    expect(credentials).not.toContain(old.token);
    expect(run.lines.find((l) => l.step === 'claim-token')?.msg).toBe(
      "/etc/immich-firstboot/nginx/claim-token.map written with a new claim token (mode 0600; a clone: the image's token was known to whoever built it)",
    );
    expect(stamp(root)).toEqual({ ...old.stamp, instanceId: 'fedcba9876543210fedcba9876543210' });
    expect(run.stdout).not.toContain(secret);
    expect(run.stdout).not.toContain(claimToken().slice(0, 8));
    expect(run.stdout).not.toContain(old.token.slice(0, 8));

    const report = await status(root);
    expect(report).toMatchObject({
      status: 'done',
      instanceId: 'fedcba9876543210fedcba9876543210',
      certFingerprint: fingerprint(root),
      clone: {
        fromInstanceId: '0123456789abcdef0123456789abcdef',
        toInstanceId: 'fedcba9876543210fedcba9876543210',
        secret: 'kept (Postgres holds data)',
      },
    });
    expect((await runCli(['--root', root, 'status'])).stdout).toContain(
      'clone: a copy of instance 0123456789abcdef0123456789abcdef',
    );
    expect((await runCli(['--root', root, 'motd'])).stdout).toContain(
      'This VM is a copy of instance 0123456789abcdef0123456789abcdef, noticed',
    );

    // Handled once: the next boot of the clone finds nothing to do.
    const again = await runCli(['--root', root, 'per-boot']);
    expect(again.lines.map((l) => l.msg)).toEqual(['per-boot check: same instance, same addresses; nothing to do']);
  });

  it('gets a new secret when Postgres holds no data: every other .env line kept, the old secret nowhere in the tree', async () => {
    const root = await doneRoot();
    writeFile(
      root,
      '/opt/immich/.env',
      `${readFile(root, '/opt/immich/.env')}# the operator's own\nMY_SETTING=1\n`,
      0o640,
    );
    const secret = password(root);
    const envBefore = readFile(root, '/opt/immich/.env');
    writeFile(root, '/etc/machine-id', 'fedcba9876543210fedcba9876543210\n');

    const run = await runCli(['--root', root, 'per-boot']);
    expect(run.code, run.stdout).toBe(0);
    const fresh = password(root);
    expect(fresh).toMatch(/^[A-Za-z0-9]{32}$/);
    expect(fresh).not.toBe(secret);
    expect(readFile(root, '/opt/immich/.env')).toBe(envBefore.replace(`DB_PASSWORD=${secret}`, `DB_PASSWORD=${fresh}`));
    expect((lstatSync(path.join(root, '/opt/immich/.env')).mode & 0o777).toString(8)).toBe('640');
    expect(filesHolding(root, secret)).toEqual([]);
    expect(readFile(root, '/root/immich-credentials.txt')).toContain(`Password: ${fresh}`);
    expect(run.stdout + run.stderr).not.toContain(secret);
    expect(run.stdout + run.stderr).not.toContain(fresh);
    expect(await status(root)).toMatchObject({ clone: { secret: 'new' } });
  });
});

describe('per-boot when handling a clone fails', () => {
  it('exits 1 with the hint, keeps the old done-stamp so the next boot retries, and status shows it until then', async () => {
    const root = await doneRoot();
    const old = stamp(root);
    writeFile(root, '/etc/machine-id', 'fedcba9876543210fedcba9876543210\n');
    const broken = mkdtempSync(path.join(os.tmpdir(), 'ifb-bin-'));
    cleanups.push(() => rmSync(broken, { recursive: true, force: true }));
    writeFile(broken, '/openssl', '#!/bin/sh\necho "openssl: simulated failure" >&2; exit 1\n', 0o755);

    const run = await runCli(['--root', root, 'per-boot'], { PATH: `${broken}:${process.env.PATH}` });
    expect(run.code).toBe(1);
    expect(run.lines.at(-1)).toMatchObject({
      level: 50,
      msg: 'per-boot: making this clone its own failed at step tls-cert: openssl could not make the self-signed certificate: openssl: simulated failure',
      hint: expect.stringContaining('systemctl restart immich-firstboot-perboot'),
    });
    expect(stamp(root)).toEqual(old);
    expect((await status(root)).warnings).toEqual([
      expect.objectContaining({ step: 'per-boot', message: expect.stringContaining('failed at step tls-cert') }),
    ]);

    const retry = await runCli(['--root', root, 'per-boot']);
    expect(retry.code, retry.stdout).toBe(0);
    expect(stamp(root).instanceId).toBe('fedcba9876543210fedcba9876543210');
    expect(await status(root)).toMatchObject({
      warnings: [],
      clone: { toInstanceId: 'fedcba9876543210fedcba9876543210' },
    });
  });

  it('exits 1 naming Docker, with .env and the done-stamp as they were, when the first boot started the stack and Docker does not answer', async () => {
    const root = await doneRoot();
    // As after a first boot that started the stack: the image's containers may exist, so Docker is asked.
    const state = JSON.parse(readFile(root, '/var/lib/immich-firstboot/state.json')) as { facts: { stack?: string } };
    state.facts.stack = 'started';
    writeFile(root, '/var/lib/immich-firstboot/state.json', JSON.stringify(state), 0o600);
    const env = readFile(root, '/opt/immich/.env');
    const old = stamp(root);
    writeFile(root, '/etc/machine-id', 'fedcba9876543210fedcba9876543210\n');

    const run = await runCli(['--root', root, 'per-boot'], {
      PATH: `${FIXTURE_BIN}:${process.env.PATH}`,
      STANDIN_NOT_RUNNING: '1',
    });
    expect(run.code).toBe(1);
    expect(run.lines.at(-1)).toMatchObject({
      level: 50,
      code: 'docker-failed',
      msg: 'per-boot: deciding the Postgres secret of this clone failed at step clone-secret: `docker ps -a ...` failed: Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?',
      hint: expect.stringMatching(/systemctl status docker\.service.*systemctl restart immich-firstboot-perboot/),
    });
    expect(readFile(root, '/opt/immich/.env')).toBe(env);
    expect(stamp(root)).toEqual(old);
    expect((await status(root)).warnings).toEqual([
      expect.objectContaining({ step: 'per-boot', message: expect.stringContaining('failed at step clone-secret') }),
    ]);
  });

  it('waits for a run that holds the lock: exit 4, nothing changed', async () => {
    const root = await doneRoot();
    writeFile(root, '/etc/machine-id', 'fedcba9876543210fedcba9876543210\n');
    const stat = readFileSync('/proc/self/stat', 'utf8');
    writeFile(
      root,
      '/var/lib/immich-firstboot/lock',
      JSON.stringify({ pid: process.pid, start: stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19], command: 'run' }),
    );
    const before = snapshotTree(root);
    const run = await runCli(['--root', root, 'per-boot']);
    expect(run.code).toBe(4);
    expect(run.lines.at(-1)?.msg).toBe(`another immich-firstboot (run, pid ${process.pid}) is running`);
    expect(snapshotTree(root)).toEqual(before);
  });
});

describe('per-boot after the addresses changed (IMDS stub: another private IP)', () => {
  let imds: ImdsStub;
  const serve = async (privateIp: string) => {
    await imds?.close();
    imds = await startImdsStub({ '/metadata/instance': { status: 200, body: INSTANCE_DOC('', privateIp) } });
  };
  afterEach(async () => imds?.close());
  const env = () => ({ IMMICH_FIRSTBOOT_IMDS_URL: imds.url });

  async function movedRoot(): Promise<string> {
    const root = makeRoot('imds:\n  enabled: true\n  retrySeconds: 0\n');
    await serve('10.1.0.4');
    expect((await runCli(['--root', root, 'run', '--skip-stack'], env())).code).toBe(0);
    expect(opensslX509(root, '-ext', 'subjectAltName')).toContain('IP Address:10.1.0.4');
    // Nothing changed yet: the stub answers, and nothing is written.
    const before = snapshotTree(root);
    expect((await runCli(['--root', root, 'per-boot'], env())).lines.at(-1)?.msg).toBe(
      'per-boot check: same instance, same addresses; nothing to do',
    );
    expect(snapshotTree(root)).toEqual(before);
    await serve('10.1.0.99');
    return root;
  }

  it('renews our certificate with the new address in its names (real openssl), the site checked, credentials updated', async () => {
    const root = await movedRoot();
    const old = fingerprint(root);
    const run = await runCli(['--root', root, 'per-boot'], env());
    expect(run.code, run.stdout).toBe(0);
    expect(run.lines.find((l) => l.step === 'tls-cert')?.msg).toMatch(
      /^new ECDSA certificate \(it does not name 10\.1\.0\.99\)/,
    );
    expect(run.lines.map((l) => l.msg)).toContain('nginx -t: the configuration is valid');
    const names = opensslX509(root, '-ext', 'subjectAltName');
    expect(names).toContain('IP Address:10.1.0.99');
    expect(names).not.toContain('IP Address:10.1.0.4,');
    expect(fingerprint(root)).not.toBe(old);
    expect(readFile(root, '/root/immich-credentials.txt')).toContain('https://10.1.0.99/');
    expect(await status(root)).toMatchObject({
      addressChange: {
        from: expect.arrayContaining(['10.1.0.4']),
        to: expect.arrayContaining(['10.1.0.99']),
        certificate: 'renewed',
      },
      clone: null,
    });
    expect((await runCli(['--root', root, 'per-boot'], env())).lines.at(-1)?.msg).toBe(
      'per-boot check: same instance, same addresses; nothing to do',
    );
  });

  it("leaves a certificate that is not ours alone (certbot's in the site) and says so in the log, status and MOTD", async () => {
    const root = await movedRoot();
    // As certbot --nginx leaves the site (test/integration/door-certbot.test.ts does it for real).
    writeFile(
      root,
      SITE,
      readFile(root, SITE)
        .replace(
          /ssl_certificate \S+;/,
          'ssl_certificate /etc/letsencrypt/live/immich.test/fullchain.pem; # managed by Certbot',
        )
        .replace(
          /ssl_certificate_key \S+;/,
          'ssl_certificate_key /etc/letsencrypt/live/immich.test/privkey.pem; # managed by Certbot',
        ),
    );
    const before = {
      site: readFile(root, SITE),
      fingerprint: fingerprint(root),
      tls: snapshotTree(root),
      credentials: readFile(root, '/root/immich-credentials.txt'),
    };

    const run = await runCli(['--root', root, 'per-boot'], env());
    expect(run.code, run.stdout).toBe(0);
    expect(run.lines.find((l) => l.level === 40)?.msg).toMatch(
      /^addresses .*10\.1\.0\.4.* → .*10\.1\.0\.99.*; nginx serves \/etc\/letsencrypt\/live\/immich\.test\/fullchain\.pem, not our self-signed certificate: left alone/,
    );
    expect(readFile(root, SITE)).toBe(before.site);
    expect(fingerprint(root)).toBe(before.fingerprint);
    expect(readFile(root, '/root/immich-credentials.txt')).toBe(before.credentials);
    const changed = Object.keys(snapshotTree(root)).filter((k) => snapshotTree(root)[k] !== before.tls[k]);
    expect(changed).toEqual(['var/lib/immich-firstboot/state.json']);
    expect(await status(root)).toMatchObject({
      addressChange: {
        certificate: 'not ours (nginx serves /etc/letsencrypt/live/immich.test/fullchain.pem): left alone',
      },
    });
    expect((await runCli(['--root', root, 'motd'])).stdout).toContain('the certificate nginx serves is not ours');
  });

  it('compares nothing when IMDS does not answer this boot (a clone would look like a move), and writes nothing', async () => {
    const root = await movedRoot();
    await imds.close();
    const before = snapshotTree(root);
    const run = await runCli(['--root', root, 'per-boot'], env());
    expect(run.code).toBe(0);
    expect(run.lines.at(-1)?.msg).toMatch(/^Azure IMDS did not answer: cannot compare/);
    expect(snapshotTree(root)).toEqual(before);
  });
});

describe('per-boot after a first boot without IMDS (the done-stamp holds the machine-id)', () => {
  let imds: ImdsStub | undefined;
  afterEach(async () => imds?.close());

  it('names the VM by its vmId the first time IMDS answers: logged, in status, no clone', async () => {
    const root = makeRoot('imds:\n  enabled: true\n  retrySeconds: 0\n');
    const down = { IMMICH_FIRSTBOOT_IMDS_URL: 'http://127.0.0.1:9' };
    expect((await runCli(['--root', root, 'run', '--skip-stack'], down)).code).toBe(0);
    expect(stamp(root)).toMatchObject({ instanceId: '0123456789abcdef0123456789abcdef' });
    const secret = password(root);

    imds = await startImdsStub({ '/metadata/instance': { status: 200, body: INSTANCE_DOC('', '10.1.0.4') } });
    const env = { IMMICH_FIRSTBOOT_IMDS_URL: imds.url };
    const run = await runCli(['--root', root, 'per-boot'], env);
    expect(run.code, run.stdout).toBe(0);
    expect(run.lines.map((l) => l.msg)).toContain(
      'the done-stamp now names this VM by its Azure vmId 5c08b38e-4d57-4c23-ac45-aca61037f084: first boot recorded the machine-id 0123456789abcdef0123456789abcdef because Azure IMDS did not answer then; the same VM, not a clone',
    );
    expect(stamp(root)).toMatchObject({
      instanceId: '5c08b38e-4d57-4c23-ac45-aca61037f084',
      instanceIdSource: 'azure-imds',
    });
    expect(password(root)).toBe(secret);
    expect(await status(root)).toMatchObject({
      clone: null,
      instanceIdUpgrade: { from: '0123456789abcdef0123456789abcdef', to: '5c08b38e-4d57-4c23-ac45-aca61037f084' },
    });
    expect((await runCli(['--root', root, 'status'])).stdout).toMatch(
      /^instance id: \S+: machine-id 0123456789abcdef0123456789abcdef \(Azure IMDS was down at first boot\) → Azure vmId 5c08b38e-4d57-4c23-ac45-aca61037f084$/m,
    );
    // IMDS brought an address first boot did not know: the certificate names it now.
    expect(opensslX509(root, '-ext', 'subjectAltName')).toContain('IP Address:10.1.0.4');
    expect((await runCli(['--root', root, 'per-boot'], env)).lines.at(-1)?.msg).toBe(
      'per-boot check: same instance, same addresses; nothing to do',
    );
  });
});
