// `npm run bench`: runs benches 1-5, prints the table, writes bench/out/results-<date>.json (+ latest.json)
// and bench/RESULTS.md. Ratios are the point: the machine is shared, absolute times drift.
// BENCH_QUICK=1 runs a few rounds of each with a small body, to check the harness itself.
// RESULTS.md's other sections are kept as they stand: bench:boot's (npm run bench:boot), first, and the
// hand-measured one (callgrind's instruction counts, between bench:kept's markers), last.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { withBootSection } from './boot-results.mjs';
import { door, doorHow, doorRows } from './door.mjs';
import { cliLatency, node18, perBootLatency, renderOnly, stackOverhead } from './firstboot.mjs';
import { KEPT_BEGIN, KEPT_END, keptSection, withKeptSection } from './kept-section.mjs';
import { REPO, TMP, machine, preflight } from './lib.mjs';

const quick = process.env.BENCH_QUICK === '1';
const plan = quick
  ? {
      render: 3,
      cli: 3,
      rss: 1,
      stack: 1,
      perBoot: 3,
      door: {
        bytes: 64 << 20,
        rttBytes: 16 << 20,
        rttMs: 20,
        rounds: 1,
        uploadBudgetMs: 30_000,
        handshakeRounds: 2,
        handshakeMs: 300,
      },
    }
  : {
      render: 15,
      cli: 20,
      rss: 5,
      stack: 10,
      perBoot: 20,
      door: {
        bytes: 2 ** 30,
        rttBytes: 128 << 20,
        rttMs: 20,
        rounds: 10,
        uploadBudgetMs: 240_000,
        handshakeRounds: 10,
        handshakeMs: 1500,
      },
    };

preflight();
const RESULTS = path.join(REPO, 'bench', 'RESULTS.md');
// Read now, so that a missing marker is said before the minutes of benches, and again at the end.
const kept = existsSync(RESULTS) ? keptSection(readFileSync(RESULTS, 'utf8')) : { problem: 'no such file' };
function warnKept() {
  if (!kept.problem) return;
  process.stderr.write(
    `bench: warning: bench/RESULTS.md: ${kept.problem}, so ${quick ? 'a full run would leave' : 'this run leaves'} its ` +
      `hand-measured section (valgrind callgrind) out; put it back between ${KEPT_BEGIN} and ${KEPT_END} ` +
      '(git log -p bench/RESULTS.md has it)\n',
  );
}
warnKept();
const f = (x, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
const t0 = Date.now();
const results = { machine: machine(), plan };
const step = async (name, fn) => {
  process.stderr.write(`bench: ${name} ...`);
  const s = Date.now();
  results[name] = await fn();
  process.stderr.write(` ${((Date.now() - s) / 1000).toFixed(0)} s\n`);
};

try {
  await step('renderOnly', () => renderOnly(plan.render));
  await step('cli', () => cliLatency(plan.cli, plan.rss));
  await step('perBoot', () => perBootLatency(plan.perBoot, node18()));
  await step('stack', () => stackOverhead([2, 5], plan.stack));
  await step('door', () => door(plan.door));
} finally {
  rmSync(TMP, { recursive: true, force: true });
}
results.machine.loadAvgAtEnd = os
  .loadavg()
  .map((x) => x.toFixed(2))
  .join(' ');
results.machine.benchSeconds = Math.round((Date.now() - t0) / 1000);

const { renderOnly: r1, cli: r2, stack: r3, door: r4, perBoot: r5 } = results;
const s2 = r3['N=2s'];
const s5 = r3['N=5s'];
const worstOverhead = Math.max(s2.overheadMs.median, s5.overheadMs.median);
const rssMax = Math.max(r2.peakRssSkipStackMiB.max, s2.peakRssMiB.max, s5.peakRssMiB.max);
const met = (ok, why) => (ok ? 'met' : `**not met**: ${why}`);
/**
 * A start-time ratio (≤ 1.3×) is judged on the VM's runtime, Node 18 (Ubuntu 24.04's nodejs; here Debian 12's,
 * test/env/node18.sh) when it was measured; this machine's Node 20, which runs the tests, is reported beside it.
 */
const onRuntime = (node20, node18, why) => {
  if (node18 === undefined) return met(node20 <= 1.3, why);
  const also = `on Node 20 (this machine's, for the tests) ${f(node20, 2)}×`;
  return node18 <= 1.3
    ? `met on Node 18, the runtime; ${node20 <= 1.3 ? `and ${also}` : `not ${also}: ${why}`}`
    : `**not met** on Node 18, the runtime (${f(node18, 2)}×): ${why}; ${also}`;
};

const rows = [
  [
    '1',
    'render-only first boot (`run --skip-stack`) vs shell baseline',
    `${f(r1.oursMs.median)} ms`,
    `${f(r1.baselineMs.median)} ms`,
    `${f(r1.ratio, 2)}×`,
    '≤ 2.0×',
    met(
      r1.ratio <= 2,
      `the whole baseline takes about as long as our start alone (spawn → first log line: ${f(r1.phaseMs['start (Node, bundle, config, lock)'])} ms; \`node -e 0\` is ${f(r2.nodeMs.median)} ms); then docker-logs ${f(r1.phaseMs['docker-logs'])} ms, tls-cert ${f(r1.phaseMs['tls-cert'])} ms (\`openssl req\`), nginx-site ${f(r1.phaseMs['nginx-site'])} ms, host-facts + env + compose-file + credentials ${f(['host-facts', 'env', 'compose-file', 'credentials'].reduce((a, k) => a + (r1.phaseMs[k] ?? 0), 0))} ms (fsync'd atomic writes, journal)`,
    ),
  ],
  [
    '2a',
    `\`status\` on a done root vs \`node -e 0\`${r5.node18 ? ' (Node 20; Node 18)' : ''}`,
    `${f(r2.statusMs.median)}${r5.node18 ? `; ${f(r5.node18.statusMs.median)}` : ''} ms`,
    `${f(r2.nodeMs.median)}${r5.node18 ? `; ${f(r5.node18.statusNodeMs.median)}` : ''} ms`,
    `${f(r2.ratio, 2)}×${r5.node18 ? `; ${f(r5.node18.statusRatio, 2)}×` : ''}`,
    '≤ 1.3×',
    onRuntime(
      r2.ratio,
      r5.node18?.statusRatio,
      'what is left over `node -e 0`: loading the entry and the two small chunks `status` imports (none of yaml, Handlebars, execa or pino; no source map), reading the journal, the done-stamp and the lock',
    ),
  ],
  [
    '2b',
    'peak RSS of a first boot (`/usr/bin/time -v`; `--skip-stack`, and with the stand-in stack)',
    `${f(r2.peakRssSkipStackMiB.max, 1)} / ${f(Math.max(s2.peakRssMiB.max, s5.peakRssMiB.max), 1)} MiB`,
    '',
    '',
    '≤ 80 MiB',
    met(rssMax <= 80, 'over budget'),
  ],
  [
    '3',
    'first boot with the stand-in stack: wall time − N (N = 2 s, 5 s)',
    `${f(s2.overheadMs.median)} / ${f(s5.overheadMs.median)} ms`,
    '',
    '',
    '≤ 300 ms',
    met(
      worstOverhead <= 300,
      `before the stack even starts: ${f(s2.beforeStackMs.median)} ms (launch → \`up -d\` and its loopback check); stack-start done + N → ready: ${f(s2.readyLagMs.median)} ms (the 100 ms poll, then docker ps/inspect, ss and /api/server/config at once); ready → exit: ${f(s2.afterReadyMs.median)} ms. ${s2.dockerCalls} stand-in docker calls at ~${f(r3.standinDockerCallMs)} ms each (a Node script; the real CLI is faster). What this row stands for is measured on the real engine by \`npm run bench:boot\` (the section above: ours − floor)`,
    ),
  ],
  ...doorRows(r4, results.machine),
  [
    '5',
    `\`per-boot\` check, nothing changed, vs \`node -e 0\`${r5.node18 ? ' (Node 20; Node 18)' : ''}`,
    `${f(r5.perBootMs.median)}${r5.node18 ? `; ${f(r5.node18.perBootMs.median)}` : ''} ms`,
    `${f(r5.nodeMs.median)}${r5.node18 ? `; ${f(r5.node18.nodeMs.median)}` : ''} ms`,
    `${f(r5.ratio, 2)}×${r5.node18 ? `; ${f(r5.node18.ratio, 2)}×` : ''}`,
    '≤ 1.3×',
    onRuntime(
      r5.ratio,
      r5.node18?.ratio,
      "what is left over `node -e 0`: the entry and the check's chunks (no dependency: the Config the journal recorded, no YAML parser; its own log line, no pino), four small files read, the interfaces",
    ),
  ],
];
const header = ['#', 'measure', 'ours', 'baseline', 'ratio', 'target', 'result'];
const table = [header, header.map(() => '---'), ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
const m = results.machine;

const md = `# Benchmark results

Written by \`npm run bench\` (bench/run.mjs) on ${m.date}; ${m.benchSeconds} s in all. Re-run it to refresh
this file; the full numbers (medians, min, max, every breakdown) are in \`bench/out/latest.json\`.

**Machine**: ${m.nproc} × ${m.cpuModel}, ${m.memTotalMiB} MiB, ${m.kernel} (${m.os}); Node ${m.node}; ${m.nginx};
${m.openssl}; ${m.curl.split(' (')[0]}. Load average at start ${m.loadAvgAtStart}, at end ${m.loadAvgAtEnd}.
The machine is shared with other engineers running test suites: absolute times drift from run to run,
the ratios (both sides measured in the same run, alternating) hold.

${table}

## How each number is made
1. ${r1.oursMs.n} alternating pairs after one warm-up each, every run into its own fresh root (config \`imds: {enabled: false}\`:
   nothing contacts 169.254.169.254): \`node dist/immich-firstboot.mjs --root R run --skip-stack\` vs
   \`bash bench/baseline-firstboot.sh R\` (openssl rand, heredocs, one \`openssl req\` ECDSA P-256 with IP SANs,
   one \`openssl x509 -fingerprint\`). Wall time from spawn to exit, medians (ours ${f(r1.oursMs.min)}–${f(r1.oursMs.max)} ms,
   baseline ${f(r1.baselineMs.min)}–${f(r1.baselineMs.max)} ms).
2. ${r2.statusMs.n} alternating pairs of \`status\` on a done root and \`node -e 0\`. Peak RSS: \`/usr/bin/time -v\`
   (Maximum resident set size: the largest process of the tree, i.e. our Node process) over ${r2.peakRssSkipStackMiB.n} \`--skip-stack\`
   runs, and over every bench-3 run, which is a full first boot with the stand-in stack.
3. A full first boot with \`test/fixtures/bin/docker\` (the stand-in) first on PATH, its server on a free
   loopback port named in \`stack.serverUrl\`, answering pong N s after it starts (\`STANDIN_PONG_DELAY_MS\`);
   ${s2.totalMs.n} runs per N, N alternating; stand-in servers killed from \`server.pids\` after each run.
   Total wall time (spawn → exit) minus N. The breakdown comes from the run's own log timestamps.
   N=2: ${f(s2.totalMs.median)} ms total; N=5: ${f(s5.totalMs.median)} ms total.
${doorHow(r4, plan.door)}
5. ${r5.perBootMs.n} alternating pairs of \`per-boot\` on a done root (\`run --skip-stack\`; same instance, same
   addresses: every run checked to have said "nothing to do") and \`node -e 0\`; medians (per-boot
   ${f(r5.perBootMs.min)}–${f(r5.perBootMs.max)} ms). Its no-change path takes no lock, writes nothing and starts no process.${
     r5.node18
       ? `
   Then the same ${r5.node18.perBootMs.n} pairs, and ${r5.node18.statusMs.n} of \`status\`, with Debian 12's Node ${r5.node18.version} (test/env/node18.sh;
   its binary run directly): the runtime's major version, Ubuntu 24.04's being 18.19.`
       : ''
   }

hyperfine is not used: it runs each command's runs as one block, and these benches alternate the two
sides run by run so that drift on this shared machine hits both alike.
`;

mkdirSync(path.join(REPO, 'bench', 'out'), { recursive: true });
const json = JSON.stringify(results, null, 2);
writeFileSync(path.join(REPO, 'bench', 'out', `results-${m.date.replace(/[:.]/g, '-')}.json`), json);
writeFileSync(path.join(REPO, 'bench', 'out', 'latest.json'), json);
// The boot benchmark's section (npm run bench:boot) stays, first; the hand-measured one, last.
if (!quick) {
  writeFileSync(RESULTS, withBootSection(withKeptSection(md, kept.section)));
  // `npm run lint` checks bench/ with Prettier, tables included (bench:boot does the same).
  spawnSync('npx', ['prettier', '--write', RESULTS], { cwd: REPO, stdio: 'ignore' });
}
console.log(table);
console.log(
  `\n${quick ? 'quick run: bench/RESULTS.md left as it was' : 'bench/RESULTS.md written'}; details in bench/out/latest.json`,
);
warnKept();
