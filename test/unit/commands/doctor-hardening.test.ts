// The readers behind doctor's hardening audit, held to the programs whose files they read: ufw 0.36's own
// user.rules (test/fixtures/hardening/ufw, written by `ufw --datadir=SCRATCH ...`) and real ufw deleting
// the rule our fix names; apt-config on the same apt configuration; fail2ban-client -d on the same jails.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { aptParts, periodicOn, readAptConf, type AptConfig } from '../../../src/commands/doctor-apt.js';
import { jailEnabled, jailFiles, readJailFile, type JailSettings } from '../../../src/commands/doctor-fail2ban.js';
import {
  extraPorts,
  parseUfwRules,
  shellSettings,
  ufwCommand,
  ufwDelete,
} from '../../../src/commands/doctor-ufw-rules.js';
import { REPO } from '../../support/cli.js';

const FIXTURES = path.join(REPO, 'test/fixtures/hardening');
const fixture = (name: string): string => readFileSync(path.join(FIXTURES, name), 'utf8');
const dirs: string[] = [];
afterEach(() => {
  while (dirs.length) rmSync(dirs.pop()!, { recursive: true, force: true });
});
function tempDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ifb-hardening-'));
  dirs.push(dir);
  return dir;
}
/** A program the suite needs: missing, the test fails with the fix rather than skipping. */
function need(program: string): void {
  if (spawnSync('sh', ['-c', `command -v ${program}`]).status !== 0)
    throw new Error(`${program} is missing: run bash test/env/install-deps.sh`);
}

describe("ufw's rules (user.rules, user6.rules)", () => {
  it("reads the seed's rules (limit OpenSSH, allow 'Nginx Full') as opening only 22, 80 and 443", () => {
    for (const file of ['ufw/seed-user.rules', 'ufw/seed-user6.rules']) {
      const { rules, malformed } = parseUfwRules(fixture(file));
      expect(malformed).toEqual([]);
      expect(rules.map((r) => `${r.action} ${r.protocol} ${r.dport} ${r.dapp}`)).toEqual([
        'limit tcp 22 OpenSSH',
        'allow tcp 80,443 Nginx Full',
      ]);
      expect(rules.flatMap(extraPorts)).toEqual([]);
    }
  });

  it('names every port an inbound allow or limit opens beyond 22, 80 and 443, and nothing a deny, an out or a route rule names', () => {
    const { rules, malformed } = parseUfwRules(fixture('ufw/many-user.rules'));
    expect(malformed).toEqual([]);
    const extras = rules.map((r) => [ufwDelete(r), extraPorts(r)]).filter(([, e]) => e.length > 0);
    expect(extras).toEqual([
      ['ufw delete allow 8080:8090/tcp', ['8080:8090']],
      ['ufw delete allow from 10.0.0.0/8 to any port 53 proto udp', ['53']],
      ['ufw delete allow in on eth0 to any port 5432 proto tcp', ['5432']],
      ['ufw delete allow from 192.0.2.4', ['any']],
      ['ufw delete allow 2283/tcp', ['2283']],
      ['ufw delete allow 60000:61000/udp', ['60000:61000']],
    ]);
  });

  it('gives, for each rule, the command with which real ufw deletes exactly that rule (IPv4 and IPv6)', () => {
    need('ufw');
    for (const [v4, v6] of [
      ['many-user.rules', 'many-user6.rules'],
      ['seed-user.rules', 'seed-user6.rules'],
    ] as const) {
      const { rules } = parseUfwRules(fixture(`ufw/${v4}`));
      const { rules: rules6 } = parseUfwRules(fixture(`ufw/${v6}`));
      for (const rule of rules) {
        const data = tempDir();
        mkdirSync(path.join(data, 'etc/default'), { recursive: true });
        mkdirSync(path.join(data, 'lib/ufw'), { recursive: true });
        cpSync('/etc/ufw', path.join(data, 'etc/ufw'), { recursive: true });
        writeFileSync(path.join(data, 'etc/default/ufw'), fixture('ufw/default-ufw'));
        writeFileSync(path.join(data, 'etc/ufw/user.rules'), fixture(`ufw/${v4}`));
        writeFileSync(path.join(data, 'etc/ufw/user6.rules'), fixture(`ufw/${v6}`));
        writeFileSync(
          path.join(data, 'etc/ufw/applications.d/openssh-server'),
          '[OpenSSH]\ntitle=Secure shell server\ndescription=OpenSSH\nports=22/tcp\n',
        );
        // Pasted into a shell as an admin would (quotes included).
        execFileSync('sh', ['-c', ufwDelete(rule).replace(/^ufw /, `ufw --datadir=${data} `)], { stdio: 'pipe' });
        const left = parseUfwRules(readFileSync(path.join(data, 'etc/ufw/user.rules'), 'utf8')).rules;
        const left6 = parseUfwRules(readFileSync(path.join(data, 'etc/ufw/user6.rules'), 'utf8')).rules;
        expect(left.map(ufwCommand), ufwCommand(rule)).toEqual(rules.filter((r) => r !== rule).map(ufwCommand));
        // A rule for any address is in both files; `ufw delete` removes both.
        const twin = rules6.filter((r) => ufwCommand(r) === ufwCommand(rule));
        expect(left6.length, ufwCommand(rule)).toBe(rules6.length - twin.length);
      }
    }
  });

  it('counts as malformed (and echoes nothing of) a tuple ufw would skip: a control character, a bad field, a bad length', () => {
    const text = [
      '### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in',
      '### tuple ### allow tcp 8\u001b]0;pwned\u0007 0.0.0.0/0 any 0.0.0.0/0 in',
      '### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 $(reboot) - in',
      '### tuple ### allow tcp 22',
      '# \u001b[2J a comment with control characters',
    ].join('\n');
    expect(parseUfwRules(text)).toMatchObject({ rules: [{ dport: '22' }], malformed: [2, 3, 4] });
  });

  it('reads ufw.conf and /etc/default/ufw as ufw does: the last KEY=value wins, quotes and case do not matter', () => {
    const settings = shellSettings(`${fixture('ufw/default-ufw')}\n${fixture('ufw/ufw.conf')}`);
    expect([settings.get('enabled'), settings.get('default_input_policy'), settings.get('ipv6')]).toEqual([
      'yes',
      'drop',
      'yes',
    ]);
    expect(
      shellSettings('DEFAULT_INPUT_POLICY="DROP"\nDEFAULT_INPUT_POLICY=\'Accept\'\n').get('default_input_policy'),
    ).toBe('accept');
  });
});

describe("apt's configuration, as apt-config reads it", () => {
  const KEYS = ['APT::Periodic::Unattended-Upgrade', 'APT::Periodic::Update-Package-Lists'];

  /** What apt-config makes of these parts files (named 01x, 02x, ...): the two values, or its error. */
  function aptConfig(parts: string[]): Record<string, string> | 'error' {
    const dir = tempDir();
    mkdirSync(path.join(dir, 'parts'));
    parts.forEach((text, i) => writeFileSync(path.join(dir, 'parts', `${String(i + 1).padStart(2, '0')}x`), text));
    writeFileSync(path.join(dir, 'apt.conf'), '');
    writeFileSync(path.join(dir, 'main.conf'), `Dir::Etc::parts "${dir}/parts";\nDir::Etc::main "${dir}/apt.conf";\n`);
    const run = spawnSync('apt-config', ['dump'], { env: { ...process.env, APT_CONFIG: `${dir}/main.conf` } });
    if (run.status !== 0) return 'error';
    const out: Record<string, string> = {};
    for (const line of run.stdout.toString().split('\n')) {
      const m = /^(\S+) "(.*)";$/.exec(line);
      const key = m && KEYS.find((k) => k.toLowerCase() === m[1].toLowerCase());
      if (key) out[key] = m[2]!;
    }
    return out;
  }

  function ours(parts: string[]): Record<string, string> | 'error' {
    const config: AptConfig = new Map();
    for (const [i, text] of parts.entries()) if (readAptConf(text, `part ${i}`, config)) return 'error';
    const out: Record<string, string> = {};
    for (const key of KEYS) {
      const set = config.get(key.toLowerCase());
      if (set) out[key] = set.value;
    }
    return out;
  }

  it.each([
    ['one line', ['APT::Periodic::Unattended-Upgrade "1";']],
    ['nested blocks', ['APT { Periodic { Unattended-Upgrade "1"; Update-Package-Lists "1" }; };']],
    [
      'a block closed without ;',
      ['APT::Periodic { Unattended-Upgrade "1"; } APT::Periodic::Update-Package-Lists "2";'],
    ],
    ['lower case', ['apt::periodic::unattended-upgrade "1";']],
    ['an unquoted value', ['APT::Periodic::Unattended-Upgrade 1;']],
    ['// and # comments', ['APT::Periodic::Unattended-Upgrade "1"; // on\n# APT::Periodic::Update-Package-Lists "1";']],
    [
      'a /* */ comment over lines',
      ['/* APT::Periodic::Unattended-Upgrade "1";\n */ APT::Periodic::Update-Package-Lists "1";'],
    ],
    ['// and # inside quotes', ['APT::Periodic::Unattended-Upgrade "//1#";']],
    ['the later file wins', ['APT::Periodic::Unattended-Upgrade "1";', 'APT::Periodic::Unattended-Upgrade "0";']],
    [
      '#clear',
      ['APT::Periodic::Unattended-Upgrade "1";\n#clear APT::Periodic;\nAPT::Periodic::Update-Package-Lists "1";'],
    ],
    [
      'a list',
      ['Unattended-Upgrade::Origins-Pattern { "origin=Debian"; "o=x"; };\nAPT::Periodic::Unattended-Upgrade "1";'],
    ],
    ['; on the next line', ['APT::Periodic::Unattended-Upgrade "1" // why\n;']],
    [
      'a missing ; between statements (apt stops)',
      ['APT::Periodic::Unattended-Upgrade "1"\nAPT::Periodic::Update-Package-Lists "1";'],
    ],
    ['a missing ; at the end (apt stops)', ['APT::Periodic::Unattended-Upgrade "1"']],
    ['an unclosed quote (apt stops)', ['APT::Periodic::Unattended-Upgrade "1;']],
    ['#clear inside a block (apt stops)', ['APT { #clear Periodic; };']],
    [
      "Debian's own 20auto-upgrades and 50unattended-upgrades",
      [fixture('apt/20auto-upgrades'), fixture('apt/50unattended-upgrades')],
    ],
  ])('agrees with apt-config on %s', (_what, parts) => {
    need('apt-config');
    expect(ours(parts)).toEqual(aptConfig(parts));
  });

  it('takes the files apt takes from apt.conf.d, in its order', () => {
    expect(
      aptParts(['b.conf', '20auto-upgrades', 'a.txt', 'c.bak', 'd.dpkg-old', 'K.CONF', 'g h', 'x~', '10x.conf']),
    ).toEqual(['10x.conf', '20auto-upgrades', 'b.conf']);
  });

  it.each([
    ['1', true],
    ['7', true],
    ['always', true],
    ['12h', true],
    ['0', false],
    ['', false],
    ['00', false],
    ['no', false],
  ])('reads the interval "%s" as %s, as apt.systemd.daily does', (value, on) => {
    expect(periodicOn(value)).toBe(on);
  });
});

describe("fail2ban's jails, as fail2ban-client -d reads them", () => {
  /** fail2ban's own configuration with `extra` files added; the jails each reader enables. */
  function compare(extra: Record<string, string>): { ours: string[]; theirs: string[] } {
    need('fail2ban-client');
    const dir = tempDir();
    cpSync('/etc/fail2ban', dir, { recursive: true });
    for (const [name, text] of Object.entries(extra)) writeFileSync(path.join(dir, name), text);
    const run = spawnSync('fail2ban-client', ['--conf', dir, '-d']);
    const theirs = [...run.stdout.toString().matchAll(/^\['add', '([^']+)'/gm)].map((m) => m[1]).sort();
    const settings: JailSettings = { jails: new Map() };
    const jailD = execFileSync('ls', ['-A', path.join(dir, 'jail.d')])
      .toString()
      .split('\n')
      .filter(Boolean);
    for (const file of jailFiles(dir, jailD)) {
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch {
        continue;
      }
      readJailFile(text, file, settings);
    }
    const ours = [...settings.jails.keys()].filter((j) => jailEnabled(settings, j).enabled).sort();
    return { ours, theirs };
  }
  const OURS = '[immich-firstboot]\nenabled = true\nfilter = sshd\nport = http,https\nlogpath = /dev/null\n';

  it.each([
    ["Debian's defaults and our jail", { 'jail.d/immich-firstboot.conf': OURS }],
    [
      'jail.local disabling sshd (with a ; comment)',
      { 'jail.d/immich-firstboot.conf': OURS, 'jail.local': '[sshd]\nenabled = false ; off\n' },
    ],
    [
      'jail.d/*.local read after jail.local',
      {
        'jail.d/immich-firstboot.conf': OURS,
        'jail.local': '[sshd]\nenabled = false\n',
        'jail.d/on.local': '[sshd]\nenabled = yes\n',
      },
    ],
    [
      'a later jail.d file winning',
      { 'jail.d/immich-firstboot.conf': OURS, 'jail.d/zz.conf': '[immich-firstboot]\nenabled = 0\n' },
    ],
    [
      'a hidden file, which fail2ban ignores',
      { 'jail.d/immich-firstboot.conf': OURS, 'jail.d/.off.local': '[sshd]\nenabled = false\n' },
    ],
  ])('agrees on %s', (_what, extra) => {
    const { ours, theirs } = compare(extra);
    expect(theirs.length).toBeGreaterThan(0);
    expect(ours).toEqual(theirs);
  });
});
