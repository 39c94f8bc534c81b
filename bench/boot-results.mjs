// The boot benchmark's section of bench/RESULTS.md: written by bench/boot.mjs, kept by bench/run.mjs
// (which rewrites the rest of the file), always first, right under the title.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO } from './lib.mjs';

const FILE = path.join(REPO, 'bench', 'RESULTS.md');
const BEGIN = '<!-- bench:boot -->';
const END = '<!-- /bench:boot -->';
const TARGET_MS = 300;

/** `md` (a whole RESULTS.md) with `section` (or the one in the current file) right after its title. */
export function withBootSection(md, section = currentSection()) {
  const rest = md.includes(BEGIN)
    ? md.slice(0, md.indexOf(BEGIN)) + md.slice(md.indexOf(END) + END.length).replace(/^\n+/, '')
    : md;
  if (!section) return rest;
  const nl = rest.indexOf('\n\n');
  return `${rest.slice(0, nl + 2)}${section}\n\n${rest.slice(nl + 2)}`;
}

function currentSection() {
  if (!existsSync(FILE)) return '';
  const md = readFileSync(FILE, 'utf8');
  return md.includes(BEGIN) ? md.slice(md.indexOf(BEGIN), md.indexOf(END) + END.length) : '';
}

const s = (ms) => (ms === undefined || Number.isNaN(ms) ? '–' : `${(ms / 1000).toFixed(2)} s`);
const d = (ms) =>
  ms === undefined || Number.isNaN(ms) ? '–' : `${ms >= 0 ? '+' : '−'}${(Math.abs(ms) / 1000).toFixed(2)} s`;

/** `runs`: bench/out/boot-<release>.json of each release measured, each `{date, boots, pollSeconds, seconds, releases}`. */
export function writeBootSection(runs) {
  const rows = [];
  const notes = [];
  for (const results of runs) {
    const [release, r] = Object.entries(results.releases)[0];
    const m = r.oursMarks;
    const fm = r.floorMarks;
    const upDone = m['step:stack-start'];
    const before = upDone - fm.unitExit;
    const after = m.pong - upDone - (fm.pong - fm.unitExit);
    const why = `to stack-start's summary (\`up -d\`, then the loopback check) against the floor's \`up -d\` ${d(before)}, from there to pong ${d(after)}`;
    const later = fm.boot - m.boot;
    const whyBoot = `our unit starts ${d(later)} after boot against the floor's (what each waited for: see below); then ${why}`;
    for (const [from, key, because] of [
      ["our unit's start", 'fromUnitMs', why],
      ["the machine's boot (systemd's start)", 'fromBootMs', whyBoot],
    ]) {
      const gap = r.ours[key] - r.floor[key];
      rows.push([
        release,
        from,
        s(r.ours[key]),
        s(r.floor[key]),
        d(gap),
        `≤ ${TARGET_MS / 1000} s`,
        gap <= TARGET_MS ? `met (${because})` : `**not met**: ${because}`,
      ]);
    }
    const order = Object.entries(m)
      .filter(([k]) => !['boot', 'dockerReady', 'nginxReady', 'cloudConfigDone', 'networkOnline'].includes(k))
      .sort((a, b) => a[1] - b[1])
      .map(([k, v]) => `${k.replace(/^step:/, '')} ${s(v)}`)
      .join(', ');
    notes.push(
      `- **${release}**, ours (medians, after the unit's start; each step at its summary line): ${order}. ` +
        `Floor: \`up -d\` done (the unit's exit) ${s(fm.unitExit)}, pong ${s(fm.pong)}. ` +
        `Relative to the unit's start, ours / floor: the machine's boot ${s(m.boot)} / ${s(fm.boot)}; ` +
        `Docker ready ${s(m.dockerReady)} / ${s(fm.dockerReady)}, nginx ${s(m.nginxReady)} / ${s(fm.nginxReady)}, ` +
        `cloud-config done ${s(m.cloudConfigDone)} / ${s(fm.cloudConfigDone)}. ` +
        `Docker restarted during our unit in ${r.dockerRestarts} of ${results.boots} boots.`,
    );
  }
  const header = [
    'release',
    'to `{"res":"pong"}` through nginx, from',
    'ours',
    'floor',
    'ours − floor',
    'target',
    'result',
  ];
  const table = [header, header.map(() => '---'), ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
  const section = `${BEGIN}
## Power-on to Immich through nginx, on the real engine (\`npm run bench:boot\`)

Written by \`npm run bench:boot\` (bench/boot.mjs): ${runs.map((r) => `${Object.keys(r.releases)[0]} on ${r.date} (${Math.round(r.seconds)} s${r.loadAtStart ? `; load average ${r.loadAtStart.join(' ')} at its start, ${r.loadAtEnd.join(' ')} at its end` : ''})`).join(', ')};
${os.cpus().length} cores, which other engineers' test runs may share. Medians of ${runs[0].boots} first boots per side and release,
the sides alternating; every number in \`bench/out/boot-<release>.json\`.

${table}

${notes.join('\n')}

How these numbers are made: each release's image is built as the e2e builds it (test/e2e/suite.ts):
the cached tree of \`test/env/nspawn-machine.sh\`, the stand-in Immich images imported into its Docker, the
.deb installed in a chroot, \`prepare-image\` run there: the image as it ships. **Ours** boots a fresh
\`cp -a --reflink=auto\` copy of it (the copy is made before the machine starts, outside the window) with a
NoCloud seed whose user data writes \`config.yaml\` (IMDS off). **The floor** boots another fresh copy of
the same image given what one boot of ours rendered in a third copy (\`.env\`, compose file, certificate,
claim token, credentials, the site and its link), with our units masked; nothing else of it was ever
booted, so cloud-init's and Docker's first start do the same work on both sides. There,
a test-only unit, ordered exactly as ours (its After=/Wants=/Requires=), runs only \`<compose> -p immich
-f /opt/immich/docker-compose.yml up -d\`. On both, a test-only unit started at boot polls
\`https://127.0.0.1/api/server/ping\` with curl every ${runs[0].pollSeconds * 1000} ms and records the first \`{"res":"pong"}\` with bash's
\`$EPOCHREALTIME\`, turned into the monotonic clock with a journal entry's two timestamps. "From the unit's
start" is from the unit's \`InactiveExitTimestampMonotonic\` (ours, or the floor's: when it began to
activate, so our ExecStartPre= lines and sandbox count; \`mainStart\` is its main process); "from the machine's
boot" from systemd's \`UserspaceTimestampMonotonic\` in the machine. The breakdown is our journal's
timestamps (\`__MONOTONIC_TIMESTAMP\` of each JSON line). The target is the gap ours − floor.
${END}`;
  const md = existsSync(FILE) ? readFileSync(FILE, 'utf8') : '# Benchmark results\n\n';
  writeFileSync(FILE, withBootSection(md, section));
}
