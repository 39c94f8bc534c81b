// `npm run bench:boot`: power-on to `{"res":"pong"}` through nginx over TLS, on the real Docker engine in
// the e2e's systemd-nspawn machine (test/env/nspawn-machine.sh, the cached release trees), with the
// stand-in Immich images; ours (the image as it ships: the .deb installed, prepare-image run) against
// the floor (the same machine and images, everything pre-rendered by a boot of ours, and a test-only
// unit that only runs `<compose> -p immich up -d`). Every boot is a genuine first boot of a fresh copy.
// Usage: node bench/boot.mjs [--release bookworm|trixie]... [--boots N]   (as root; minutes)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { REPO, median } from './lib.mjs';
import { writeBootSection } from './boot-results.mjs';

const { values } = parseArgs({
  options: {
    release: { type: 'string', multiple: true, default: ['bookworm', 'trixie'] },
    boots: { type: 'string', default: '5' },
    'no-write': { type: 'boolean', default: false },
  },
});
const BOOTS = Number(values.boots);
if (!(BOOTS >= 1)) throw new Error(`--boots must be a number ≥ 1, not ${values.boots}`);
for (const r of values.release)
  if (r !== 'bookworm' && r !== 'trixie') throw new Error(`--release must be bookworm or trixie, not ${r}`);

const WORK = '/var/tmp/immich-firstboot-bench';
const SCRIPT = path.join(REPO, 'test/env/nspawn-machine.sh');
const UNIT = 'immich-firstboot.service';
const FLOOR = 'ifb-bench-floor.service';
const POLLER = 'ifb-bench-pong.service';
const PONG_FILE = '/run/ifb-bench-pong';
/** The poller's interval: both sides pay the same ≤ 50 ms rounding and the same curl per poll. */
const POLL_S = 0.05;
const COMPOSE = { bookworm: 'docker-compose', trixie: 'docker compose' };
const t0 = Date.now();
const say = (msg) => console.log(`[bench:boot ${((Date.now() - t0) / 1000).toFixed(0)}s] ${msg}`);

function run(file, args, { env = {}, input, timeoutMs = 600_000 } = {}) {
  const r = spawnSync(file, args, {
    encoding: 'utf8',
    input,
    env: { ...process.env, ...env },
    timeout: timeoutMs,
    maxBuffer: 64 << 20,
  });
  if (r.status !== 0)
    throw new Error(
      `${file} ${args.join(' ')} exited ${r.status ?? r.signal}:\n${r.stdout}${r.stderr}${r.error ?? ''}`,
    );
  return r.stdout;
}
const machine = (cmd, dir, args = [], env = {}) => run('bash', [SCRIPT, cmd, dir, ...args], { env });
const inside = (dir, ...cmd) => machine('exec', dir, cmd);
const tryInside = (dir, ...cmd) => spawnSync('bash', [SCRIPT, 'exec', dir, ...cmd], { encoding: 'utf8' });
const file = (dir, p, text, mode) => {
  mkdirSync(path.dirname(path.join(dir, p)), { recursive: true });
  writeFileSync(path.join(dir, p), text, mode === undefined ? undefined : { mode });
};
const copyTree = (from, to) => {
  rmSync(to, { recursive: true, force: true });
  run('cp', ['-a', '--reflink=auto', from, to]);
};

/** The test-only units: a poller of the ping through nginx (both sides), and the floor's `up -d`. */
function benchUnits(dir, release) {
  file(
    dir,
    '/usr/local/lib/ifb-bench-pong.sh',
    [
      '#!/bin/bash',
      '# Polls the ping through nginx over TLS; writes the realtime clock of the first pong, then exits.',
      'n=0 start=$EPOCHREALTIME',
      'while ((n < 6000)); do',
      '  n=$((n + 1))',
      `  if [[ $(curl -sk --max-time 1 https://127.0.0.1/api/server/ping) == '{"res":"pong"}' ]]; then`,
      `    echo "$EPOCHREALTIME $start $n" >${PONG_FILE}.tmp && mv ${PONG_FILE}.tmp ${PONG_FILE}; exit 0`,
      '  fi',
      `  sleep ${POLL_S}`,
      'done',
      'exit 1',
      '',
    ].join('\n'),
    0o755,
  );
  file(
    dir,
    `/etc/systemd/system/${POLLER}`,
    `[Unit]\nDescription=bench: first pong through nginx\n[Service]\nType=simple\nExecStart=/usr/local/lib/ifb-bench-pong.sh\n[Install]\nWantedBy=multi-user.target\n`,
  );
  mkdirSync(path.join(dir, 'etc/systemd/system/multi-user.target.wants'), { recursive: true });
  symlinkSync(`/etc/systemd/system/${POLLER}`, path.join(dir, `etc/systemd/system/multi-user.target.wants/${POLLER}`));
  // The floor: ordered exactly as our unit is (its After=/Wants=/Requires= lines), doing only `up -d`.
  const ours = readFileSync(path.join(REPO, 'units', UNIT), 'utf8')
    .split('\n')
    .filter((l) => /^(After|Wants|Requires)=/.test(l));
  file(
    dir,
    `/etc/systemd/system/${FLOOR}`,
    [
      '[Unit]',
      'Description=bench floor: only `up -d` of the pre-rendered stack',
      ...ours,
      '[Service]',
      'Type=oneshot',
      'RemainAfterExit=yes',
      'WorkingDirectory=/opt/immich',
      `ExecStart=/usr/bin/${COMPOSE[release]} -p immich -f /opt/immich/docker-compose.yml up -d`,
      '[Install]',
      'WantedBy=multi-user.target',
      '',
    ].join('\n'),
  );
}

/** The image as it ships, built as test/e2e/suite.ts builds it, plus the bench's units. */
function buildImage(release, work) {
  const debDir = path.join(work, 'deb');
  const deb = run('bash', [path.join(REPO, 'test/e2e/build-deb.sh'), debDir])
    .trim()
    .split('\n')
    .at(-1);
  const img = path.join(work, 'image');
  machine('prepare', img, ['ifb-bench'], { IFB_RELEASE: release });
  // The image builder's earlier stage: the stand-in images into the tree's Docker, cloud-init off.
  file(img, '/etc/cloud/cloud-init.disabled', '');
  machine('boot', img);
  let cli = 'docker';
  if (tryInside(img, 'sh', '-c', 'command -v docker').status !== 0) {
    cli = '/var/tmp/standin-build/cli/usr/bin/docker';
    inside(
      img,
      'sh',
      '-c',
      'mkdir -p /var/tmp/standin-build/cli && dpkg-deb -x /var/cache/apt/archives/docker-cli_*.deb /var/tmp/standin-build/cli',
    );
  }
  mkdirSync(path.join(img, 'var/tmp/standin-build'), { recursive: true });
  run('bash', [path.join(REPO, 'test/fixtures/standin-images/build.sh')], {
    env: {
      PATH: `${path.join(REPO, 'test/e2e/shim')}:${process.env.PATH}`,
      IFB_MACHINE: img,
      IFB_MACHINE_DOCKER: cli,
      TMPDIR: path.join(img, 'var/tmp/standin-build'),
    },
  });
  machine('poweroff', img);
  rmSync(path.join(img, 'var/tmp/standin-build'), { recursive: true, force: true });
  writeFileSync(path.join(img, 'etc/machine-id'), '');
  rmSync(path.join(img, 'etc/cloud/cloud-init.disabled'));
  generalise(img);
  // The deployment's data: NoCloud's seed, whose user data writes our config.yaml (IMDS off).
  file(img, '/var/lib/cloud/seed/nocloud/meta-data', 'instance-id: ifb-bench\nlocal-hostname: immich-bench\n');
  file(
    img,
    '/var/lib/cloud/seed/nocloud/user-data',
    "#cloud-config\nwrite_files:\n  - path: /etc/immich-firstboot/config.yaml\n    permissions: '0644'\n    content: |\n      imds:\n        enabled: false\n",
  );
  // Installed and prepared as an image builder does: no systemd, no network, then prepare-image.
  writeFileSync(path.join(img, 'var/tmp/immich-firstboot.deb'), readFileSync(deb));
  machine('chroot', img, [
    'sh',
    '-c',
    'cd /var/tmp && apt-get install -y --no-install-recommends ./immich-firstboot.deb',
  ]);
  rmSync(path.join(img, 'var/tmp/immich-firstboot.deb'));
  // The stand-ins cannot match the shipped compose file's @sha256 digests (as in the e2e).
  const compose = path.join(img, 'usr/lib/immich-firstboot/compose/docker-compose.yml');
  writeFileSync(compose, readFileSync(compose, 'utf8').replace(/@sha256:[0-9a-f]{64}/g, ''));
  machine('chroot', img, ['immich-firstboot', 'prepare-image']);
  benchUnits(img, release);
  rmSync(debDir, { recursive: true, force: true });
  return img;
}

/** As a captured image: no cloud-init state of a previous boot (the seed is kept), an empty machine-id. */
function generalise(dir) {
  writeFileSync(path.join(dir, 'etc/machine-id'), '');
  for (const p of ['var/lib/cloud/instance', 'var/lib/cloud/instances', 'var/lib/cloud/data', 'var/lib/cloud/sem'])
    rmSync(path.join(dir, p), { recursive: true, force: true });
  rmSync(path.join(dir, 'var/log/cloud-init.log'), { force: true });
  rmSync(path.join(dir, 'var/log/cloud-init-output.log'), { force: true });
}

/**
 * The floor's image: a fresh copy of the image as it ships, given the files one boot of ours rendered in
 * another copy (.env, compose file, certificate, claim token, credentials, the site and its link), with
 * our units masked and the floor's unit enabled. Everything else is the image's own, untouched by any
 * boot: cloud-init's and Docker's first start do the same work on both sides.
 */
function buildFloor(release, img, work) {
  const donor = path.join(work, 'donor');
  copyTree(img, donor);
  machine('boot', donor, [], { IFB_BOOT_TIMEOUT: '180' });
  waitPong(donor);
  machine('poweroff', donor);
  const floor = path.join(work, 'floor');
  copyTree(img, floor);
  for (const p of [
    'opt/immich',
    'etc/immich-firstboot',
    'etc/nginx/sites-available/immich',
    'root/immich-credentials.txt',
  ]) {
    rmSync(path.join(floor, p), { recursive: true, force: true });
    run('cp', ['-a', path.join(donor, p), path.join(floor, p)]);
  }
  // The data directories as our first boot finds them: none (compose's bind mounts make them).
  for (const p of ['opt/immich/postgres', 'opt/immich/library'])
    rmSync(path.join(floor, p), { recursive: true, force: true });
  rmSync(path.join(floor, 'etc/nginx/sites-enabled/default'), { force: true });
  symlinkSync('/etc/nginx/sites-available/immich', path.join(floor, 'etc/nginx/sites-enabled/immich'));
  machine('cleanup', donor);
  for (const unit of [UNIT, 'immich-firstboot-perboot.service'])
    symlinkSync('/dev/null', path.join(floor, 'etc/systemd/system', unit));
  symlinkSync(`/etc/systemd/system/${FLOOR}`, path.join(floor, `etc/systemd/system/multi-user.target.wants/${FLOOR}`));
  return floor;
}

function waitPong(dir) {
  for (let i = 0; i < 600; i++) {
    const r = tryInside(dir, 'cat', PONG_FILE);
    if (r.status === 0 && r.stdout.trim()) return r.stdout.trim();
    spawnSync('sleep', ['0.2']);
  }
  throw new Error(`${dir}: no pong within 120 s; console log ${dir}.console.log`);
}

const props = (dir, unit, list) =>
  Object.fromEntries(
    inside(dir, 'systemctl', 'show', ...(unit ? [unit] : []), '-p', list)
      .trim()
      .split('\n')
      .map((l) => l.split('=', 2))
      .map(([k, v]) => [k, Number(v)]),
  );

/** One boot of a fresh copy of `image`; times in ms, all on the machine's monotonic clock. */
function boot(kind, image, work) {
  const dir = path.join(work, 'run');
  copyTree(image, dir); // outside the measured window: the clock is systemd's, inside the machine
  machine('boot', dir, [], { IFB_BOOT_TIMEOUT: '180' });
  try {
    const [pongReal, , polls] = waitPong(dir).split(' ').map(Number);
    // Realtime → monotonic: a journal entry carries both clocks, read at the same instant.
    const entry = JSON.parse(inside(dir, 'journalctl', '-b', '0', '-n', '1', '-o', 'json').trim().split('\n').at(-1));
    const offsetUs = Number(entry.__REALTIME_TIMESTAMP) - Number(entry.__MONOTONIC_TIMESTAMP);
    const pong = (pongReal * 1e6 - offsetUs) / 1000;
    const unit = kind === 'ours' ? UNIT : FLOOR;
    // The unit's start is when it left "inactive": its ExecStartPre= lines and sandbox are its cost too.
    const u = props(
      dir,
      unit,
      'InactiveExitTimestampMonotonic,ExecMainStartTimestampMonotonic,ExecMainExitTimestampMonotonic,ExecMainStatus',
    );
    if (u.ExecMainStatus !== 0) throw new Error(`${unit} exited ${u.ExecMainStatus}`);
    const boot = props(dir, '', 'UserspaceTimestampMonotonic').UserspaceTimestampMonotonic / 1000;
    const docker = props(
      dir,
      'docker.service',
      'ActiveEnterTimestampMonotonic,NRestarts,ExecMainStartTimestampMonotonic',
    );
    const start = u.InactiveExitTimestampMonotonic / 1000;
    // What the unit is ordered after: which of them it waited for.
    const ready = (u) => props(dir, u, 'ActiveEnterTimestampMonotonic').ActiveEnterTimestampMonotonic / 1000;
    const marks = {
      boot,
      dockerReady: docker.ActiveEnterTimestampMonotonic / 1000,
      nginxReady: ready('nginx.service'),
      cloudConfigDone: ready('cloud-config.service'),
      networkOnline: ready('network-online.target'),
      mainStart: u.ExecMainStartTimestampMonotonic / 1000,
      unitExit: u.ExecMainExitTimestampMonotonic / 1000,
      pong,
    };
    if (kind === 'ours') Object.assign(marks, ourMarks(dir));
    const rel = Object.fromEntries(Object.entries(marks).map(([k, v]) => [k, v - start]));
    return {
      kind,
      fromUnitMs: pong - start,
      fromBootMs: pong - boot,
      polls,
      dockerRestartedDuringUnit: docker.ExecMainStartTimestampMonotonic / 1000 > start,
      marks: rel,
    };
  } finally {
    machine('cleanup', dir);
  }
}

/** Our journal's lines, as times: the program's first line, each step's summary, `up -d` done. */
function ourMarks(dir) {
  const marks = {};
  for (const l of inside(dir, 'journalctl', '-b', '0', '-u', UNIT, '-o', 'json', '--no-pager').split('\n')) {
    if (!l.trim()) continue;
    const e = JSON.parse(l);
    if (typeof e.MESSAGE !== 'string' || !e.MESSAGE.startsWith('{')) continue;
    let rec;
    try {
      rec = JSON.parse(e.MESSAGE);
    } catch {
      continue;
    }
    const at = Number(e.__MONOTONIC_TIMESTAMP) / 1000;
    if (rec.msg === 'first boot starting') marks.programStart = at;
    if (rec.step && 'changed' in rec) marks[`step:${rec.step}`] = at;
  }
  return marks;
}

const f = (ms) => (ms === undefined || Number.isNaN(ms) ? '–' : `${(ms / 1000).toFixed(2)} s`);
const results = { boots: BOOTS, pollSeconds: POLL_S, releases: {} };
const load = () => os.loadavg().map((l) => l.toFixed(2));
for (const release of values.release) {
  const started = { at: Date.now(), date: new Date().toISOString(), load: load() };
  const work = path.join(WORK, release);
  for (const d of ['run', 'donor', 'floor', 'image'])
    if (existsSync(path.join(work, d))) spawnSync('bash', [SCRIPT, 'cleanup', path.join(work, d)]);
  mkdirSync(work, { recursive: true });
  try {
    say(`${release}: building the image (the .deb, the stand-in images, prepare-image)`);
    const img = buildImage(release, work);
    say(`${release}: building the floor's image (one boot of ours renders everything)`);
    const floor = buildFloor(release, img, work);
    const boots = [];
    for (let i = 0; i < BOOTS; i++) {
      for (const kind of i % 2 ? ['floor', 'ours'] : ['ours', 'floor']) {
        const b = boot(kind, kind === 'ours' ? img : floor, work);
        say(
          `${release} ${kind} #${i + 1}: pong ${f(b.fromUnitMs)} after the unit's start, ${f(b.fromBootMs)} after boot`,
        );
        boots.push(b);
      }
    }
    results.releases[release] = summarise(boots);
    // One file per release, so that `--release trixie` alone leaves bookworm's last numbers in the section.
    mkdirSync(path.join(REPO, 'bench/out'), { recursive: true });
    const one = {
      ...results,
      date: started.date,
      releases: { [release]: results.releases[release] },
      seconds: (Date.now() - started.at) / 1000,
      loadAtStart: started.load,
      loadAtEnd: load(),
    };
    writeFileSync(path.join(REPO, `bench/out/boot-${release}.json`), JSON.stringify(one, null, 2));
  } finally {
    for (const d of ['run', 'donor', 'floor', 'image']) spawnSync('bash', [SCRIPT, 'cleanup', path.join(work, d)]);
  }
}

function summarise(boots) {
  const side = (kind) => boots.filter((b) => b.kind === kind);
  const med = (list, pick) => median(list.map(pick).filter((x) => x !== undefined));
  const ours = side('ours');
  const floor = side('floor');
  const keys = [...new Set(ours.flatMap((b) => Object.keys(b.marks)))];
  return {
    ours: { fromUnitMs: med(ours, (b) => b.fromUnitMs), fromBootMs: med(ours, (b) => b.fromBootMs) },
    floor: { fromUnitMs: med(floor, (b) => b.fromUnitMs), fromBootMs: med(floor, (b) => b.fromBootMs) },
    dockerRestarts: ours.filter((b) => b.dockerRestartedDuringUnit).length,
    /** Median time of each mark, ms from the unit's start. */
    oursMarks: Object.fromEntries(keys.map((k) => [k, med(ours, (b) => b.marks[k])])),
    floorMarks: Object.fromEntries(Object.keys(floor[0].marks).map((k) => [k, med(floor, (b) => b.marks[k])])),
    boots,
  };
}

for (const [release, r] of Object.entries(results.releases))
  say(
    `${release}: ours ${f(r.ours.fromUnitMs)} / floor ${f(r.floor.fromUnitMs)} from the unit's start (gap ${f(r.ours.fromUnitMs - r.floor.fromUnitMs)}); ` +
      `from boot ${f(r.ours.fromBootMs)} / ${f(r.floor.fromBootMs)} (gap ${f(r.ours.fromBootMs - r.floor.fromBootMs)})`,
  );
say(`bench/out/boot-{${Object.keys(results.releases).join(',')}}.json written`);
if (!values['no-write']) {
  const all = ['bookworm', 'trixie']
    .map((r) => path.join(REPO, `bench/out/boot-${r}.json`))
    .filter((p) => existsSync(p))
    .map((p) => JSON.parse(readFileSync(p, 'utf8')));
  writeBootSection(all);
  // `npm run lint` checks bench/ with Prettier, tables included.
  spawnSync('npx', ['prettier', '--write', 'bench/RESULTS.md'], { cwd: REPO, stdio: 'ignore' });
  say('bench/RESULTS.md: its boot section written');
}
