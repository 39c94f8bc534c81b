// The .deb as a Debian maintainer checks it: built from this tree with Debian's tools, lintian-clean,
// and a unit that systemd itself accepts and scores as well hardened.
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { REPO } from '../support/cli.js';
import { DEFAULT_CONFIG, parseConfig } from '../../src/config.js';

const DEB = path.join(REPO, 'dist/immich-firstboot_0.1.0_all.deb');
const UNIT = path.join(REPO, 'units/immich-firstboot.service');
const PERBOOT = path.join(REPO, 'units/immich-firstboot-perboot.service');
const DATA_DISK = path.join(REPO, 'units/immich-firstboot-data-disk.service');

describe('the .deb', () => {
  beforeAll(() => {
    execFileSync('bash', ['scripts/deb.sh'], { cwd: REPO, stdio: 'pipe' });
  }, 180_000);

  it('is lintian-clean: no errors, no warnings', () => {
    const run = spawnSync('lintian', ['--fail-on', 'error,warning', '--no-tag-display-limit', DEB], {
      encoding: 'utf8',
    });
    expect(`${run.stdout}${run.stderr}`.split('\n').filter((l) => /^[EW]: /.test(l))).toEqual([]);
    expect(run.status).toBe(0);
  }, 180_000);

  it('ships the entry, its chunks and source maps, the data files read-only, the unit, the man page, completion and the conffile', () => {
    const list = execFileSync('dpkg-deb', ['--contents', DEB], { encoding: 'utf8' });
    for (const entry of [
      '-rw-r--r-- root/root .* ./usr/lib/immich-firstboot/templates/env.hbs',
      '-rw-r--r-- root/root .* ./usr/lib/immich-firstboot/nginx/immich.conf.hbs',
      '-rw-r--r-- root/root .* ./usr/lib/immich-firstboot/compose/docker-compose.yml',
      './usr/lib/immich-firstboot/immich-firstboot.mjs',
      './usr/lib/immich-firstboot/immich-firstboot.mjs.map',
      './usr/lib/immich-firstboot/chunk-[A-Z0-9]+\\.mjs$',
      './usr/lib/immich-firstboot/chunk-[A-Z0-9]+\\.mjs\\.map$',
      '-rwxr-xr-x root/root .* ./usr/lib/immich-firstboot/data-disk-wanted$',
      './usr/bin/immich-firstboot -> ',
      './lib/systemd/system/immich-firstboot.service',
      './lib/systemd/system/immich-firstboot-perboot.service',
      './lib/systemd/system/immich-firstboot-data-disk.service',
      './usr/share/man/man8/immich-firstboot.8.gz',
      './usr/share/bash-completion/completions/immich-firstboot',
      '-rwxr-xr-x root/root .* ./etc/update-motd.d/60-immich',
      '-rw-r--r-- root/root .* ./etc/fail2ban/filter.d/immich-firstboot.conf',
      '-rw-r--r-- root/root .* ./etc/fail2ban/jail.d/immich-firstboot.conf',
    ])
      expect(list).toMatch(new RegExp(entry, 'm'));
    // Every chunk the build made, and nothing an older build left.
    const chunks = (names: string[]): string[] => names.filter((n) => /^chunk-.*\.mjs$/.test(n)).sort();
    const packaged = list
      .split('\n')
      .map((l) => /\.\/usr\/lib\/immich-firstboot\/([^/]+)$/.exec(l)?.[1])
      .filter((n): n is string => !!n);
    expect(chunks(packaged)).toEqual(chunks(readdirSync(path.join(REPO, 'dist'))));
    const wrapper = execFileSync(
      'sh',
      ['-c', `dpkg-deb --fsys-tarfile ${DEB} | tar -xOf - ./usr/lib/immich-firstboot/immich-firstboot.wrapper`],
      { encoding: 'utf8' },
    );
    // Plain node: the source maps are read when a stack is printed (src/system/stack-trace.ts), not at every start.
    expect(wrapper).toMatch(/^exec \/usr\/bin\/node \/usr\/lib\/immich-firstboot\/immich-firstboot\.mjs "\$@"$/m);
    expect(execFileSync('dpkg-deb', ['--ctrl-tarfile', DEB]).length).toBeGreaterThan(0);
    const conffiles = execFileSync('sh', ['-c', `dpkg-deb --ctrl-tarfile ${DEB} | tar -xOf - ./conffiles`], {
      encoding: 'utf8',
    });
    // Everything under /etc is a conffile (debhelper): the config, the MOTD script and fail2ban's filter and
    // jail, which an admin may edit or empty.
    expect(conffiles.trim().split('\n').sort()).toEqual([
      '/etc/fail2ban/filter.d/immich-firstboot.conf',
      '/etc/fail2ban/jail.d/immich-firstboot.conf',
      '/etc/immich-firstboot/config.yaml',
      '/etc/update-motd.d/60-immich',
    ]);
    const control = execFileSync('dpkg-deb', ['--field', DEB], { encoding: 'utf8' });
    expect(control).toMatch(
      /Depends: .*nodejs \(>= 18\.19\).*openssl.*docker\.io \| docker-ce.*docker-compose-v2 \| docker-compose-plugin \| docker-compose/s,
    );
    // The CLI on its own: Debian 13's docker.io does not satisfy it (test/e2e proves the install there).
    expect(control).toContain('docker-cli | docker-ce-cli | docker.io (<< 26.1.4+dfsg1-7~) | docker.io (>= 27~)');
    expect(control).toContain('Recommends: certbot, python3-certbot-nginx');
    // The jail is inert without fail2ban, and installing the package never pulls fail2ban in.
    expect(control).toMatch(/^Suggests: fail2ban$/m);
    expect(control).not.toMatch(/^(Depends|Pre-Depends|Recommends):.*fail2ban/m);
    expect(control).toContain('Architecture: all');
  });

  it('enables our three units in postinst without starting them, and purges only its own state', () => {
    const postinst = execFileSync('sh', ['-c', `dpkg-deb --ctrl-tarfile ${DEB} | tar -xOf - ./postinst`], {
      encoding: 'utf8',
    });
    expect(postinst).toMatch(/^set -e$/m);
    for (const unit of [
      'immich-firstboot.service',
      'immich-firstboot-perboot.service',
      'immich-firstboot-data-disk.service',
    ]) {
      expect(postinst).toMatch(new RegExp(`deb-systemd-helper (--quiet )?enable '?${unit.replace('.', '\\.')}`));
    }
    expect(postinst).not.toMatch(/deb-systemd-invoke (re)?start|systemctl (re)?start/);
    expect(postinst).not.toMatch(/immich-firstboot (run|--)/);
    const postrm = execFileSync('sh', ['-c', `dpkg-deb --ctrl-tarfile ${DEB} | tar -xOf - ./postrm`], {
      encoding: 'utf8',
    });
    expect(postrm).toContain('rm -rf /var/lib/immich-firstboot');
    expect(postrm.replace(/^#.*$/gm, '')).not.toMatch(/rm[^\n]*\/opt\/immich/);
  });
});

// The exposure systemd-analyze security allows each unit. The data-disk unit's is higher, and honestly so:
// its job is mounting a filesystem for the host, so it keeps what every mount namespace setting would take
// away (ProtectSystem=, PrivateDevices=, PrivateMounts=, ProtectKernel*=, PrivateTmp=, ProtectHome=...:
// each makes the unit's own mount namespace, where the mount would not reach the host, and PrivateDevices=
// closes the raw disk), runs as root with CAP_SYS_ADMIN (mount, the partition table re-read), CAP_MKNOD and
// CAP_LINUX_IMMUTABLE, and has no device ACL (DeviceAllow= would name the disk, unknown until config.yaml is
// read). What it can drop it does: the network beyond loopback and IMDS, every other capability, the
// syscalls outside @system-service @mount, namespaces, realtime, SUID/SGID, personalities.
describe.each([
  [UNIT, 3.0],
  [PERBOOT, 3.0],
  [DATA_DISK, 5.0],
])('the systemd unit %s', (unit, limit) => {
  it('passes systemd-analyze verify with no unknown key', () => {
    const run = spawnSync('systemd-analyze', ['verify', '--man=no', unit], { encoding: 'utf8' });
    // The ExecStart binary is not installed on the test host; everything else must be clean.
    const problems = `${run.stdout}${run.stderr}`
      .split('\n')
      .filter((l) => l.trim() && !l.includes('is not executable: No such file or directory'));
    expect(problems).toEqual([]);
  });

  it(`scores an exposure of at most ${limit} in systemd-analyze security`, () => {
    const run = spawnSync('systemd-analyze', ['security', '--offline=true', '--threshold=50', unit], {
      encoding: 'utf8',
    });
    const score = Number(/Overall exposure level for .*: (\d+\.\d+)/.exec(run.stdout)?.[1]);
    console.log(`systemd-analyze security exposure of ${path.basename(unit)}: ${score}`);
    expect(score).toBeLessThanOrEqual(limit);
    expect(run.status).toBe(0);
  });
});

describe('the data-disk unit', () => {
  const unit = readFileSync(DATA_DISK, 'utf8');
  const main = readFileSync(UNIT, 'utf8');
  const directives = (text: string): string[] =>
    text
      .split('\n')
      .filter((l) => /^[A-Za-z]+=/.test(l))
      .map((l) => l.slice(0, l.indexOf('=')));

  it('runs the steps through data-disk once, before the first-boot unit, which requires it', () => {
    for (const line of [
      'Type=oneshot',
      'RemainAfterExit=yes',
      'ExecStart=/usr/bin/immich-firstboot run --data-disk-only',
      // Skipped before Node starts when config.yaml can name no data disk (the script: data-disk-only.test.ts).
      'ExecCondition=/usr/lib/immich-firstboot/data-disk-wanted',
      'ConditionPathExists=!/var/lib/immich-firstboot/done',
      'Before=immich-firstboot.service',
      'SyslogIdentifier=immich-firstboot',
      'StandardOutput=journal',
      'UMask=0077',
      'WantedBy=multi-user.target',
    ])
      expect(unit).toContain(line);
    // The first-boot unit's cloud-init ordering (test/package/boot-order.test.ts), never cloud-init.target;
    // no network to wait for: the disk is found by its udev links.
    expect(unit).toMatch(/^After=cloud-config\.service$/m);
    expect(unit).not.toMatch(/network-online/);
    expect(unit).not.toMatch(/^[^#].*cloud-init\.target/m);
    // When the disk step fails, the first-boot unit is not started: Requires= and After=, not Wants=.
    expect(main).toMatch(/^Requires=immich-firstboot-data-disk\.service$/m);
    expect(main).toMatch(/^After=immich-firstboot-data-disk\.service$/m);
    // The full-privilege ExecStartPre= it replaces is gone: in the first-boot unit's namespace and device
    // cgroup, its mount never reached the host and the raw disk was closed.
    expect(main).not.toMatch(/--data-disk-only/);
    expect(main).toMatch(/^ReadWritePaths=-\/srv\/immich$/m);
  });

  it('makes no mount namespace (systemd.exec(5)), leaves devices open, and drops the rest', () => {
    const namespacing = [
      'ProtectSystem',
      'ProtectHome',
      'PrivateTmp',
      'PrivateDevices',
      'PrivateMounts',
      'PrivateNetwork',
      'PrivateUsers',
      'ReadWritePaths',
      'ReadOnlyPaths',
      'InaccessiblePaths',
      'ExecPaths',
      'NoExecPaths',
      'TemporaryFileSystem',
      'BindPaths',
      'BindReadOnlyPaths',
      'ProtectKernelTunables',
      'ProtectKernelModules',
      'ProtectKernelLogs',
      'ProtectControlGroups',
      'ProtectProc',
      'ProcSubset',
      'ProtectClock',
      'ProtectHostname',
      'RootDirectory',
      'RootImage',
      'DeviceAllow',
    ];
    const set = directives(unit);
    // PrivateUsers=no is stated, as in the other units; every other namespacing key is absent.
    expect(set.filter((d) => namespacing.includes(d) && d !== 'PrivateUsers')).toEqual([]);
    expect(unit).toMatch(/^PrivateUsers=no$/m);
    expect(unit).toMatch(/^DevicePolicy=auto$/m);
    expect(
      unit
        .match(/^CapabilityBoundingSet=(.*)$/m)?.[1]
        .split(' ')
        .sort(),
    ).toEqual(
      ['CAP_CHOWN', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_LINUX_IMMUTABLE', 'CAP_MKNOD', 'CAP_SYS_ADMIN'].sort(),
    );
    for (const line of [
      'NoNewPrivileges=yes',
      'RestrictNamespaces=yes',
      'RestrictRealtime=yes',
      'RestrictSUIDSGID=yes',
      'LockPersonality=yes',
      'SystemCallArchitectures=native',
      'SystemCallFilter=@system-service @mount',
      'IPAddressDeny=any',
      'RestrictAddressFamilies=AF_UNIX AF_NETLINK',
    ])
      expect(unit).toMatch(new RegExp(`^${line.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'));
    expect(unit).not.toMatch(/^IPAddressAllow=/m);
    // Not the sandbox-refusal hint: nothing here is read-only.
    expect(unit).not.toMatch(/^Environment=IMMICH_FIRSTBOOT_UNIT=/m);
  });
});

describe('the first-boot unit', () => {
  it('keeps the settings the job depends on', () => {
    const unit = readFileSync(UNIT, 'utf8');
    for (const line of [
      'Type=oneshot',
      'RemainAfterExit=yes',
      'ConditionPathExists=!/var/lib/immich-firstboot/done',
      'NotifyAccess=all',
      'Requires=docker.service',
      'Documentation=man:immich-firstboot(8)',
    ]) {
      expect(unit).toContain(line);
    }
    // After cloud-init's config stage, never cloud-init.target (test/package/boot-order.test.ts).
    expect(unit).toMatch(/^After=.*network-online\.target.*docker\.service.*cloud-config\.service/m);
    // /root writable on systemd 252 to 257+, /home hidden: not ProtectHome= (read-only tmpfs on 257).
    expect(unit).toMatch(/^ReadWritePaths=\/root$/m);
    expect(unit).toMatch(/^TemporaryFileSystem=\/home:ro$/m);
    expect(unit).not.toMatch(/^(ProtectHome|BindPaths)=/m);
    expect(unit).toMatch(/^TimeoutStartSec=/m);
    expect(unit).not.toMatch(/^MemoryDenyWriteExecute=yes/m);
    expect(unit).not.toMatch(/^ConditionFirstBoot=/m);
  });
});

describe('the per-boot unit', () => {
  it('runs `per-boot` at every boot once first boot is done, after it, nginx, Docker and the network', () => {
    const unit = readFileSync(PERBOOT, 'utf8');
    for (const line of [
      'Type=oneshot',
      'ExecStart=/usr/bin/immich-firstboot per-boot',
      'ConditionPathExists=/var/lib/immich-firstboot/done',
      'WantedBy=multi-user.target',
    ]) {
      expect(unit).toContain(line);
    }
    expect(unit).toMatch(
      /^After=immich-firstboot\.service .*network-online\.target.*nginx\.service.*docker\.service.*cloud-config\.service/m,
    );
  });

  it("has the first-boot unit's sandbox, less /etc/docker (per-boot never changes Docker's configuration), plus certbot's directories and the network (Let's Encrypt)", () => {
    const sandbox = (file: string) =>
      readFileSync(file, 'utf8')
        .split('[Service]')[1]
        .split('\n')
        .filter((l) =>
          /^(Protect|Private|Restrict|ReadWritePaths|BindPaths|TemporaryFileSystem|InaccessiblePaths|Capability|SystemCall|IPAddress|NoNewPrivileges|LockPersonality|KeyringMode|DevicePolicy|UMask|StateDirectory)/.test(
            l,
          ),
        );
    const certbot = 'ReadWritePaths=-/etc/letsencrypt -/var/lib/letsencrypt -/var/log/letsencrypt';
    expect(sandbox(PERBOOT)).toEqual(
      sandbox(UNIT)
        .filter((l) => !l.startsWith('IPAddress'))
        .map((l) => l.replace(/ \/etc\/docker\b/, ''))
        .flatMap((l) => (l === 'ReadWritePaths=/root' ? [l, certbot] : [l])),
    );
    // The first boot stays on loopback and Azure's metadata service; per-boot reaches the ACME server.
    expect(readFileSync(UNIT, 'utf8')).toMatch(/^IPAddressDeny=any$/m);
    expect(writable(PERBOOT, '/var/lib/letsencrypt/x')).toBe(true);
    expect(writable(UNIT, '/var/lib/letsencrypt/x')).toBe(false);
    expect(writable(UNIT, '/etc/docker/daemon.json')).toBe(true);
    expect(writable(PERBOOT, '/etc/docker/daemon.json')).toBe(false);
    // It still reaches Docker's socket: on a clone it pauses, removes and recreates containers.
    expect(readFileSync(PERBOOT, 'utf8')).not.toMatch(/^InaccessiblePaths=.*\/run\/docker\.sock/m);
  });
});

describe('both units', () => {
  it.each([UNIT, PERBOOT])(
    "may write nothing in /run but nginx's pid file, which they make sure exists before the sandbox is made (%s)",
    (file) => {
      expect(writable(file, '/run/nginx.pid')).toBe(true);
      for (const other of ['/run/ifb-probe', '/run/docker.sock', '/run/systemd/notify', '/run/dbus/system_bus_socket'])
        expect({ other, writable: writable(file, other) }).toEqual({ other, writable: false });
      // A ReadWritePaths= file that does not exist is skipped ("-"): nginx -t would then find /run read-only.
      const unit = readFileSync(file, 'utf8');
      expect(unit).toMatch(/^ExecStartPre=\+\/bin\/touch \/run\/nginx\.pid$/m);
      expect(unit).toMatch(/^ReadWritePaths=.* -\/run\/nginx\.pid$/m);
      // ProtectSystem=strict leaves /run writable once ProtectProc= is set (the e2e shows it): said explicitly.
      expect(unit).toMatch(/^ReadOnlyPaths=\/run$/m);
    },
  );
});

/** Whether a unit's ReadWritePaths= (optional "-" entries included) make `target` writable. */
function writable(unit: string, target: string): boolean {
  return readFileSync(unit, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('ReadWritePaths='))
    .flatMap((l) => l.slice('ReadWritePaths='.length).trim().split(/\s+/))
    .map((entry) => entry.replace(/^-/, ''))
    .some((dir) => target === dir || target.startsWith(`${dir.replace(/\/$/, '')}/`));
}

describe('the shipped config.yaml', () => {
  it('parses as it ships (all commented) and, uncommented, states exactly the defaults', () => {
    const text = readFileSync(path.join(REPO, 'templates/config.yaml'), 'utf8');
    expect(parseConfig(text, { displayPath: 'config.yaml' })).toEqual(DEFAULT_CONFIG);
    const uncommented = text
      .split('\n')
      .filter((l) => /^#(\S| {2})/.test(l))
      .map((l) => l.slice(1))
      .join('\n');
    expect(parseConfig(uncommented, { displayPath: 'config.yaml' })).toEqual(DEFAULT_CONFIG);
  });
});
