// doctor's audit of the seed image's host hardening against a --root tree: one where every claim holds
// (ufw 0.36's own rules files, Debian's fail2ban jail.conf and apt files), one where nothing is
// installed, one per broken claim, hostile files; then --live with stand-in ufw, fail2ban-client and
// systemctl for what only the host can say.
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BUNDLE, pathWith, REPO, runCli } from '../support/cli.js';
import { makeRoot, readFile, writeFile } from '../support/root.js';

const FIXTURES = path.join(REPO, 'test/fixtures/hardening');
const HOST_BIN = path.join(REPO, 'test/fixtures/host-bin');
const TREE_IDS = ['ufw-22-80-443', 'fail2ban-jails', 'unattended-upgrades', 'auditd'] as const;
// The jail the .deb ships, as it ships it.
const OUR_JAIL = readFileSync(path.join(REPO, 'debian/fail2ban/jail.d/immich-firstboot.conf'), 'utf8');

interface Check {
  id: string;
  result: string;
  detail: string;
  fix?: string;
}

const cleanups: Array<() => void> = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});

beforeAll(() => {
  if (!existsSync(BUNDLE)) throw new Error('run `npm run build` first (npm test does)');
  if (!existsSync('/etc/fail2ban/jail.conf'))
    throw new Error("Debian's fail2ban is missing: run bash test/env/install-deps.sh");
});

const fixture = (name: string): string => readFileSync(path.join(FIXTURES, name), 'utf8');

function enable(root: string, unit: string): void {
  mkdirSync(path.join(root, '/etc/systemd/system/multi-user.target.wants'), { recursive: true });
  symlinkSync(`/lib/systemd/system/${unit}`, path.join(root, '/etc/systemd/system/multi-user.target.wants', unit));
}

/** A tree where every claim holds, as the seed image ships it. */
function hardened(root = makeRoot()): string {
  for (const bin of ['/usr/sbin/ufw', '/usr/bin/fail2ban-server', '/usr/bin/unattended-upgrade', '/usr/sbin/auditd'])
    writeFile(root, bin, '#!/bin/sh\n', 0o755);
  writeFile(root, '/etc/ufw/ufw.conf', fixture('ufw/ufw.conf'));
  writeFile(root, '/etc/default/ufw', fixture('ufw/default-ufw'));
  writeFile(root, '/etc/ufw/user.rules', fixture('ufw/seed-user.rules'), 0o640);
  writeFile(root, '/etc/ufw/user6.rules', fixture('ufw/seed-user6.rules'), 0o640);
  writeFile(root, '/etc/fail2ban/jail.conf', readFileSync('/etc/fail2ban/jail.conf', 'utf8'));
  writeFile(root, '/etc/fail2ban/jail.d/defaults-debian.conf', '[sshd]\nenabled = true\n');
  writeFile(root, '/etc/fail2ban/jail.d/immich-firstboot.conf', OUR_JAIL);
  writeFile(root, '/etc/apt/apt.conf.d/20auto-upgrades', fixture('apt/20auto-upgrades'));
  writeFile(root, '/etc/apt/apt.conf.d/50unattended-upgrades', fixture('apt/50unattended-upgrades'));
  for (const unit of ['ufw.service', 'fail2ban.service', 'auditd.service']) enable(root, unit);
  return root;
}

/** A tree after a first boot (without the stack): every other check of doctor passes on it. */
async function booted(): Promise<string> {
  const root = makeRoot();
  const run = await runCli(['--root', root, 'run', '--skip-stack']);
  expect(run.code, run.stderr).toBe(0);
  return root;
}

const append = (inside: string, text: string) => (root: string) =>
  writeFile(root, inside, readFile(root, inside).replace('### END RULES ###', `${text}\n\n### END RULES ###`));
const replace = (inside: string, from: string | RegExp, to: string) => (root: string) =>
  writeFile(root, inside, readFile(root, inside).replace(from, to));

async function doctor(root: string, args: string[] = [], env: Record<string, string> = {}) {
  const result = await runCli(['--root', root, 'doctor', '--json', ...args], env);
  const checks = Object.fromEntries((JSON.parse(result.stdout) as Check[]).map((c) => [c.id, c]));
  return { code: result.code, checks };
}

describe('immich-firstboot doctor: the seed image hardening, in the tree', () => {
  it('passes ufw, fail2ban, unattended-upgrades and auditd on a tree where each claim holds; AppArmor needs the host', async () => {
    const { code, checks } = await doctor(hardened(await booted()));
    for (const id of TREE_IDS) expect(checks[id]?.result, `${id}: ${checks[id]?.detail}`).toBe('pass');
    expect(checks['ufw-22-80-443']?.detail).toBe(
      'ufw is enabled, drops incoming traffic by default and lets in only 22, 80, 443',
    );
    expect(checks['apparmor-docker-default']).toMatchObject({
      result: 'skipped',
      detail: expect.stringContaining('add --live'),
    });
    expect(code).toBe(0);
  });

  it('warns, naming the claim each breaks, when nothing is installed, and exits 0', async () => {
    const { code, checks } = await doctor(await booted());
    expect(checks['ufw-22-80-443']).toMatchObject({
      result: 'warn',
      detail:
        'ufw is not installed: the image promises a firewall that lets in only SSH (22), HTTP (80) and HTTPS (443)',
      fix: expect.stringContaining('apt install ufw'),
    });
    expect(checks['fail2ban-jails']).toMatchObject({
      result: 'warn',
      detail: expect.stringContaining('the image promises fail2ban against SSH'),
    });
    expect(checks['unattended-upgrades']?.detail).toContain('the image promises security updates installed unattended');
    expect(checks.auditd?.detail).toContain('the image promises an audit trail');
    expect(code).toBe(0);
  });

  it.each([
    [
      'an extra port is allowed (IPv4)',
      append(
        '/etc/ufw/user.rules',
        '### tuple ### allow tcp 8080 0.0.0.0/0 any 0.0.0.0/0 in\n-A ufw-user-input -p tcp --dport 8080 -j ACCEPT',
      ),
      'ufw-22-80-443',
      'fail',
      'ufw lets in port 8080 (tcp, IPv4; /etc/ufw/user.rules line',
      'ufw delete allow 8080/tcp',
    ],
    [
      'a port range is allowed on IPv6 only',
      append('/etc/ufw/user6.rules', '### tuple ### allow udp 60000:61000 ::/0 any ::/0 in'),
      'ufw-22-80-443',
      'fail',
      'ufw lets in port 60000:61000 (udp, IPv6;',
      'ufw delete allow 60000:61000/udp',
    ],
    [
      'an app profile opens every port to one address',
      append('/etc/ufw/user.rules', '### tuple ### allow any any 0.0.0.0/0 any 192.0.2.4 in'),
      'ufw-22-80-443',
      'fail',
      'ufw lets in every port (tcp and udp from 192.0.2.4, IPv4;',
      'ufw delete allow from 192.0.2.4',
    ],
    [
      'incoming traffic is accepted by default',
      replace('/etc/default/ufw', 'DEFAULT_INPUT_POLICY="DROP"', 'DEFAULT_INPUT_POLICY="ACCEPT"'),
      'ufw-22-80-443',
      'fail',
      'incoming traffic is accepted by default',
      'ufw default deny incoming',
    ],
    [
      'ufw is not enabled',
      replace('/etc/ufw/ufw.conf', 'ENABLED=yes', 'ENABLED=no'),
      'ufw-22-80-443',
      'fail',
      'ufw is not enabled (ENABLED=yes is not set in /etc/ufw/ufw.conf)',
      'ufw enable',
    ],
    [
      'jail.local disables sshd',
      (root: string) => writeFile(root, '/etc/fail2ban/jail.local', '[sshd]\nenabled = false ; too noisy\n'),
      'fail2ban-jails',
      'fail',
      'the sshd jail is disabled (/etc/fail2ban/jail.local line 2)',
      "printf '[sshd]\\nenabled = true\\n' > /etc/fail2ban/jail.d/sshd-enable.local && systemctl reload fail2ban",
    ],
    [
      'our jail is missing',
      (root: string) => unlinkSync(path.join(root, '/etc/fail2ban/jail.d/immich-firstboot.conf')),
      'fail2ban-jails',
      'fail',
      'no file in /etc/fail2ban defines the immich-firstboot jail',
      'apt install --reinstall immich-firstboot',
    ],
    [
      'fail2ban.service is masked',
      (root: string) => symlinkSync('/dev/null', path.join(root, '/etc/systemd/system/fail2ban.service')),
      'fail2ban-jails',
      'fail',
      'fail2ban.service is masked',
      'systemctl unmask fail2ban.service && systemctl enable --now fail2ban.service',
    ],
    [
      'a later apt file turns unattended upgrades off',
      (root: string) =>
        writeFile(root, '/etc/apt/apt.conf.d/99local', 'APT { Periodic { Unattended-Upgrade "0"; }; };\n'),
      'unattended-upgrades',
      'fail',
      'APT::Periodic::Unattended-Upgrade is "0" (/etc/apt/apt.conf.d/99local line 1): off',
      'set it to "1" in /etc/apt/apt.conf.d/99local',
    ],
    [
      'an apt file has a syntax error',
      (root: string) => writeFile(root, '/etc/apt/apt.conf.d/10proxy', 'Acquire::http::Proxy "http://proxy:3128"\n'),
      'unattended-upgrades',
      'fail',
      'apt stops at /etc/apt/apt.conf.d/10proxy line 1: a missing ; at the end of the file',
      'apt-config dump >/dev/null (it names the error); fix /etc/apt/apt.conf.d/10proxy',
    ],
    [
      'auditd is not enabled',
      (root: string) => unlinkSync(path.join(root, '/etc/systemd/system/multi-user.target.wants/auditd.service')),
      'auditd',
      'fail',
      'auditd.service is disabled: nothing is audited after a boot',
      'systemctl enable --now auditd.service',
    ],
  ] as const)(
    'when %s, that check fails with the fix, the others still pass, and doctor exits 1',
    async (_what, breakIt, id, result, detail, fix) => {
      const root = hardened(await booted());
      breakIt(root);
      const { code, checks } = await doctor(root);
      expect(checks[id]).toMatchObject({
        result,
        detail: expect.stringContaining(detail),
        fix: expect.stringContaining(fix),
      });
      for (const other of TREE_IDS.filter((o) => o !== id)) expect(checks[other]?.result, other).toBe('pass');
      expect(code).toBe(1);
    },
  );
});

describe('immich-firstboot doctor: hostile hardening files', () => {
  it('warns (does not fail) on an apt #include it does not follow', async () => {
    const root = hardened();
    writeFile(root, '/etc/apt/apt.conf.d/30site', '#include "/srv/apt-site.conf";\n');
    const { checks } = await doctor(root);
    expect(checks['unattended-upgrades']).toMatchObject({
      result: 'warn',
      detail: expect.stringContaining('/etc/apt/apt.conf.d/30site line 1 includes another file'),
      fix: 'apt-config dump | grep -i periodic',
    });
  });

  it('reads a rules file with control characters and a tuple ufw would skip without crashing, and prints them escaped', async () => {
    const root = hardened();
    append(
      '/etc/ufw/user.rules',
      `# \u001b]0;owned\u0007\u001b[2J a comment\n### tuple ### allow tcp 9\u001b[31m 0.0.0.0/0 any 0.0.0.0/0 in`,
    )(root);
    const human = await runCli(['--root', root, 'doctor']);
    // eslint-disable-next-line no-control-regex -- no control character may reach the terminal
    expect(human.stdout).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f]/);
    expect(human.stdout).toMatch(
      /warn: ufw-22-80-443 — line \d+ of \/etc\/ufw\/user\.rules is not a rule ufw can read/,
    );
    const { checks } = await doctor(root);
    expect(checks['ufw-22-80-443']).toMatchObject({ result: 'warn', fix: expect.stringContaining('ufw reload') });
  });

  it('names a rules file too large to be one instead of reading it', async () => {
    const root = hardened();
    writeFile(root, '/etc/ufw/user.rules', `${'# padding\n'.repeat(200_000)}`);
    const { checks } = await doctor(root);
    expect(checks['ufw-22-80-443']).toMatchObject({
      result: 'warn',
      detail: expect.stringContaining('/etc/ufw/user.rules is 2000000 bytes, more than a configuration doctor reads'),
    });
  });

  it('names a configuration that is not a regular file (a FIFO, which would block a reader) and does not wait on it', async () => {
    const root = hardened();
    unlinkSync(path.join(root, '/etc/apt/apt.conf.d/20auto-upgrades'));
    execFileSync('mkfifo', [path.join(root, '/etc/apt/apt.conf.d/20auto-upgrades')]);
    const { checks } = await doctor(root);
    expect(checks['unattended-upgrades']).toMatchObject({
      result: 'warn',
      detail: expect.stringContaining('/etc/apt/apt.conf.d/20auto-upgrades is not a regular file'),
    });
  });
});

describe('immich-firstboot doctor --live: the hardening on the host', () => {
  /** `ufw status` and `fail2ban-client status` as the host answers them. */
  function standins(ufwStatus: string, jails: string): string {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ifb-hardening-bin-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(path.join(dir, 'ufw'), `#!/bin/sh\necho 'Status: ${ufwStatus}'\n`);
    writeFileSync(
      path.join(dir, 'fail2ban-client'),
      `#!/bin/sh\nprintf 'Status\\n|- Number of jail:\\t2\\n\`- Jail list:\\t${jails}\\n'\n`,
    );
    for (const f of ['ufw', 'fail2ban-client']) chmodSync(path.join(dir, f), 0o755);
    return dir;
  }

  it('passes when ufw is active, fail2ban runs both jails and auditd is active', async () => {
    const { checks } = await doctor(hardened(), ['--live'], {
      PATH: pathWith(standins('active', 'immich-firstboot, sshd'), HOST_BIN),
    });
    for (const id of TREE_IDS) expect(checks[id]?.result, `${id}: ${checks[id]?.detail}`).toBe('pass');
    expect(checks['ufw-22-80-443']?.detail).toContain('(active now)');
    // Only this machine's kernel can say; the check runs (it is not skipped) and names what it read.
    expect(checks['apparmor-docker-default']?.result).not.toBe('skipped');
    expect(checks['apparmor-docker-default']?.detail).toMatch(/AppArmor|docker-default/);
  });

  it('fails what the host contradicts: ufw inactive, a jail not running, auditd failed', async () => {
    const { code, checks } = await doctor(hardened(), ['--live'], {
      PATH: pathWith(standins('inactive', 'sshd'), HOST_BIN),
      STANDIN_UNIT_FAILED: 'auditd.service',
    });
    expect(checks['ufw-22-80-443']).toMatchObject({
      result: 'fail',
      detail: 'ufw is enabled at boot but not active on this host now',
      fix: 'ufw enable',
    });
    expect(checks['fail2ban-jails']).toMatchObject({
      result: 'fail',
      detail: 'fail2ban runs without the immich-firstboot jail, though its configuration enables it',
    });
    expect(checks.auditd).toMatchObject({ result: 'fail', detail: 'auditd.service is enabled but failed' });
    expect(code).toBe(1);
  });
});
