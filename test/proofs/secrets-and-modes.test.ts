// Secrets and modes at every instant: a watcher sweeping the tree during a full first boot, every
// child process's argv (through logging shims on PATH), and two runs started at once.
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, statSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FIXTURE_BIN, REPO, killStandins, pathWith, runCli } from '../support/cli.js';
import { makeRoot, readFile, writeFile } from '../support/root.js';
import { freePort } from '../support/net.js';
import { Disks } from '../support/loop-disk.js';

const standin = mkdtempSync(path.join(os.tmpdir(), 'ifb-secret-'));
afterAll(() => killStandins(standin));

async function stackRoot(): Promise<{ root: string; env: Record<string, string> }> {
  const port = await freePort();
  const root = makeRoot(
    `imds:\n  enabled: false\nstack:\n  serverUrl: http://127.0.0.1:${port}\n  readyTimeoutSeconds: 30\n`,
  );
  return {
    root,
    env: {
      PATH: pathWith(FIXTURE_BIN),
      STANDIN_DIR: standin,
      STANDIN_PING_PORT: String(port),
      STANDIN_PONG_DELAY_MS: '1500',
    },
  };
}

const secretOf = (root: string) => /^DB_PASSWORD=(.*)$/m.exec(readFile(root, '/opt/immich/.env'))![1];

async function watch(
  root: string,
): Promise<() => Promise<{ sweeps: number; files: Record<string, { modes: string[]; uids: number[] }> }>> {
  const watcher = spawn(process.execPath, [path.join(REPO, 'test/fixtures/watch/mode-watcher.mjs'), root], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  watcher.stdout.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise<void>((resolve) => watcher.stdout.once('data', () => resolve()));
  return async () => {
    watcher.kill('SIGTERM');
    await new Promise((resolve) => watcher.on('exit', resolve));
    return JSON.parse(out.slice(out.indexOf('{')));
  };
}

describe('the secret and the modes', () => {
  it('the watcher does catch a file that is too wide for a few milliseconds (negative control)', async () => {
    const root = makeRoot();
    const stop = await watch(root);
    writeFile(root, '/opt/immich/.env', 'DB_PASSWORD=x\n', 0o644);
    await new Promise((resolve) => setTimeout(resolve, 20));
    chmodSync(`${root}/opt/immich/.env`, 0o640);
    await new Promise((resolve) => setTimeout(resolve, 20));
    const { files } = await stop();
    expect(files['opt/immich/.env']?.modes).toEqual(['0644', '0640']);
  });

  it('no file is ever wider than its mode, nor owned by anyone but root, at any instant of a full first boot', async () => {
    const { root, env } = await stackRoot();
    const stop = await watch(root);
    const run = await runCli(['--root', root], env);
    expect(run.code).toBe(0);
    const { sweeps, files } = await stop();
    expect(sweeps).toBeGreaterThan(50);
    // The watcher must have caught the temp files themselves, or it proves nothing about them.
    const temps = Object.keys(files).filter((f) => f.endsWith('.tmp'));
    expect(temps.length).toBeGreaterThan(0);
    // Paths relative to the root; temp names are `.<name>.<8 hex>.tmp` beside their target.
    const limit = (file: string): number | undefined => {
      if (/^opt\/immich\/(\.env|\.\.env\.[0-9a-f]{8}\.tmp)$/.test(file)) return 0o640;
      if (/key\.pem$|immich-credentials\.txt|state\.json|claim-token\.map/.test(file)) return 0o600;
      return undefined;
    };
    const violations: string[] = [];
    for (const [file, { modes, uids }] of Object.entries(files)) {
      if (uids.some((u) => u !== 0)) violations.push(`${file} owned by ${uids.join(',')}`);
      const max = limit(file);
      if (max !== undefined)
        for (const m of modes) if ((parseInt(m, 8) & ~max) !== 0) violations.push(`${file} was ${m}`);
    }
    expect(violations).toEqual([]);
    expect(Object.keys(files)).toEqual(
      expect.arrayContaining([
        'opt/immich/.env',
        'root/immich-credentials.txt',
        'etc/immich-firstboot/nginx/claim-token.map',
      ]),
    );
  }, 120_000);

  it("never puts the secret or the claim token in a child process's arguments, the logs, status --json, the MOTD, state.json or a world-readable file", async () => {
    const { root, env } = await stackRoot();
    // Every program the run starts goes through a shim that records its argv, then runs the real one.
    const shims = mkdtempSync(path.join(os.tmpdir(), 'ifb-shims-'));
    const argvLog = path.join(shims, 'argv.log');
    for (const program of [
      'openssl',
      'docker',
      'docker-compose',
      'nginx',
      'systemd-notify',
      'systemctl',
      'ss',
      'dockerd',
    ]) {
      writeFileSync(
        path.join(shims, program),
        `#!/bin/sh\nprintf '%s\\n' "${program} $*" >> ${argvLog}\nPATH=${env.PATH}\nexec ${program} "$@"\n`,
      );
      chmodSync(path.join(shims, program), 0o755);
    }
    const run = await runCli(['--root', root], {
      ...env,
      PATH: `${shims}:${env.PATH}`,
      NOTIFY_SOCKET: '/nonexistent/notify',
    });
    expect(run.code).toBe(0);
    const secret = secretOf(root);
    const argv = readFileSync(argvLog, 'utf8');
    expect(argv).toMatch(/^openssl req -x509/m);
    expect(argv).toMatch(/^docker compose -p immich .* up -d$/m);
    expect(argv).not.toContain(secret);
    expect(run.stdout + run.stderr).not.toContain(secret);
    const status = await runCli(['--root', root, 'status', '--json']);
    expect(status.stdout).not.toContain(secret);
    const { execFileSync } = await import('node:child_process');
    const readable = execFileSync('find', [root, '-type', 'f', '-perm', '-o+r'], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .filter(Boolean);
    for (const file of readable)
      expect(`${file}: ${readFileSync(file, 'utf8').includes(secret)}`).toBe(`${file}: false`);

    // The claim token: in its own file (0600) and the credentials file (0600), nowhere else. Not whole,
    // nor any 8 of its characters, in argv, the log lines, status --json, the MOTD, state.json.
    const token = /^~\^([0-9a-f]{64})\$ 1;$/m.exec(readFile(root, '/etc/immich-firstboot/nginx/claim-token.map'))![1];
    const pieces = [token, token.slice(0, 8), token.slice(28, 36), token.slice(-8)];
    const motd = await runCli(['--root', root, 'motd']);
    const channels = {
      argv,
      log: run.stdout + run.stderr,
      status: status.stdout,
      motd: motd.stdout + motd.stderr,
      'state.json': readFile(root, '/var/lib/immich-firstboot/state.json'),
    };
    for (const [channel, text] of Object.entries(channels))
      for (const piece of pieces) expect(`${channel}: ${text.includes(piece)}`).toBe(`${channel}: false`);
    const holding = execFileSync('grep', ['-rl', token, root], { encoding: 'utf8' }).trim().split('\n').sort();
    expect(holding.map((f) => `${path.relative(root, f)} ${(statSync(f).mode & 0o777).toString(8)}`)).toEqual([
      'etc/immich-firstboot/nginx/claim-token.map 600',
      'root/immich-credentials.txt 600',
    ]);
    expect(readFile(root, '/root/immich-credentials.txt')).toContain(`/claim/${token}\n`);
  }, 120_000);
});

describe('the copy of the secret on a data disk', () => {
  it("is root's alone (0600 in a 0700 directory); no world-readable file holds the secret, and no disk tool's argv", async () => {
    const disks = new Disks();
    try {
      const disk = disks.attach();
      const root = disks.root('imds:\n  enabled: false\ndataDisk: { lun: 0 }\n');
      disks.link(root, disk, 'dev/disk/azure/scsi1/lun0');
      const shims = mkdtempSync(path.join(os.tmpdir(), 'ifb-shims-'));
      const argvLog = path.join(shims, 'argv.log');
      for (const program of [
        'blkid',
        'wipefs',
        'sgdisk',
        'partx',
        'mkfs.ext4',
        'debugfs',
        'mount',
        'chattr',
        'mknod',
      ]) {
        writeFileSync(
          path.join(shims, program),
          `#!/bin/sh\nprintf '%s\\n' "${program} $*" >> ${argvLog}\nPATH=${process.env.PATH}\nexec ${program} "$@"\n`,
        );
        chmodSync(path.join(shims, program), 0o755);
      }
      const run = await runCli(['--root', root, 'run', '--skip-stack'], { PATH: `${shims}:${process.env.PATH}` });
      expect(run.code, run.stdout).toBe(0);
      const secret = secretOf(root);
      const argv = readFileSync(argvLog, 'utf8');
      expect(argv).toMatch(/^mkfs\.ext4 -q -L immich-data -U /m);
      expect(argv).not.toContain(secret);
      const { execFileSync } = await import('node:child_process');
      const holding = execFileSync('grep', ['-rl', secret, root], { encoding: 'utf8' }).trim().split('\n').sort();
      expect(holding.map((f) => `${path.relative(root, f)} ${(statSync(f).mode & 0o777).toString(8)}`)).toEqual([
        'opt/immich/.env 640',
        'root/immich-credentials.txt 600',
        'srv/immich/.immich-firstboot/env 600',
      ]);
      const marker = statSync(path.join(root, 'srv/immich/.immich-firstboot'));
      expect(`${(marker.mode & 0o777).toString(8)} ${marker.uid}:${marker.gid}`).toBe('700 0:0');
      const copy = statSync(path.join(root, 'srv/immich/.immich-firstboot/env'));
      expect(`${copy.uid}:${copy.gid}`).toBe('0:0');
    } finally {
      disks.release();
    }
  }, 120_000);
});

describe('two runs at once', () => {
  it('one runs, the other refuses with exit 4 naming it; nothing interleaves', async () => {
    const { root, env } = await stackRoot();
    const [a, b] = await Promise.all([runCli(['--root', root], env), runCli(['--root', root], env)]);
    const codes = [a.code, b.code].sort();
    expect(codes).toEqual([0, 4]);
    const loser = a.code === 4 ? a : b;
    expect(loser.lines[0]?.msg).toMatch(/^another immich-firstboot \(run, pid \d+\) is running$/);
    expect(loser.lines[0]?.hint).toContain('immich-firstboot status');
    expect(existsSync(`${root}/var/lib/immich-firstboot/lock`)).toBe(false);
    expect(JSON.parse((await runCli(['--root', root, 'status', '--json'])).stdout).status).toBe('done');
    expect(readFile(root, '/root/immich-credentials.txt')).toContain(`Password: ${secretOf(root)}`);
    void writeFile;
  }, 120_000);
});
