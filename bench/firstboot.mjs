// Benches 1-3 and 5: the first boot against a shell baseline, CLI latency and peak RSS, the overhead a
// first boot adds once the (stand-in) stack is ready, and the per-boot check where nothing changed.
// Every run uses a fresh root with IMDS off.
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import path from 'node:path';
import {
  BIN,
  FIXTURE_BIN,
  REPO,
  TMP,
  alternate,
  freePort,
  freshRoot,
  maxRssKiB,
  median,
  stats,
  timed,
} from './lib.mjs';

const node = process.execPath;

/** Where a run's time went, from its own log: spawn → first line, then each step (ms), then → exit. */
function phasesOf(stdout, t0, end) {
  const out = {};
  let prev = t0;
  for (const line of stdout.split('\n').filter((l) => l.startsWith('{'))) {
    const l = JSON.parse(line);
    const t = Date.parse(l.time);
    const key = l.step ?? (prev === t0 ? 'start (Node, bundle, config, lock)' : 'finish');
    out[key] = (out[key] ?? 0) + (t - prev);
    prev = t;
  }
  out.exit = end - prev;
  return out;
}

/** A root where first boot is done (`run --skip-stack`). */
function doneRoot() {
  const root = freshRoot();
  timed(node, [BIN, '--root', root, 'run', '--skip-stack']);
  return root;
}

/** The floor a Node CLI can reach. */
const nodeFloor = () => timed(node, ['-e', '0']).ms;

/** 1. `run --skip-stack` vs bench/baseline-firstboot.sh, alternating, each into its own fresh root. */
export function renderOnly(runs) {
  const ours = [];
  const shell = [];
  const phases = [];
  const baseline = path.join(REPO, 'bench', 'baseline-firstboot.sh');
  // One untimed warm-up of each (page cache, openssl's first load).
  timed(node, [BIN, '--root', freshRoot(), 'run', '--skip-stack']);
  timed('bash', [baseline, freshRoot()]);
  for (let i = 0; i < runs; i++) {
    const a = freshRoot();
    const b = freshRoot();
    const pair = [
      () => {
        const t0 = Date.now();
        const run = timed(node, [BIN, '--root', a, 'run', '--skip-stack']);
        ours.push(run.ms);
        phases.push(phasesOf(run.stdout, t0, t0 + run.ms));
      },
      () => shell.push(timed('bash', [baseline, b]).ms),
    ];
    if (i % 2) pair.reverse();
    pair.forEach((f) => f());
    if (!existsSync(path.join(a, 'var/lib/immich-firstboot/done')))
      throw new Error(`run --skip-stack did not finish in ${a}`);
  }
  const keys = Object.keys(phases[0] ?? {});
  const phaseMs = Object.fromEntries(keys.map((k) => [k, median(phases.map((p) => p[k] ?? 0))]));
  return { oursMs: stats(ours), baselineMs: stats(shell), ratio: median(ours) / median(shell), phaseMs };
}

/** 2. `status` on a done root vs `node -e 0`, alternating; peak RSS of `run --skip-stack` via /usr/bin/time -v. */
export function cliLatency(runs, rssRuns) {
  const done = doneRoot();
  timed(node, [BIN, '--root', done, 'status']);
  timed(node, ['-e', '0']);
  const [status, floor] = alternate(runs, () => timed(node, [BIN, '--root', done, 'status']).ms, nodeFloor);
  const rss = [];
  for (let i = 0; i < rssRuns; i++) {
    rss.push(
      maxRssKiB(timed('/usr/bin/time', ['-v', node, BIN, '--root', freshRoot(), 'run', '--skip-stack']).stderr) / 1024,
    );
  }
  return {
    statusMs: stats(status),
    nodeMs: stats(floor),
    ratio: median(status) / median(floor),
    peakRssSkipStackMiB: stats(rss),
  };
}

/**
 * Debian 12's Node 18 as test/env/node18.sh installs it (the runtime's major version), its binary run directly
 * (not the wrapper script, which would add a shell to both sides); undefined when it is not installed.
 */
export function node18() {
  const dir = path.join(process.env.IFB_CACHE ?? '/var/cache/immich-firstboot-ci', 'node18', 'root', 'usr');
  const bin = path.join(dir, 'bin', 'node');
  if (!existsSync(bin)) return undefined;
  const env = { ...process.env, LD_LIBRARY_PATH: path.join(dir, 'lib', 'x86_64-linux-gnu') };
  return timed(bin, ['-e', '0'], { env }) && { bin, env };
}

/**
 * 5. `per-boot` on a done root where nothing changed (same instance, same addresses) vs `node -e 0`, and
 * `status` vs `node -e 0`, with another Node (`runtime`: node18()): the pairs alternate in one loop.
 */
export function perBootLatency(runs, runtime) {
  const done = doneRoot();
  const other = runtime && {
    perBoot: () => timed(runtime.bin, [BIN, '--root', done, 'per-boot'], { env: runtime.env }).ms,
    status: () => timed(runtime.bin, [BIN, '--root', done, 'status'], { env: runtime.env }).ms,
    node: () => timed(runtime.bin, ['-e', '0'], { env: runtime.env }).ms,
  };
  const perBoot = () => {
    const run = timed(node, [BIN, '--root', done, 'per-boot']);
    // Only the no-change path is measured here; a clone or an address change is real work.
    if (!run.stdout.includes('nothing to do'))
      throw new Error(`per-boot did not take the no-change path: ${run.stdout.slice(-400)}`);
    return run.ms;
  };
  perBoot();
  timed(node, ['-e', '0']);
  const [ours, floor] = alternate(runs, perBoot, nodeFloor);
  const result = { perBootMs: stats(ours), nodeMs: stats(floor), ratio: median(ours) / median(floor) };
  if (!other) return result;
  Object.values(other).forEach((f) => f());
  const [p18, n18] = alternate(runs, other.perBoot, other.node);
  const [s18, m18] = alternate(runs, other.status, other.node);
  return {
    ...result,
    node18: {
      version: timed(runtime.bin, ['--version'], { env: runtime.env }).stdout.trim(),
      perBootMs: stats(p18),
      nodeMs: stats(n18),
      ratio: median(p18) / median(n18),
      statusMs: stats(s18),
      statusNodeMs: stats(m18),
      statusRatio: median(s18) / median(m18),
    },
  };
}

const killStandins = (dir) => {
  const file = path.join(dir, 'server.pids');
  if (!existsSync(file)) return;
  for (const pid of readFileSync(file, 'utf8').split('\n').filter(Boolean)) {
    try {
      process.kill(Number(pid));
    } catch {
      /* gone already */
    }
  }
};

/** 3. A whole first boot with the stand-in docker whose server answers pong N s after it starts. */
export async function stackOverhead(delaysS, runsEach) {
  const env = (dir, port, delayS) => ({
    ...process.env,
    PATH: `${FIXTURE_BIN}:${process.env.PATH}`,
    STANDIN_DIR: dir,
    STANDIN_PING_PORT: String(port),
    STANDIN_PONG_DELAY_MS: String(delayS * 1000),
  });
  // What one call of the stand-in docker (a Node script) costs: the real CLI is a Go binary.
  const probe = mkdtempSync(path.join(TMP, 'standin-'));
  const callMs = median(
    Array.from({ length: 5 }, () => timed(path.join(FIXTURE_BIN, 'docker'), ['info'], { env: env(probe, 1, 0) }).ms),
  );
  const byDelay = Object.fromEntries(
    delaysS.map((n) => [
      n,
      {
        totalMs: [],
        overheadMs: [],
        beforeStackMs: [],
        readyLagMs: [],
        afterReadyMs: [],
        peakRssMiB: [],
        dockerCalls: 0,
      },
    ]),
  );
  for (let i = 0; i < runsEach; i++) {
    for (const n of i % 2 ? [...delaysS].reverse() : delaysS) {
      const port = await freePort();
      const root = freshRoot(`stack:\n  serverUrl: http://127.0.0.1:${port}\n  readyTimeoutSeconds: 30\n`);
      const dir = mkdtempSync(path.join(TMP, 'standin-'));
      const t0 = Date.now();
      let run;
      try {
        run = timed('/usr/bin/time', ['-v', node, BIN, '--root', root], { env: env(dir, port, n) });
      } finally {
        killStandins(dir);
      }
      const lines = run.stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l));
      const at = (step) => Date.parse(lines.find((l) => l.step === step && l.changed)?.time ?? 'x');
      const upDone = at('stack-start');
      const ready = at('stack-ready');
      const r = byDelay[n];
      r.totalMs.push(run.ms);
      r.overheadMs.push(run.ms - n * 1000);
      r.beforeStackMs.push(upDone - t0);
      r.readyLagMs.push(ready - upDone - n * 1000);
      r.afterReadyMs.push(t0 + run.ms - ready);
      r.peakRssMiB.push(maxRssKiB(run.stderr) / 1024);
      r.dockerCalls = readFileSync(path.join(dir, 'argv.log'), 'utf8').trim().split('\n').length;
    }
  }
  const out = { standinDockerCallMs: callMs };
  for (const [n, r] of Object.entries(byDelay)) {
    out[`N=${n}s`] = Object.fromEntries(Object.entries(r).map(([k, v]) => [k, Array.isArray(v) ? stats(v) : v]));
  }
  return out;
}
