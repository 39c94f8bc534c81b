// prepare-image's scan on a booted-and-used root: it finds a copy of the secret wherever a person or a
// program may have left one, of any size, says what it read and what it could not, never says "verified"
// without having looked, and warns about what image certifications flag.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { gzipSync } from 'node:zlib';
import net from 'node:net';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BUNDLE, runCli } from '../support/cli.js';
import { makeRoot, readFile, snapshotTree, writeFile } from '../support/root.js';

beforeAll(() => {
  if (!existsSync(BUNDLE)) throw new Error('run `npm run build` first (npm test does)');
});

async function bootedRoot(): Promise<{ root: string; secret: string; keyLine: string }> {
  const root = makeRoot();
  const run = await runCli(['--root', root, 'run', '--skip-stack']);
  expect(run.code, run.stderr).toBe(0);
  const secret = /^DB_PASSWORD=(.*)$/m.exec(readFile(root, '/opt/immich/.env'))![1];
  const keyLine = readFile(root, '/etc/immich-firstboot/tls/current/key.pem').split('\n')[1];
  return { root, secret, keyLine };
}

const lastLine = (stdout: string) => stdout.trimEnd().split('\n').at(-1);
/** systemd's own journal writer (Debian's systemd-journal-remote): a journal file made by the real code. */
const JOURNAL_REMOTE = '/lib/systemd/systemd-journal-remote';

interface JsonReport {
  leftovers: string[];
  verified: boolean;
  scan: {
    sought: number;
    filesRead: number;
    found: string[];
    skipped: Array<{ path: string; reason: string; blocking: boolean }>;
  };
  warnings: Array<{ path: string; what: string; fix: string }>;
}

/** The regular files a scan of the tree has to read, counted by the test itself. */
function regularFiles(root: string): number {
  const skip = ['opt/immich/library', 'opt/immich/postgres', 'var/lib/docker/overlay2', 'var/lib/docker/image'];
  const walk = (rel: string): number => {
    if (skip.includes(rel)) return 0;
    const st = lstatSync(path.join(root, rel), { throwIfNoEntry: false });
    if (!st) return 0;
    if (st.isFile()) return 1;
    if (!st.isDirectory()) return 0;
    return readdirSync(path.join(root, rel)).reduce((n, name) => n + walk(path.join(rel, name)), 0);
  };
  return ['etc', 'opt', 'root', 'home', 'srv', 'usr/local', 'var', 'tmp'].reduce((n, d) => n + walk(d), 0);
}

describe('prepare-image scan', () => {
  it('finds a copy of the secret in /home, /etc, /srv, /usr/local, /var/log and /opt outside /opt/immich: exit 1, never "verified"', async () => {
    const { root, secret } = await bootedRoot();
    const planted = [
      '/home/op/notes.txt',
      '/etc/leak.txt',
      '/srv/backup/env.bak',
      '/usr/local/share/setup.sh',
      '/var/log/x.log',
      '/opt/other/config',
    ];
    for (const inside of planted) writeFile(root, inside, `some text\npassword was ${secret} then\n`);
    const result = await runCli(['--root', root, 'prepare-image']);
    expect(result.code).toBe(1);
    expect(result.stdout).not.toContain('verified:');
    const verdict = lastLine(result.stdout)!;
    expect(verdict).toMatch(/^SECRET MATERIAL REMAINS in: /);
    expect(verdict.replace('SECRET MATERIAL REMAINS in: ', '').split(', ').sort()).toEqual([...planted].sort());
    // The secret itself is never quoted.
    expect(result.stdout + result.stderr).not.toContain(secret);
  });

  it('never prints the secret it found, not even in the name of a file that holds a copy (text and --json)', async () => {
    const { root, secret } = await bootedRoot();
    writeFile(root, `/tmp/backup-${secret}.txt`, `DB_PASSWORD=${secret}\n`);
    const text = await runCli(['--root', root, 'prepare-image']);
    expect(text.code).toBe(1);
    expect(lastLine(text.stdout)).toBe('SECRET MATERIAL REMAINS in: /tmp/backup-[REDACTED].txt');
    expect(text.stdout + text.stderr).not.toContain(secret.slice(0, 8));

    const again = await bootedRoot();
    writeFile(again.root, `/tmp/backup-${again.secret}.txt`, `DB_PASSWORD=${again.secret}\n`);
    const json = await runCli(['--root', again.root, 'prepare-image', '--json']);
    expect(json.code).toBe(1);
    expect((JSON.parse(json.stdout) as JsonReport).scan.found).toEqual(['/tmp/backup-[REDACTED].txt']);
    expect(json.stdout + json.stderr).not.toContain(again.secret.slice(8, 16));
  });

  it('fails before removing anything when .env exists but no password comes out of it', async () => {
    const { root } = await bootedRoot();
    writeFile(root, '/opt/immich/.env', 'TZ=Etc/UTC\nIMMICH_VERSION=v3.2.4\n', 0o640);
    const before = snapshotTree(root);
    const result = await runCli(['--root', root, 'prepare-image']);
    expect(result.code).toBe(1);
    expect(result.stdout).not.toContain('verified');
    expect(result.stderr).toContain(
      '/opt/immich/.env exists but no DB_PASSWORD could be read from it, so the scan would not know what to look for; nothing was removed',
    );
    expect(snapshotTree(root)).toEqual(before);
  });

  it('reads files over 16 MiB whole: a copy at the end of a 17 MiB log, and one split across two read chunks, are found', async () => {
    const { root, secret, keyLine } = await bootedRoot();
    const big = Buffer.alloc(17 * 1024 * 1024, 'a');
    writeFile(root, '/var/log/huge.log', '');
    writeFileSync(path.join(root, 'var/log/huge.log'), Buffer.concat([big, Buffer.from(secret)]));
    // The scan reads 1 MiB at a time: this key line starts 10 bytes before the end of the first chunk.
    writeFile(root, '/var/backups/split.bin', '');
    writeFileSync(
      path.join(root, 'var/backups/split.bin'),
      Buffer.concat([Buffer.alloc(1024 * 1024 - 10, 'b'), Buffer.from(keyLine), Buffer.alloc(100, 'b')]),
    );
    const result = await runCli(['--root', root, 'prepare-image']);
    expect(result.code).toBe(1);
    expect(lastLine(result.stdout)).toBe('SECRET MATERIAL REMAINS in: /var/backups/split.bin, /var/log/huge.log');
    expect(result.stdout).toMatch(/read \d+ file\(s\), 18\.\d MiB; skipped 0\n/);
  });

  it('finds a copy inside a rotated log that logrotate gzip-ed (and one split across gzip members), and will not verify a log it cannot decompress', async () => {
    const { root, secret } = await bootedRoot();
    // As logrotate's `compress` leaves it: syslog.2.gz, the secret deep inside, in no byte of the file as stored.
    const log = Buffer.concat([Buffer.alloc(3 * 1024 * 1024, 'x'), Buffer.from(`app: password=${secret}\n`)]);
    writeFile(root, '/var/log/syslog.2.gz', '');
    writeFileSync(path.join(root, 'var/log/syslog.2.gz'), gzipSync(log));
    expect(readFileSync(path.join(root, 'var/log/syslog.2.gz')).includes(secret)).toBe(false);
    // Two gzip members (what `cat a.gz b.gz` makes), the secret cut between them.
    const half = secret.length / 2;
    writeFile(root, '/var/log/app/app.log.1.gz', '');
    writeFileSync(
      path.join(root, 'var/log/app/app.log.1.gz'),
      Buffer.concat([gzipSync(`start ${secret.slice(0, half)}`), gzipSync(`${secret.slice(half)} end\n`)]),
    );
    const found = await runCli(['--root', root, 'prepare-image']);
    expect(found.code).toBe(1);
    expect(lastLine(found.stdout)).toBe('SECRET MATERIAL REMAINS in: /var/log/app/app.log.1.gz, /var/log/syslog.2.gz');

    // Cleaned up, except an xz-compressed log (logrotate with compresscmd xz): it cannot be searched, so no verdict.
    const clean = await bootedRoot();
    writeFile(clean.root, '/var/log/old.log.1.xz', '');
    writeFileSync(
      path.join(clean.root, 'var/log/old.log.1.xz'),
      Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 1, 2, 3]),
    );
    const blocked = await runCli(['--root', clean.root, 'prepare-image']);
    expect(blocked.code).toBe(1);
    expect(blocked.stdout).toContain(
      '  skipped /var/log/old.log.1.xz: compressed with xz: a copy inside cannot be searched (decompress it, or remove it if it is an old log)\n',
    );
    expect(lastLine(blocked.stdout)).toBe(
      'NOT VERIFIED: could not read 1 path(s) that may hold the old secret or key: /var/log/old.log.1.xz',
    );
  });

  it.skipIf(!existsSync(JOURNAL_REMOTE))(
    "finds a copy in a systemd journal's zstd-compressed field (in no byte of the file), and will not verify a journal journalctl cannot read",
    async () => {
      const { root, secret } = await bootedRoot();
      // A real journal file, written by systemd's own journal code (systemd-journal-remote from export
      // format): a long message is stored compressed, the secret in the middle of it.
      const noise = randomBytes(3000).toString('base64');
      const journal = path.join(root, 'var/log/journal/0123456789abcdef0123456789abcdef/system.journal');
      writeFile(root, '/var/log/journal/0123456789abcdef0123456789abcdef/.keep', '');
      execFileSync(JOURNAL_REMOTE, [`--output=${journal}`, '-'], {
        input: `__REALTIME_TIMESTAMP=1700000000000000\n__MONOTONIC_TIMESTAMP=1\n_BOOT_ID=0123456789abcdef0123456789abcdef\nMESSAGE=${noise} password=${secret} ${noise}\n\n`,
        stdio: ['pipe', 'ignore', 'ignore'],
      });
      expect(readFileSync(journal).includes(secret)).toBe(false);
      const found = await runCli(['--root', root, 'prepare-image']);
      expect(found.code).toBe(1);
      expect(lastLine(found.stdout)).toBe(
        'SECRET MATERIAL REMAINS in: /var/log/journal/0123456789abcdef0123456789abcdef/system.journal',
      );

      // A journalctl that cannot read it (a stand-in that fails): the journal blocks the verdict.
      const clean = await bootedRoot();
      writeFile(clean.root, '/var/log/journal/m/system.journal', 'not really a journal');
      const bin = mkdtempSync(path.join(os.tmpdir(), 'ifb-journalctl-'));
      writeFile(bin, '/journalctl', '#!/bin/sh\necho "Failed to open journal" >&2; exit 1\n', 0o755);
      const blocked = await runCli(['--root', clean.root, 'prepare-image'], { PATH: `${bin}:${process.env.PATH}` });
      expect(blocked.code).toBe(1);
      expect(blocked.stdout).toContain(
        '  skipped /var/log/journal/m/system.journal: a systemd journal whose compressed fields were not searched: journalctl could not read it (exit 1); rotate and empty the journals before capturing (`journalctl --rotate && journalctl --vacuum-time=1s`)\n',
      );
      expect(lastLine(blocked.stdout)).toMatch(/^NOT VERIFIED: could not read 1 path\(s\)/);
    },
  );

  it('names a FIFO and a socket it skipped, without hanging on them, and still verifies; --json lists them', async () => {
    const { root } = await bootedRoot();
    writeFile(root, '/tmp/keep', '');
    execFileSync('mkfifo', [path.join(root, 'etc/leak.fifo')]);
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(path.join(root, 'tmp/leak.sock'), resolve));
    try {
      const result = await runCli(['--root', root, 'prepare-image']);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toMatch(/skipped 2\n/);
      const reason = 'not a regular file (a FIFO, socket or device): it stores no content to search';
      expect(result.stdout).toContain(`  skipped /etc/leak.fifo: ${reason}\n`);
      expect(result.stdout).toContain(`  skipped /tmp/leak.sock: ${reason}\n`);
      expect(lastLine(result.stdout)).toMatch(/^verified: /);

      // Again, with the secret material back in place, as JSON.
      const again = await bootedRoot();
      execFileSync('mkfifo', [path.join(again.root, 'etc/leak.fifo')]);
      const json = await runCli(['--root', again.root, 'prepare-image', '--json']);
      expect(json.code, json.stderr).toBe(0);
      const report = JSON.parse(json.stdout) as JsonReport;
      expect(report.scan.skipped).toEqual([{ path: '/etc/leak.fifo', reason, blocking: false }]);
      expect(report.verified).toBe(true);
    } finally {
      server.close();
    }
  });

  it('fails, naming it, when a file that may hold the secret cannot be read (a path longer than PATH_MAX)', async () => {
    const deeps: string[] = [];
    /** A booted root with a copy of the secret at the bottom of 25 directories of 200 characters: each
     * a valid name, the whole path past Linux's 4096, so even root cannot lstat, open or list it by path. */
    const unreadableRoot = async (): Promise<string> => {
      const { root, secret } = await bootedRoot();
      const deep = path.join(root, 'srv/deep');
      deeps.push(deep);
      writeFile(root, '/srv/deep/.keep', '');
      execFileSync(process.execPath, [
        '-e',
        `const fs = require('node:fs'); process.chdir(${JSON.stringify(deep)});
         for (let i = 0; i < 25; i++) { fs.mkdirSync('d'.repeat(200)); process.chdir('d'.repeat(200)); }
         fs.writeFileSync('leak.txt', ${JSON.stringify(secret)});`,
      ]);
      return root;
    };
    try {
      const result = await runCli(['--root', await unreadableRoot(), 'prepare-image', '--json']);
      expect(result.code).toBe(1);
      const report = JSON.parse(result.stdout) as JsonReport;
      expect(report.verified).toBe(false);
      expect(report.scan.found).toEqual([]);
      const blocking = report.scan.skipped.filter((s) => s.blocking);
      expect(blocking).toHaveLength(1);
      expect(blocking[0].path.startsWith('/srv/deep/d')).toBe(true);
      expect(blocking[0].reason).toBe('could not be read (io-enametoolong)');

      const text = await runCli(['--root', await unreadableRoot(), 'prepare-image']);
      expect(text.code).toBe(1);
      expect(text.stdout).not.toContain('verified:');
      expect(text.stdout).toMatch(/\n {2}skipped \/srv\/deep(\/d+)+: could not be read \(io-enametoolong\)\n/);
      expect(lastLine(text.stdout)).toMatch(
        /^NOT VERIFIED: could not read 1 path\(s\) that may hold the old secret or key: \/srv\/deep\/d+/,
      );
    } finally {
      // GNU rm walks with openat, so it can remove what a path cannot name.
      for (const deep of deeps) execFileSync('rm', ['-rf', deep]);
    }
  });

  it('warns, with the fix, about shell histories, cloud-init instance data, Docker key.json, timer stamps, machine-id and SSH host keys; they do not fail it', async () => {
    const { root } = await bootedRoot();
    writeFile(root, '/root/.bash_history', 'ls\n');
    writeFile(root, '/home/op/.zsh_history', ': 1:0;ls\n');
    writeFile(root, '/home/op/.python_history', ''); // empty: nothing to warn about
    writeFile(root, '/var/lib/cloud/instances/i-0abc/user-data.txt', '#cloud-config\n');
    symlinkSync('/var/lib/cloud/instances/i-0abc', path.join(root, 'var/lib/cloud/instance'));
    writeFile(root, '/etc/docker/key.json', '{"kty":"EC"}');
    writeFile(root, '/var/lib/systemd/timers/stamp-apt-daily.timer', '');
    writeFile(root, '/etc/ssh/ssh_host_ed25519_key', 'key', 0o600);
    writeFile(root, '/etc/ssh/ssh_host_ed25519_key.pub', 'pub');
    const result = await runCli(['--root', root, 'prepare-image']);
    expect(result.code, result.stderr).toBe(0);
    for (const line of [
      "WARNING: /root/.bash_history: a shell history: the build's commands, and whatever was typed at the prompt; fix: `unset HISTFILE; rm -f /root/.bash_history` as the last thing before capture (in the shell that runs it)",
      'WARNING: /home/op/.zsh_history: a shell history',
      "WARNING: /var/lib/cloud/instance: cloud-init's record of this VM (its instance id, user data, anything passed at deployment); fix: `cloud-init clean --logs`",
      'WARNING: /var/lib/cloud/instances: cloud-init',
      "WARNING: /etc/docker/key.json: Docker's engine identity key: every clone would share this engine's ID; fix: `rm -f /etc/docker/key.json` (Docker makes a new one when it starts)",
      "WARNING: /var/lib/systemd/timers: 1 last-run stamp(s) of this VM's persistent timers: every clone inherits its schedule; fix: `rm -f /var/lib/systemd/timers/stamp-*`",
      "WARNING: /etc/machine-id: set: every clone starts with this VM's machine id (per-boot notices a clone by it",
      "fix: `truncate -s 0 /etc/machine-id` (systemd makes a new one at each clone's first boot)",
      'WARNING: /etc/ssh/ssh_host_ed25519_key: an SSH host key that neither cloud-init nor waagent will regenerate: every clone would present the same host key; fix: `rm -f /etc/ssh/ssh_host_*`',
    ])
      expect(result.stdout).toContain(line);
    expect(result.stdout).not.toContain('.python_history');
    expect(result.stdout).not.toContain('ssh_host_ed25519_key.pub');
    expect(lastLine(result.stdout)).toMatch(/^verified: /);

    // cloud-init regenerates host keys on each new instance (ssh_deletekeys defaults to true)...
    const cloudInit = await bootedRoot();
    writeFile(cloudInit.root, '/etc/ssh/ssh_host_ed25519_key', 'key', 0o600);
    writeFile(cloudInit.root, '/usr/bin/cloud-init', '#!/bin/sh\n', 0o755);
    writeFile(cloudInit.root, '/etc/machine-id', '');
    let json = JSON.parse((await runCli(['--root', cloudInit.root, 'prepare-image', '--json'])).stdout) as JsonReport;
    expect(json.warnings).toEqual([]);
    // ...unless told not to, or disabled.
    writeFile(cloudInit.root, '/etc/cloud/cloud.cfg.d/99-keep.cfg', 'ssh_deletekeys: false\n');
    json = JSON.parse((await runCli(['--root', cloudInit.root, 'prepare-image', '--json'])).stdout) as JsonReport;
    expect(json.warnings.map((w) => w.path)).toEqual(['/etc/ssh/ssh_host_ed25519_key']);
    // waagent regenerates them when RegenerateSshHostKeyPair=y.
    writeFile(cloudInit.root, '/etc/waagent.conf', 'Provisioning.Enabled=y\nProvisioning.RegenerateSshHostKeyPair=y\n');
    json = JSON.parse((await runCli(['--root', cloudInit.root, 'prepare-image', '--json'])).stdout) as JsonReport;
    expect(json.warnings).toEqual([]);
  });

  it('on a clean tree says "verified" with the number of files it read, and --json carries the same counts', async () => {
    const { root } = await bootedRoot();
    const json = await runCli(['--root', root, 'prepare-image', '--json']);
    expect(json.code, json.stderr).toBe(0);
    const report = JSON.parse(json.stdout) as JsonReport;
    expect(report.verified).toBe(true);
    expect(report.scan.found).toEqual([]);
    expect(report.scan.skipped).toEqual([]);
    // The password and the key's base64 lines.
    expect(report.scan.sought).toBeGreaterThan(1);
    // Every regular file left in the scanned directories was read (the test counts them itself), and the
    // lock, which is held during the scan and removed last.
    expect(report.scan.filesRead).toBe(regularFiles(root) + 1);
    expect(report.scan.filesRead).toBeGreaterThan(0);

    // A second run has nothing to look for (no .env, no key): it says so and never says "verified".
    const text = await runCli(['--root', root, 'prepare-image']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain('no secret to look for');
    expect(lastLine(text.stdout)).toBe('nothing verified: there was no secret to look for');
  });

  it('on a clean tree, the text output gives the counts before the verdict', async () => {
    const { root } = await bootedRoot();
    const result = await runCli(['--root', root, 'prepare-image']);
    expect(result.code, result.stderr).toBe(0);
    const files = regularFiles(root) + 1; // and the lock, held during the scan
    expect(result.stdout).toContain(
      `scanned /etc, /opt, /root, /home, /srv, /usr/local, /var, /tmp (not /opt/immich/library, /opt/immich/postgres, /srv/immich/library, /srv/immich/postgres, /var/lib/docker/overlay2, /var/lib/docker/image, /var/lib/containerd): read ${files} file(s)`,
    );
    expect(lastLine(result.stdout)).toBe(`verified: no copy of the old secret or key remains (${files} files read)`);
  });
});
