// Shared by the benches: timing a process, medians, free ports, temp roots, the machine's description.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const BIN = path.join(REPO, 'dist', 'immich-firstboot.mjs');
export const FIXTURE_BIN = path.join(REPO, 'test', 'fixtures', 'bin');
export const TMP = mkdtempSync(path.join(os.tmpdir(), 'ifb-bench-'));

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? NaN : s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
export const stats = (xs) => ({ n: xs.length, median: median(xs), min: Math.min(...xs), max: Math.max(...xs) });

/** Runs a command to completion; wall time in ms from just before spawn to exit (the harness's own cost is the same on both sides). */
export function timed(file, args, options = {}) {
  const start = process.hrtime.bigint();
  const r = spawnSync(file, args, { encoding: 'utf8', maxBuffer: 64 << 20, timeout: 120_000, ...options });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (r.status !== 0)
    throw new Error(
      `${file} ${args.join(' ')} exited ${r.status ?? r.signal}: ${(r.stderr || r.stdout || String(r.error ?? '')).slice(-800)}`,
    );
  return { ms, stdout: r.stdout, stderr: r.stderr };
}

/** The same, asynchronously (the event loop keeps running: samplers, servers in this process). */
export function timedAsync(file, args, options = {}) {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      if (code !== 0) reject(new Error(`${file} ${args.join(' ')} exited ${code ?? signal}: ${stderr.slice(-800)}`));
      else resolve({ ms, stdout, stderr });
    });
  });
}

/** `runs` pairs of the two sides, alternating which goes first so drift hits both alike; each side's results. */
export function alternate(runs, first, second) {
  const a = [];
  const b = [];
  for (let i = 0; i < runs; i++) {
    const pair = [() => a.push(first()), () => b.push(second())];
    if (i % 2) pair.reverse();
    pair.forEach((f) => f());
  }
  return [a, b];
}

/** A port nobody listens on right now (127.0.0.1). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

let rootCount = 0;
/** A fresh empty root with our config.yaml; IMDS is always off: nothing here may reach 169.254.169.254. */
export function freshRoot(configExtra = '') {
  const root = path.join(TMP, `root-${++rootCount}`);
  mkdirSync(path.join(root, 'etc/immich-firstboot'), { recursive: true });
  writeFileSync(path.join(root, 'etc/immich-firstboot/config.yaml'), `imds:\n  enabled: false\n${configExtra}`);
  return root;
}

/** Stops before the first bench when a tool it needs is missing, naming the package that brings it. */
export function preflight() {
  const need = { nginx: 'nginx', curl: 'curl', openssl: 'openssl', '/usr/bin/time': 'time' };
  const missing = Object.entries(need).filter(([cmd]) => spawnSync(cmd, ['--version'], { stdio: 'ignore' }).error);
  if (missing.length === 0) return;
  process.stderr.write(
    `bench: missing ${missing.map(([c]) => c).join(', ')}; install them first: apt-get install -y ${missing.map(([, p]) => p).join(' ')}\n`,
  );
  rmSync(TMP, { recursive: true, force: true });
  process.exit(2);
}

/** `Maximum resident set size` from `/usr/bin/time -v`, in KiB. */
export const maxRssKiB = (stderr) => Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(stderr)?.[1] ?? NaN);

const firstLine = (cmd, args) => {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return r.error ? 'not installed' : `${r.stdout}${r.stderr}`.trim().split('\n')[0];
};

export function machine() {
  const cpus = os.cpus();
  return {
    date: new Date().toISOString(),
    nproc: Number(spawnSync('nproc', [], { encoding: 'utf8' }).stdout.trim()) || cpus.length,
    cpuModel: cpus[0]?.model ?? 'unknown',
    memTotalMiB: Math.round(os.totalmem() / 2 ** 20),
    kernel: `${os.type()} ${os.release()}`,
    os: /PRETTY_NAME="([^"]+)"/.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? 'unknown',
    node: process.version,
    nginx: firstLine('nginx', ['-v']),
    openssl: firstLine('openssl', ['version']),
    curl: firstLine('curl', ['--version']),
    loadAvgAtStart: os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' '),
  };
}
