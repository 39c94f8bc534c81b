// End to end under a real systemd, on the image as it ships, for each supported Debian release: the
// built .deb installed with `apt-get install --no-install-recommends` into a tree while no systemd runs
// (as image builders do; its Depends must bring the docker CLI and compose from the release's own
// packages, offline), then the tree booted with systemd-nspawn (PID-1 systemd, cloud-init active with a
// NoCloud seed whose user data writes our config.yaml, Docker inside, stand-in Immich images): the first
// boot runs once, after cloud-init, the second does nothing, a third with a new machine-id is a clone
// (per-boot: new certificate, the secret kept), and a fourth with a new address renews the certificate.
// A copy of the same image, made before any boot, is deployed a second time with a domain and an e-mail
// in its custom data: its first boot ends serving a certificate from pebble (test/e2e/pebble.ts), the
// ACME test CA running inside that machine. A third copy is deployed with a data disk at LUN 0 (a loop
// device passed in): test/e2e/data-disk.ts.
// test/e2e/<release>.test.ts each run this suite for one release.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO } from '../support/cli.js';
import { FIRST_BOOT } from '../../src/steps/index.js';
import { dataDiskDeployment } from './data-disk.js';
import { dockerAcross, prepareImageInChroot } from './docker-restart.js';
import { Machine } from './machine.js';
import { LE, leUserData, writePebbleScaffolding } from './pebble.js';

export type Release = 'bookworm' | 'trixie';

const WORK = '/var/tmp/immich-firstboot-e2e';
const UNIT = 'immich-firstboot.service';
const PERBOOT = 'immich-firstboot-perboot.service';
const DATA_DISK = 'immich-firstboot-data-disk.service';
const CERT = '/etc/immich-firstboot/tls/current/cert.pem';
/** What the deployment's user data gives the VM (NoCloud seed): a hostname, our config, a runcmd. */
const EXTRA_NAME = 'photos.e2e.test';
const RUNCMD_MARKER = '/var/lib/ifb-e2e-runcmd-ran';
const userData = [
  '#cloud-config',
  'write_files:',
  '  - path: /etc/immich-firstboot/config.yaml',
  "    permissions: '0644'",
  '    content: |',
  "      # written by cloud-init from the deployment's user data",
  '      imds:',
  '        enabled: false',
  '      extraNames:',
  `        - ${EXTRA_NAME}`,
  'runcmd:',
  `  - [ sh, -c, 'date -u +%s > ${RUNCMD_MARKER}' ]`,
  '',
].join('\n');

export interface Expected {
  /** The compose command the release's packages give (the journal names it). */
  compose: string;
  /** `systemctl --version`'s first line. */
  systemd: RegExp;
  /** Whether ProtectHome=tmpfs + BindPaths=/root (the first round's sandbox) still lets a unit write /root. */
  oldSandboxWritesRoot: boolean;
  /** Whether the release's OpenSSL (3.5+) knows X25519MLKEM768, so the site leads its groups with it. */
  hybridKeyExchange: boolean;
}

/** The deployment's data, as Azure's custom data reaches cloud-init: NoCloud's seed directory. */
function writeSeed(m: Machine, instanceId: string, hostname: string, data: string): void {
  const seed = m.host('/var/lib/cloud/seed/nocloud');
  mkdirSync(seed, { recursive: true });
  writeFileSync(path.join(seed, 'meta-data'), `instance-id: ${instanceId}\nlocal-hostname: ${hostname}\n`);
  writeFileSync(path.join(seed, 'user-data'), data);
}

/**
 * A stand-in necessity, not part of what is proven: the stand-in images can never match the pinned
 * @sha256 digests of the shipped compose file, so the installed data file loses its digests (everything
 * else of it is used as shipped).
 */
function dropDigests(m: Machine): void {
  const compose = m.host('/usr/lib/immich-firstboot/compose/docker-compose.yml');
  writeFileSync(compose, readFileSync(compose, 'utf8').replace(/@sha256:[0-9a-f]{64}/g, ''));
}

export function bootSuite(release: Release, expected: Expected): void {
  const machine = new Machine(path.join(WORK, `machine-${release}-${process.pid}`));
  /** The same image, deployed with a domain and an e-mail: Let's Encrypt (pebble) at first boot. */
  const leMachine = new Machine(path.join(WORK, `machine-${release}-le-${process.pid}`));
  /** The same image, deployed with a data disk at LUN 0 (test/e2e/data-disk.ts). */
  const disk = dataDiskDeployment(release, WORK);
  const DEB_DIR = path.join(WORK, `deb-${release}-${process.pid}`);
  const hostname = `immich-${release}`;
  let deb = '';
  let stockConf = '';
  const t0 = Date.now();
  const timings: string[] = [];
  const mark = (what: string): void => void timings.push(`${what} at ${((Date.now() - t0) / 1000).toFixed(1)}s`);

  /** DB_PASSWORD in the machine's .env. */
  const secret = (): string =>
    /^DB_PASSWORD=(.*)$/m.exec(readFileSync(machine.host('/opt/immich/.env'), 'utf8'))?.[1] ?? '';
  /** SHA-256 fingerprint of our certificate on disk, and of the one nginx serves on 443 inside the machine. */
  const onDisk = (): string =>
    spawnSync('openssl', ['x509', '-in', machine.host(CERT), '-noout', '-fingerprint', '-sha256'], {
      encoding: 'utf8',
    }).stdout.trim();
  const served = (): string =>
    machine
      .out(
        'sh',
        '-c',
        'openssl s_client -connect 127.0.0.1:443 </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256',
      )
      .trim();
  const unitState = (unit: string): Record<string, string> =>
    Object.fromEntries(
      machine
        .out('systemctl', 'show', unit, '-p', 'ActiveState,SubState,Result,ConditionResult')
        .trim()
        .split('\n')
        .map((l) => l.split('=', 2) as [string, string]),
    );
  /** The per-boot unit ran at this boot (its condition held) and exited 0. */
  const expectPerBootSucceeded = (): void => {
    expect(unitState(PERBOOT)).toEqual({
      ActiveState: 'active',
      SubState: 'exited',
      Result: 'success',
      ConditionResult: 'yes',
    });
  };
  const thisBoot = (unit: string): string =>
    machine.out('journalctl', '-b', '0', '-u', unit, '--no-pager', '-o', 'cat');
  const pong = (): string =>
    machine
      .exec(
        'sh',
        '-c',
        'for i in $(seq 120); do curl -sfk --max-time 2 https://127.0.0.1/api/server/ping && exit 0; sleep 0.5; done; exit 1',
      )
      .stdout.trim();
  /** The password the database stand-in initialised Postgres with, once it has (STANDIN_INITDB_DELAY below). */
  const initialisedWith = (): string =>
    machine
      .out(
        'sh',
        '-c',
        'for i in $(seq 200); do cat /opt/immich/postgres/standin-postgres-password 2>/dev/null && exit 0; sleep 0.1; done; exit 1',
      )
      .trim();
  const monotonic = (unit: string, property: string): number =>
    Number(machine.out('systemctl', 'show', unit, '-p', property, '--value').trim());

  beforeAll(() => {
    rmSync(DEB_DIR, { recursive: true, force: true });
    const built = spawnSync('bash', [path.join(REPO, 'test/e2e/build-deb.sh'), DEB_DIR], { encoding: 'utf8' });
    if (built.status !== 0) throw new Error(`build-deb.sh failed:\n${built.stdout}${built.stderr}`);
    deb = built.stdout.trim().split('\n').at(-1)!;
    mark('deb built');

    // The release's tree (systemd, cloud-init, docker.io, nginx, nodejs; what our Depends add only in its apt cache) is cached.
    machine.script('prepare', ['ifb-e2e'], { env: { IFB_RELEASE: release } });
    // The stand-in images must be in the machine's Docker before the first boot, because the unit runs
    // during that boot. So this is the image builder's own earlier stage: boot the tree before our package
    // is installed (no unit yet) with cloud-init off, `docker import` the stand-ins into its Docker with
    // the fixture's own build script, power off, and generalise the image (an empty machine-id, no
    // cloud-init state, as cloud images ship). Where the docker CLI is a package of its own (Debian 13)
    // and not installed yet, the release's docker-cli is unpacked from the apt cache for this stage only.
    writeFileSync(machine.host('/etc/cloud/cloud-init.disabled'), '');
    machine.script('boot');
    let cli = 'docker';
    if (machine.exec('sh', '-c', 'command -v docker').code !== 0) {
      cli = '/var/tmp/standin-build/cli/usr/bin/docker';
      machine.out(
        'sh',
        '-c',
        'mkdir -p /var/tmp/standin-build/cli && dpkg-deb -x /var/cache/apt/archives/docker-cli_*.deb /var/tmp/standin-build/cli',
      );
    }
    mkdirSync(machine.host('/var/tmp/standin-build'), { recursive: true });
    const images = spawnSync('bash', [path.join(REPO, 'test/fixtures/standin-images/build.sh')], {
      encoding: 'utf8',
      env: {
        ...process.env,
        PATH: `${path.join(REPO, 'test/e2e/shim')}:${process.env.PATH}`,
        IFB_MACHINE: machine.dir,
        IFB_MACHINE_DOCKER: cli,
        TMPDIR: machine.host('/var/tmp/standin-build'),
        // The database stand-in writes nothing for 5 s after it starts on an empty directory: the window
        // in which a clone's per-boot meets a database container that has not initialised yet (see the
        // last test), which a real Postgres leaves open for a fraction of a second, made wide.
        STANDIN_INITDB_DELAY: '5',
      },
    });
    if (images.status !== 0) throw new Error(`stand-in images failed:\n${images.stdout}${images.stderr}`);
    machine.script('poweroff');
    rmSync(machine.host('/var/tmp/standin-build'), { recursive: true, force: true });
    writeFileSync(machine.host('/etc/machine-id'), '');
    rmSync(machine.host('/etc/cloud/cloud-init.disabled'));
    rmSync(machine.host('/var/lib/cloud'), { recursive: true, force: true });
    rmSync(machine.host('/var/log/cloud-init.log'), { force: true });
    writeSeed(machine, `ifb-e2e-${release}-${process.pid}`, hostname, userData);
    mark('machine prepared with images');
  }, 300_000);

  afterAll(() => {
    // Even after a failure: stop the machine (and its Docker), then remove it.
    console.log(`e2e ${release} timings: ${timings.join(', ')}`);
    disk.release();
    const failed = [machine, leMachine, disk.machine]
      .map((m) => ({ m, run: m.raw(path.join(REPO, 'test/env/nspawn-machine.sh'), ['cleanup', m.dir], {}) }))
      .filter(({ run }) => run.code !== 0);
    rmSync(DEB_DIR, { recursive: true, force: true });
    if (failed.length)
      throw new Error(failed.map(({ m, run }) => `cleanup of ${m.dir} failed:\n${run.stderr}`).join('\n'));
  }, 120_000);

  describe(`the package in a Debian ${release} machine under systemd, with cloud-init`, () => {
    it('installs with `apt-get install --no-install-recommends ./x.deb` in a chroot with no systemd running and no network, bringing a docker CLI and compose, enables the units and generates nothing', () => {
      // /tmp in the chroot is not the host's; /var/tmp is part of the tree.
      writeFileSync(machine.host('/var/tmp/immich-firstboot.deb'), readFileSync(deb));
      // sd_booted(3) is false in there: /run/systemd/system exists only when systemd is PID 1. The chroot has
      // no network: what the Depends pull must come from the release's packages in the tree's apt cache.
      const install = machine.script('chroot', [
        'sh',
        '-c',
        'test ! -e /run/systemd/system && echo "no systemd running" && cd /var/tmp && apt-get install -y --no-install-recommends ./immich-firstboot.deb',
      ]);
      expect(install.stdout).toContain('no systemd running');
      expect(install.stdout).toContain('Setting up immich-firstboot (0.1.0)');
      // The image as users get it: a docker command and a compose, whatever the release splits them into.
      expect(machine.script('chroot', ['sh', '-c', 'command -v docker']).stdout.trim()).toBe('/usr/bin/docker');
      const compose = machine.script('chroot', ['sh', '-c', `${expected.compose} version`]).stdout;
      console.log(`e2e ${release}: ${compose.trim()}`);
      // Enabled through the [Install] symlink (into /lib or /usr/lib, as the release's debhelper does), not started.
      for (const unit of [UNIT, PERBOOT, DATA_DISK]) {
        const link = spawnSync('readlink', [machine.host(`/etc/systemd/system/multi-user.target.wants/${unit}`)], {
          encoding: 'utf8',
        }).stdout.trim();
        expect(link).toMatch(new RegExp(`^(/usr)?/lib/systemd/system/${unit.replace(/\./g, '\\.')}$`));
        expect(readFileSync(machine.host(link), 'utf8')).toBe(readFileSync(path.join(REPO, 'units', unit), 'utf8'));
      }
      for (const made of [
        '/opt/immich/.env',
        '/opt/immich/docker-compose.yml',
        '/etc/immich-firstboot/tls',
        '/etc/nginx/sites-available/immich',
        '/root/immich-credentials.txt',
        '/var/lib/immich-firstboot',
      ])
        expect(existsSync(machine.host(made)), `${made} after install`).toBe(false);
      const daemonJson = machine.host('/etc/docker/daemon.json');
      if (existsSync(daemonJson)) expect(readFileSync(daemonJson, 'utf8')).not.toContain('max-size');
      rmSync(machine.host('/var/tmp/immich-firstboot.deb'));
      mark('installed');
    }, 120_000);

    it('prepare-image in the chroot, as the image builder runs it: daemon.json rotates logs, no Docker restart owed', () => {
      console.log(`e2e ${release}: prepare-image:\n${prepareImageInChroot(machine)}`);
    }, 120_000);

    it('takes certbot and its nginx plugin, our Recommends, when the image builder installs them by name, offline', () => {
      // `--no-install-recommends` leaves our Recommends out; the image ships certbot all the same (the
      // README's manual path is `certbot --nginx`, and Let's Encrypt at first boot runs certbot), so the
      // image builder names them, as this does, from the release's packages in the tree's apt cache.
      const install = machine.script('chroot', [
        'apt-get',
        'install',
        '-y',
        '--no-install-recommends',
        'certbot',
        'python3-certbot-nginx',
      ]);
      expect(install.stdout).toMatch(/^Setting up certbot /m);
      expect(machine.script('chroot', ['certbot', '--version']).stdout).toMatch(/^certbot \d+\.\d+/);
      expect(
        machine.script('chroot', ['dpkg-query', '-W', '-f', '${db:Status-Status}', 'python3-certbot-nginx']).stdout,
      ).toBe('installed');
      // A second deployment of this very image, never booted: the Let's Encrypt one (last describe below).
      const copy = spawnSync('cp', ['-a', '--reflink=auto', machine.dir, leMachine.dir], { encoding: 'utf8' });
      if (copy.status !== 0) throw new Error(`copying the image failed: ${copy.stderr}`);
      disk.copyFrom(machine);
      mark('image copied');
    }, 120_000);

    it('runs once at the first boot under PID-1 systemd, ends active (exited) and shows our STATUS', () => {
      // No Azure here: the user data's config.yaml turns IMDS off (169.254.169.254 is never contacted); the
      // shipped conffile is what cloud-init's write_files replaces at boot.
      expect(readFileSync(machine.host('/etc/immich-firstboot/config.yaml'), 'utf8')).not.toContain(EXTRA_NAME);
      dropDigests(machine);
      // The release's stock nginx.conf stays as shipped (Debian 12's sets TLS 1.0/1.1 at http level): our
      // site must load with it, see the test below.
      stockConf = readFileSync(machine.host('/etc/nginx/nginx.conf'), 'utf8');

      // `boot` waits for is-system-running = running/degraded: that waits for our oneshot to finish.
      machine.script('boot');
      mark('first boot up');
      expect(machine.out('readlink', '/proc/1/exe').trim()).toMatch(/systemd$/);
      const show = machine.out(
        'systemctl',
        'show',
        UNIT,
        '-p',
        'ActiveState,SubState,Result,ExecMainStatus,ConditionResult,NRestarts',
      );
      expect(
        Object.fromEntries(
          show
            .trim()
            .split('\n')
            .map((l) => l.split('=', 2)),
        ),
      ).toEqual({
        ActiveState: 'active',
        SubState: 'exited',
        Result: 'success',
        ExecMainStatus: '0',
        ConditionResult: 'yes',
        NRestarts: '0',
      });
      const status = machine.exec('systemctl', 'status', UNIT, '--no-pager');
      expect(status.stdout).toContain('Active: active (exited)');
      expect(status.stdout).toContain('Status: "First boot done"');
      // Exactly one run: one start of the program, one "Finished" from systemd.
      const journal = machine.out('journalctl', '-u', UNIT, '--no-pager', '-o', 'cat');
      expect(journal.match(/"msg":"first boot starting"/g)).toHaveLength(1);
      expect(journal.match(/^Finished immich-firstboot\.service/gm)).toHaveLength(1);
      // The user data's config.yaml names no data disk: the data-disk unit's ExecCondition= skipped it before
      // Node started (no line of ours in its journal), and the first-boot unit started all the same.
      expect(unitState(DATA_DISK)).toEqual({
        ActiveState: 'inactive',
        SubState: 'dead',
        Result: 'exec-condition',
        // systemd counts an ExecCondition= that said no as a condition that failed.
        ConditionResult: 'no',
      });
      expect(thisBoot(DATA_DISK)).not.toContain('"msg"');
      expect(machine.exec('immich-firstboot', 'doctor').stdout).toMatch(
        /^pass: unit-state — immich-firstboot\.service active\/exited, result success$/m,
      );
      // The release's own systemd; the versions booted, for the README's table of releases proven.
      expect(machine.out('systemctl', '--version').split('\n')[0]).toMatch(expected.systemd);
      const versions = machine.out(
        'dpkg-query',
        '-W',
        '-f',
        '${db:Status-Status} ${Package} ${Version}\\n',
        'systemd',
        'docker.io',
        'docker-cli',
        'docker-compose',
        'nginx',
        'nginx-light',
        'nodejs',
        'cloud-init',
        'openssl',
      );
      console.log(
        `e2e ${release} booted: ${versions
          .split('\n')
          .filter((l) => l.startsWith('installed '))
          .map((l) => l.slice(10))
          .join(', ')}`,
      );
    }, 180_000);

    it('leaves Docker running through the first boot of the prepared image: one dockerd, started before our unit, never restarted', () => {
      const d = dockerAcross(machine, UNIT);
      expect(d.dockerdStarted).toBeGreaterThan(0);
      expect(d.unitExited).toBeGreaterThan(d.unitStarted);
      // The dockerd running now is the one systemd started before our unit's process started.
      expect(d.dockerdStarted).toBeLessThan(d.unitStarted);
      expect({ mainPid: d.mainPid, nRestarts: d.nRestarts }).toEqual({ mainPid: d.execMainPid, nRestarts: 0 });
      expect(d.mainPid).toBeGreaterThan(0);
      // One start job in this boot, no stop: a `systemctl restart` would log "Stopping…" and a second "Started…".
      expect(d.jobs.filter((l) => /^(Stopping|Stopped) /.test(l))).toEqual([]);
      expect(d.jobs.filter((l) => l.startsWith('Started '))).toHaveLength(1);
      const journal = thisBoot(UNIT);
      expect(journal).toContain(
        '"step":"docker-logs","changed":false,"msg":"/etc/docker/daemon.json already rotates logs; kept"',
      );
      expect(journal).not.toContain('Docker restarted');
    });

    it('boots with no ordering cycle, cloud-init done with the user data, and our first boot after it', () => {
      const bootLog = machine.out('journalctl', '-b', '0', '--no-pager', '-o', 'cat');
      expect(bootLog).not.toMatch(/ordering cycle/i);
      expect(bootLog).not.toMatch(/deleted to break/);
      // cloud-init ran every stage: status done, its runcmd (final stage, after multi-user.target) ran.
      const status = machine.exec('cloud-init', 'status', '--wait');
      expect(status.stdout, machine.exec('cloud-init', 'status', '--long').stdout).toMatch(/^status: done$/m);
      expect(existsSync(machine.host(RUNCMD_MARKER))).toBe(true);
      for (const unit of ['cloud-config.service', 'cloud-final.service'])
        expect(unitState(unit)).toMatchObject({ ActiveState: 'active', Result: 'success' });
      // Ours started only after cloud-init's config stage had finished (systemd's own clock)...
      expect(monotonic(UNIT, 'ExecMainStartTimestampMonotonic')).toBeGreaterThan(
        monotonic('cloud-config.service', 'ActiveEnterTimestampMonotonic'),
      );
      // ...so it used what cloud-init applied: the hostname from meta-data and extraNames from user data.
      expect(readFileSync(machine.host('/etc/hostname'), 'utf8').trim()).toBe(hostname);
      const san = spawnSync('openssl', ['x509', '-in', machine.host(CERT), '-noout', '-ext', 'subjectAltName'], {
        encoding: 'utf8',
      }).stdout;
      expect(san).toContain(`DNS:${hostname}`);
      expect(san).toContain(`DNS:${EXTRA_NAME}`);
      expect(readFileSync(machine.host('/etc/immich-firstboot/config.yaml'), 'utf8')).toContain(
        "written by cloud-init from the deployment's user data",
      );
    });

    it("starts the stack with the release's compose and writes the credentials into /root through its sandbox", () => {
      expect(thisBoot(UNIT)).toContain(
        `\`${expected.compose} -p immich up -d\` done for /opt/immich/docker-compose.yml`,
      );
      expect(machine.out('stat', '-c', '%a %U:%G %s', '/root/immich-credentials.txt').trim()).toMatch(
        /^600 root:root [1-9]\d+$/,
      );
      // The sandbox as this release's systemd scores it.
      // The data-disk unit's limit is its own: it mounts a filesystem for the host (test/package/deb.test.ts).
      for (const [unit, limit] of [
        [UNIT, 3.0],
        [PERBOOT, 3.0],
        [DATA_DISK, 5.0],
      ] as const) {
        const run = machine.exec('systemd-analyze', 'security', '--no-pager', unit);
        const score = Number(/Overall exposure level for .*: (\d+\.\d+)/.exec(run.stdout)?.[1]);
        console.log(`e2e ${release}: systemd-analyze security ${unit}: ${score}`);
        expect(score, unit).toBeLessThanOrEqual(limit);
      }
    });

    it('has a sandbox this systemd honours: /root writable, /home hidden (the old ProtectHome=tmpfs + BindPaths=/root recipe is read-only on 257)', () => {
      // The unit's own filesystem lines, run by this release's systemd as a transient service.
      const unitFile = readFileSync(path.join(REPO, 'units', UNIT), 'utf8');
      const ours = unitFile
        .split('\n')
        .filter((l) =>
          /^(ProtectSystem|ReadWritePaths|TemporaryFileSystem|InaccessiblePaths|ProtectHome|BindPaths)=/.test(l),
        );
      expect(ours).toContain('ReadWritePaths=/root');
      const old = [
        ...ours.filter((l) => !/^(ReadWritePaths=\/root|TemporaryFileSystem=|InaccessiblePaths=)/.test(l)),
        'ProtectHome=tmpfs',
        'BindPaths=/root',
      ];
      machine.out('sh', '-c', 'mkdir -p /home/op && echo private >/home/op/notes.txt');
      const probe = (lines: string[]): number | null =>
        machine.exec(
          'systemd-run',
          '--wait',
          '--quiet',
          '--collect',
          ...lines.flatMap((l) => ['-p', l]),
          '/bin/sh',
          '-c',
          'touch /root/.ifb-sandbox-probe && rm /root/.ifb-sandbox-probe && test ! -e /home/op/notes.txt',
        ).code;
      expect(probe(ours)).toBe(0);
      expect(probe(old)).toBe(expected.oldSandboxWritesRoot ? 0 : 1);
    });

    it('logs JSON lines to the journal and never the secret', () => {
      const lines = machine
        .out('journalctl', '-u', UNIT, '--no-pager', '-o', 'cat')
        .split('\n')
        .filter((l) => l.startsWith('{'));
      const records = lines.map(
        (l) => JSON.parse(l) as { msg: string; step?: string; level: number; changed?: boolean },
      );
      expect(records.map((r) => r.msg)).toEqual(
        expect.arrayContaining(['first boot starting', 'first boot done; see /root/immich-credentials.txt']),
      );
      // Every step logged its summary, in order, once.
      const summaries = records.filter((r) => r.step && 'changed' in r).map((r) => r.step);
      expect(summaries).toEqual(FIRST_BOOT.map((s) => s.id));
      expect(records.filter((r) => r.level >= 50)).toEqual([]);
      const pw = secret();
      expect(pw).toMatch(/^[A-Za-z0-9]{32}$/);
      // The whole journal of the machine (every unit, Docker included), not only ours.
      expect(machine.out('journalctl', '--no-pager', '-o', 'verbose')).not.toContain(pw);
    });

    it('writes its files root-owned with the specified modes', () => {
      const stat = (p: string): string => machine.out('stat', '-L', '-c', '%a %U:%G', p).trim();
      expect(stat('/opt/immich/.env')).toBe('640 root:root');
      expect(stat('/opt/immich/docker-compose.yml')).toBe('644 root:root');
      expect(stat('/etc/immich-firstboot/tls/current/key.pem')).toBe('600 root:root');
      expect(stat('/etc/immich-firstboot/tls/current/cert.pem')).toBe('644 root:root');
      expect(stat('/root/immich-credentials.txt')).toBe('600 root:root');
      expect(stat('/var/lib/immich-firstboot/state.json')).toBe('600 root:root');
      expect(stat('/var/lib/immich-firstboot/done')).toMatch(/^6[04]4 root:root$/);
      expect(stat('/etc/nginx/sites-available/immich')).toBe('644 root:root');
      expect(machine.out('readlink', '/etc/nginx/sites-enabled/immich').trim()).toBe(
        '/etc/nginx/sites-available/immich',
      );
      expect(machine.exec('test', '-e', '/etc/nginx/sites-enabled/default').code).not.toBe(0);
      expect(readFileSync(machine.host('/root/immich-credentials.txt'), 'utf8')).toContain(secret());
    });

    it('answers pong through nginx on https://127.0.0.1 while 2283 listens on loopback only', () => {
      expect(machine.out('curl', '-sSk', '--max-time', '10', 'https://127.0.0.1/api/server/ping').trim()).toBe(
        '{"res":"pong"}',
      );
      const listeners = machine
        .out('ss', '-ltnH')
        .split('\n')
        .filter(Boolean)
        .map((l) => l.trim().split(/\s+/)[3]);
      const immich = listeners.filter((a) => a.endsWith(':2283'));
      expect(immich.length).toBeGreaterThan(0);
      expect(immich.every((a) => a === '127.0.0.1:2283')).toBe(true);
      expect(listeners).toEqual(expect.arrayContaining(['0.0.0.0:443', '0.0.0.0:80']));
    });

    it('sets the claim cookie through nginx from the claim link in the credentials file, and goes on to sign-up', () => {
      const notes = readFileSync(machine.host('/root/immich-credentials.txt'), 'utf8');
      const token = /\/claim\/([0-9a-f]{64})$/m.exec(notes)![1];
      expect(machine.out('stat', '-c', '%a %U:%G', '/etc/immich-firstboot/nginx/claim-token.map').trim()).toBe(
        '600 root:root',
      );
      const head = machine.out(
        'curl',
        '-sSk',
        '--max-time',
        '10',
        '-o',
        '/dev/null',
        '-D',
        '-',
        `https://127.0.0.1/claim/${token}`,
      );
      expect(head).toMatch(/^HTTP\/[\d.]+ 303/);
      expect(head).toMatch(/^location: \/auth\/register\r$/im);
      expect(head.toLowerCase()).toContain(
        `set-cookie: immich_claim=${token}; path=/api/auth/admin-sign-up; secure; httponly; samesite=strict; max-age=86400`,
      );
    });

    it("agrees on Mozilla's key exchange groups only, with this release's own openssl as the client", () => {
      /** The group `openssl s_client` (offering only `groups`, or its defaults) agrees on with the door. */
      const agreed = (groups?: string): string => {
        const offer = groups ? `-groups ${groups}` : '';
        const run = machine.exec('sh', '-c', `openssl s_client -connect 127.0.0.1:443 ${offer} </dev/null 2>&1`);
        const group = /^(?:Server|Peer) Temp Key: ([^,\n]+)|^Negotiated TLS1\.3 group: (\w+)$/m.exec(run.stdout);
        return run.code === 0 && group ? (group[1] ?? group[2]) : 'refused';
      };
      const pq = expected.hybridKeyExchange;
      expect({
        default: agreed(),
        ...(pq ? { X25519MLKEM768: agreed('X25519MLKEM768') } : {}),
        X25519: agreed('X25519'),
        ffdhe2048: agreed('ffdhe2048'),
        X448: agreed('X448'),
        'P-521': agreed('P-521'),
      }).toEqual({
        default: pq ? 'X25519MLKEM768' : 'X25519',
        ...(pq ? { X25519MLKEM768: 'X25519MLKEM768' } : {}),
        X25519: 'X25519',
        ffdhe2048: 'refused',
        X448: 'refused',
        'P-521': 'refused',
      });
    });

    it('reports done in `immich-firstboot status --json`', () => {
      const run = machine.exec('immich-firstboot', 'status', '--json');
      expect(run.code).toBe(0);
      const report = JSON.parse(run.stdout) as { status: string; pending: unknown[]; errors: unknown[] };
      expect(report).toMatchObject({ status: 'done', pending: [], errors: [] });
    });

    it("works with the release's stock nginx.conf, untouched, and nginx -t accepts it", () => {
      expect(readFileSync(machine.host('/etc/nginx/nginx.conf'), 'utf8')).toBe(stockConf);
      const check = machine.exec('nginx', '-t', '-q');
      expect(check.stderr).toBe('');
      expect(check.code).toBe(0);
    });

    it("sandboxes each unit to its job: nginx's pid file the only writable file of /run, /etc/docker for the first boot only, Docker's socket reachable on a read-only /run", () => {
      // Each real unit (its ExecStartPre= lines and whole sandbox), started with a probe as its ExecStart=.
      const probe = '/usr/local/lib/ifb-sandbox-probe.sh';
      const out = '/root/ifb-sandbox-probe.out';
      writeFileSync(
        machine.host(probe),
        [
          'w() { if (: >>"$1") 2>/dev/null; then echo "$1 writable"; else echo "$1 read-only"; fi; }',
          '{',
          'w /run/nginx.pid',
          'w /run/ifb-probe; rm -f /run/ifb-probe 2>/dev/null',
          'w /etc/docker/ifb-probe; rm -f /etc/docker/ifb-probe 2>/dev/null',
          'echo "docker.sock: $(curl -s --max-time 10 --unix-socket /run/docker.sock http://docker/_ping)"',
          'nginx -t -q && echo "nginx -t: ok"',
          `} >${out} 2>&1`,
          'exit 0',
          '',
        ].join('\n'),
      );
      const run = (unit: string): string[] => {
        const dropIn = machine.host(`/etc/systemd/system/${unit}.d/ifb-sandbox-probe.conf`);
        mkdirSync(path.dirname(dropIn), { recursive: true });
        writeFileSync(dropIn, `[Unit]\nConditionPathExists=\n[Service]\nExecStart=\nExecStart=/bin/sh ${probe}\n`);
        try {
          machine.out('systemctl', 'daemon-reload');
          machine.out('systemctl', 'restart', unit);
          return readFileSync(machine.host(out), 'utf8').trim().split('\n');
        } finally {
          rmSync(path.dirname(dropIn), { recursive: true, force: true });
          rmSync(machine.host(out), { force: true });
          machine.out('systemctl', 'daemon-reload');
        }
      };
      const expected = (etcDocker: string) => [
        '/run/nginx.pid writable',
        '/run/ifb-probe read-only',
        `/etc/docker/ifb-probe ${etcDocker}`,
        'docker.sock: OK',
        'nginx -t: ok',
      ];
      expect({ [UNIT]: run(UNIT), [PERBOOT]: run(PERBOOT) }).toEqual({
        [UNIT]: expected('writable'),
        [PERBOOT]: expected('read-only'),
      });
      rmSync(machine.host(probe));
    });

    it('does nothing at the second boot: the unit is skipped by its condition, the secret is unchanged, Immich is back', () => {
      const before = { secret: secret(), done: readFileSync(machine.host('/var/lib/immich-firstboot/done'), 'utf8') };
      machine.script('poweroff');
      machine.script('boot');
      mark('second boot up');
      expect(machine.out('systemctl', 'show', UNIT, '-p', 'ConditionResult', '--value').trim()).toBe('no');
      expect(machine.out('systemctl', 'show', UNIT, '-p', 'ActiveState', '--value').trim()).toBe('inactive');
      expect(machine.out('systemctl', 'show', DATA_DISK, '-p', 'ConditionResult', '--value').trim()).toBe('no');
      const firstBootUnit = thisBoot(UNIT);
      // systemd 252: "skipped because of an unmet condition check (Condition…)"; 257: "skipped, unmet condition check Condition…".
      expect(firstBootUnit).toMatch(
        /skipped(,| because of an) unmet condition check \(?ConditionPathExists=!\/var\/lib\/immich-firstboot\/done/,
      );
      expect(firstBootUnit).not.toContain('{"level"');
      // Across both boots, still exactly one run.
      expect(
        machine.out('journalctl', '-u', UNIT, '--no-pager', '-o', 'cat').match(/"msg":"first boot starting"/g),
      ).toHaveLength(1);
      expect(secret()).toBe(before.secret);
      expect(readFileSync(machine.host('/var/lib/immich-firstboot/done'), 'utf8')).toBe(before.done);
      expect(JSON.parse(machine.out('immich-firstboot', 'status', '--json')).status).toBe('done');
      // The per-boot check ran, found the same instance and addresses, and did nothing.
      expectPerBootSucceeded();
      expect(thisBoot(PERBOOT)).toContain('"msg":"per-boot check: same instance, same addresses; nothing to do"');
      // Docker brings the containers back by itself (restart: always); nginx still answers for them.
      expect(pong()).toBe('{"res":"pong"}');
    }, 180_000);

    it('takes the clone path at a boot with a new machine-id: new certificate served, secret kept (Postgres holds data), status and MOTD say so', () => {
      const before = {
        secret: secret(),
        fingerprint: onDisk(),
        instance: JSON.parse(readFileSync(machine.host('/var/lib/immich-firstboot/done'), 'utf8')).instanceId as string,
      };
      // What the stand-in Postgres was initialised with: the clone must keep exactly this.
      expect(initialisedWith()).toBe(before.secret);
      machine.script('poweroff');
      const cloneId = 'c10e0000000000000000000000000001';
      expect(before.instance).not.toBe(cloneId);
      writeFileSync(machine.host('/etc/machine-id'), `${cloneId}\n`);
      machine.script('boot');
      mark('clone boot up');

      expect(unitState(UNIT).ConditionResult).toBe('no');
      expectPerBootSucceeded();
      const journal = thisBoot(PERBOOT);
      expect(journal).toContain(
        `"msg":"this VM is a clone: first boot ran on instance ${before.instance}, this is ${cloneId}; making a new certificate and credentials"`,
      );
      expect(journal).toMatch(
        /"msg":"clone handled: new certificate and \/root\/immich-credentials.txt; Postgres secret kept \(Postgres holds data\)"/,
      );
      expect(secret()).toBe(before.secret);
      expect(before.fingerprint).toMatch(/^sha256 Fingerprint=[0-9A-F:]{95}$/i);
      expect(onDisk()).not.toBe(before.fingerprint);
      // nginx was reloaded: it serves the new certificate, and Immich still answers through it with the kept secret.
      expect(served()).toBe(onDisk());
      expect(pong()).toBe('{"res":"pong"}');
      const report = JSON.parse(machine.out('immich-firstboot', 'status', '--json')) as Record<string, unknown>;
      expect(report).toMatchObject({
        status: 'done',
        instanceId: cloneId,
        clone: { fromInstanceId: before.instance, toInstanceId: cloneId, secret: 'kept (Postgres holds data)' },
      });
      expect(JSON.parse(readFileSync(machine.host('/var/lib/immich-firstboot/done'), 'utf8')).instanceId).toBe(cloneId);
      expect(machine.out('immich-firstboot', 'motd')).toContain(`This VM is a copy of instance ${before.instance}`);
      expect(readFileSync(machine.host('/root/immich-credentials.txt'), 'utf8')).toContain(
        onDisk().replace(/^.*Fingerprint=/, ''),
      );
      expect(machine.out('journalctl', '--no-pager', '-o', 'verbose')).not.toContain(before.secret);
    }, 180_000);

    it('renews the certificate for a new address at the next boot, and nginx serves it', () => {
      // A new address at boot, as a resized or moved VM gets one: a test-only unit adds a veth with it
      // before the per-boot check (the machine has only lo under --private-network; no dummy module here).
      writeFileSync(
        machine.host('/etc/systemd/system/ifb-test-address.service'),
        [
          '[Unit]',
          'Before=immich-firstboot-perboot.service',
          '[Service]',
          'Type=oneshot',
          'RemainAfterExit=yes',
          "ExecStart=/bin/sh -ec 'ip link add eth1 type veth peer name eth1p; ip addr add 192.0.2.50/24 dev eth1; ip link set eth1p up; ip link set eth1 up'",
          '[Install]',
          'WantedBy=multi-user.target',
          '',
        ].join('\n'),
      );
      machine.script('poweroff');
      mkdirSync(machine.host('/etc/systemd/system/multi-user.target.wants'), { recursive: true });
      symlinkSync(
        '/etc/systemd/system/ifb-test-address.service',
        machine.host('/etc/systemd/system/multi-user.target.wants/ifb-test-address.service'),
      );
      const before = { secret: secret(), fingerprint: onDisk() };
      machine.script('boot');
      mark('moved boot up');

      expectPerBootSucceeded();
      expect(thisBoot(PERBOOT)).toMatch(/"msg":"new ECDSA certificate \(it does not name 192\.0\.2\.50\)/);
      expect(
        spawnSync('openssl', ['x509', '-in', machine.host(CERT), '-noout', '-ext', 'subjectAltName'], {
          encoding: 'utf8',
        }).stdout,
      ).toContain('IP Address:192.0.2.50');
      expect(onDisk()).not.toBe(before.fingerprint);
      expect(served()).toBe(onDisk());
      expect(secret()).toBe(before.secret);
      expect(JSON.parse(machine.out('immich-firstboot', 'status', '--json'))).toMatchObject({
        addressChange: { to: ['192.0.2.50'], certificate: 'renewed' },
      });
      expect(readFileSync(machine.host('/root/immich-credentials.txt'), 'utf8')).toContain('https://192.0.2.50/');
    }, 180_000);

    it("a clone captured without prepare-image, its Postgres emptied: the original's database container, started by Docker at boot, cannot initialise with a secret .env no longer holds", () => {
      // The race of issue 15: the image carries the original's containers, each created with the
      // original's DB_PASSWORD in its own configuration, and Docker starts them itself (restart: always)
      // before per-boot runs. The database stand-in has not written anything yet when per-boot looks
      // (STANDIN_INITDB_DELAY above). The old per-boot saw the empty directory, wrote a new secret into
      // .env, and let the container initialise Postgres with the old one seconds later.
      const before = {
        secret: secret(),
        containers: machine.out('docker', 'ps', '-aq', '--no-trunc').trim().split('\n').sort(),
      };
      machine.script('poweroff');
      const pgdata = machine.host('/opt/immich/postgres');
      for (const name of readdirSync(pgdata)) rmSync(path.join(pgdata, name), { recursive: true, force: true });
      const cloneId = 'c10e0000000000000000000000000002';
      writeFileSync(machine.host('/etc/machine-id'), `${cloneId}\n`);
      machine.script('boot');
      mark('clone-race boot up');
      expectPerBootSucceeded();
      const journal = thisBoot(PERBOOT);
      expect(journal).toContain(
        `"msg":"/opt/immich/postgres is empty, but the image's database container exists with the old secret: pausing it before deciding"`,
      );
      expect(journal).toContain(
        '"msg":"every Immich container made anew with the new secret (docker compose up -d --force-recreate)"',
      );
      expect(journal).toContain(
        '"msg":"clone handled: new certificate and /root/immich-credentials.txt; Postgres secret new"',
      );
      const fresh = secret();
      expect(fresh).toMatch(/^[A-Za-z0-9]{32}$/);
      expect(fresh).not.toBe(before.secret);
      // One secret everywhere: .env, what Postgres was initialised with, and the server's environment.
      expect(initialisedWith()).toBe(fresh);
      expect(
        machine.out('docker', 'inspect', '--format', '{{range .Config.Env}}{{println .}}{{end}}', 'immich_server'),
      ).toContain(`DB_PASSWORD=${fresh}\n`);
      // No container of the image is left to start with the old secret.
      const now = machine.out('docker', 'ps', '-aq', '--no-trunc').trim().split('\n');
      expect(now.filter((id) => before.containers.includes(id))).toEqual([]);
      expect(pong()).toBe('{"res":"pong"}');
      expect(JSON.parse(machine.out('immich-firstboot', 'status', '--json'))).toMatchObject({
        instanceId: cloneId,
        clone: { toInstanceId: cloneId, secret: 'new' },
      });
      const all = machine.out('journalctl', '--no-pager', '-o', 'verbose');
      expect(all).not.toContain(before.secret);
      expect(all).not.toContain(fresh);
    }, 180_000);
  });

  describe(`the same image deployed with a domain and an e-mail in its custom data, on Debian ${release}: Let's Encrypt at first boot, from pebble in the machine`, () => {
    const ROOT = '/var/tmp/ifb-e2e-pebble-root.pem';
    /** `openssl x509 -noout ARGS` of what nginx serves on 127.0.0.1:443 for `servername`. */
    const servedFor = (servername: string, args: string): string =>
      leMachine.out(
        'sh',
        '-c',
        `openssl s_client -connect 127.0.0.1:443 -servername ${servername} </dev/null 2>/dev/null | openssl x509 -noout -nameopt RFC2253 ${args}`,
      );
    /** The subjectAltName entries of a certificate as `openssl x509 -ext subjectAltName` prints them. */
    const sans = (text: string): string[] =>
      text
        .split('\n')
        .slice(1)
        .flatMap((l) => l.split(','))
        .map((n) => n.trim())
        .filter(Boolean);

    it('boots its first time with pebble and challtestsrv up before our unit, and ends done with the certificate issued', () => {
      // Nothing of the first machine's boots: this copy was made before any (the install test above).
      machine.script('poweroff');
      expect(existsSync(leMachine.host('/var/lib/immich-firstboot/done'))).toBe(false);
      leMachine.script('chroot', ['apt-get', 'install', '-y', '--no-install-recommends', 'pebble']);
      writePebbleScaffolding(leMachine);
      dropDigests(leMachine);
      writeSeed(leMachine, `ifb-e2e-${release}-le-${process.pid}`, `immich-${release}-le`, leUserData());

      leMachine.script('boot', [], { env: { IFB_BOOT_TIMEOUT: '150' } });
      mark("Let's Encrypt first boot up");
      const state = (unit: string): string[] => {
        const props = leMachine.out('systemctl', 'show', unit, '-p', 'ActiveState,SubState,Result');
        const get = (p: string) => new RegExp(`^${p}=(.*)$`, 'm').exec(props)?.[1] ?? '';
        return [get('ActiveState'), get('SubState'), get('Result')];
      };
      // The scaffolding answered before our unit started (each is "started" only once it answers).
      for (const unit of ['ifb-e2e-challtestsrv.service', 'ifb-e2e-pebble.service']) {
        expect(state(unit), unit).toEqual(['active', 'running', 'success']);
        const ready = Number(
          leMachine.out('systemctl', 'show', unit, '-p', 'ActiveEnterTimestampMonotonic', '--value').trim(),
        );
        const ours = Number(
          leMachine.out('systemctl', 'show', UNIT, '-p', 'ExecMainStartTimestampMonotonic', '--value').trim(),
        );
        expect(ours).toBeGreaterThan(ready);
      }
      const journal = () => leMachine.exec('journalctl', '-b', '0', '-u', UNIT, '--no-pager', '-o', 'cat').stdout;
      expect(state(UNIT), journal()).toEqual(['active', 'exited', 'success']);
      const run = leMachine.exec('immich-firstboot', 'status', '--json');
      expect(run.code, run.stdout + run.stderr).toBe(0);
      const report = JSON.parse(run.stdout) as { status: string; letsencrypt?: { state?: string } };
      expect(report, journal()).toMatchObject({ status: 'done', letsencrypt: { state: 'issued' } });
    }, 240_000);

    it("serves, for the domain, a certificate issued by pebble's intermediate that names the domain", () => {
      const intermediate = leMachine.out(
        'sh',
        '-c',
        `curl -sS --max-time 10 --cacert ${LE.ca} ${LE.management}/intermediates/0 | openssl x509 -noout -nameopt RFC2253 -subject`,
      );
      expect(intermediate).toMatch(/^subject=.*Pebble Intermediate CA/);
      expect(servedFor(LE.domain, '-issuer').trim()).toBe(intermediate.trim().replace(/^subject=/, 'issuer='));
      expect(sans(servedFor(LE.domain, '-ext subjectAltName'))).toEqual([`DNS:${LE.domain}`]);
      // The file our site names, and nothing certbot wrote into the site itself (webroot, not --nginx).
      expect(leMachine.out('cat', '/etc/nginx/sites-available/immich')).toContain(
        'ssl_certificate /etc/letsencrypt/live/immich-firstboot/fullchain.pem;',
      );
      expect(leMachine.out('cat', '/etc/nginx/sites-available/immich')).not.toContain('# managed by Certbot');
    });

    it('keeps the self-signed pair on disk as the fallback', () => {
      const ours = readFileSync(leMachine.host(CERT), 'utf8');
      const x509 = (args: string[]) =>
        spawnSync('openssl', ['x509', '-noout', '-nameopt', 'RFC2253', ...args], { input: ours, encoding: 'utf8' })
          .stdout;
      // Self-signed (issuer = subject), naming the domain too, and its key beside it.
      expect(x509(['-issuer']).replace(/^issuer=/, '')).toBe(x509(['-subject']).replace(/^subject=/, ''));
      expect(sans(x509(['-ext', 'subjectAltName']))).toContain(`DNS:${LE.domain}`);
      const pub = (kind: 'x509' | 'pkey', file: string) =>
        leMachine.out('openssl', kind, '-in', file, ...(kind === 'x509' ? ['-pubkey', '-noout'] : ['-pubout']));
      expect(pub('pkey', '/etc/immich-firstboot/tls/current/key.pem')).toBe(pub('x509', CERT));
    });

    it('names https://<domain>/ in the credentials file', () => {
      expect(readFileSync(leMachine.host('/root/immich-credentials.txt'), 'utf8')).toContain(`https://${LE.domain}/`);
    });

    it("answers pong at https://<domain>/ through nginx for a client that trusts only pebble's root", () => {
      leMachine.out('curl', '-sS', '--max-time', '10', '--cacert', LE.ca, '-o', ROOT, `${LE.management}/roots/0`);
      expect(leMachine.out('openssl', 'x509', '-in', ROOT, '-noout', '-subject')).toMatch(/Pebble Root CA/);
      const ping = leMachine.exec(
        'curl',
        '-sS',
        '--max-time',
        '10',
        '--resolve',
        `${LE.domain}:443:127.0.0.1`,
        '--cacert',
        ROOT,
        `https://${LE.domain}/api/server/ping`,
      );
      expect(ping.stderr).toBe('');
      expect(ping.stdout.trim()).toBe('{"res":"pong"}');
    });

    it('positive control: the scaffolding alone, certbot --webroot through our site on port 80 gets a certificate from this pebble', () => {
      // What our first boot asks of certbot, run by hand into a directory of its own (never
      // /etc/letsencrypt): if this passes and the tests above fail, the fault is not the scaffolding's.
      const dir = '/var/tmp/ifb-e2e-control';
      const run = leMachine.exec(
        'env',
        `REQUESTS_CA_BUNDLE=${LE.ca}`,
        'certbot',
        'certonly',
        '--webroot',
        '-w',
        LE.webroot,
        '-d',
        LE.domain,
        '--server',
        LE.server,
        '--cert-name',
        'ifb-e2e-control',
        '--agree-tos',
        '-m',
        LE.email,
        '--non-interactive',
        '--config-dir',
        `${dir}/config`,
        '--work-dir',
        `${dir}/work`,
        '--logs-dir',
        `${dir}/logs`,
      );
      expect(run.code, run.stdout + run.stderr).toBe(0);
      const cert = `${dir}/config/live/ifb-e2e-control/cert.pem`;
      expect(leMachine.out('openssl', 'x509', '-in', cert, '-noout', '-issuer')).toMatch(/Pebble Intermediate CA/);
      expect(sans(leMachine.out('openssl', 'x509', '-in', cert, '-noout', '-ext', 'subjectAltName'))).toEqual([
        `DNS:${LE.domain}`,
      ]);
      // pebble validated HTTP-01 itself, on port 80 of the address challtestsrv gave (no ALWAYS_VALID).
      expect(leMachine.out('journalctl', '-u', 'ifb-e2e-pebble.service', '--no-pager', '-o', 'cat')).toMatch(
        /Attempting to validate w\/ HTTP: http:\/\/photos\.ifb-e2e\.test(:80)?\/\.well-known\/acme-challenge\//,
      );
    }, 120_000);
  });

  disk.describe({ others: [machine, leMachine], prepare: dropDigests, writeSeed });
}
