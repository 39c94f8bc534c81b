// doctor's audit of fail2ban: installed, its service enabled, and the `sshd` jail and ours
// (`immich-firstboot`, shipped in jail.d by the .deb) enabled as fail2ban reads its configuration; on the
// host, `fail2ban-client status` lists both.

import { HARDENING } from '../paths.js';
import { bad, type DoctorCheck } from './doctor-audit.js';
import {
  CLAIM,
  enablement,
  enableFix,
  installed,
  readConfig,
  unreadable,
  verdictOf,
  type Problem,
} from './doctor-hardening.js';

/** The jails the image promises: SSH's, and ours on Immich's failed logins. */
export const JAILS = ['sshd', 'immich-firstboot'] as const;

/** The files fail2ban reads for its jails, in its order: jail.conf, jail.d/*.conf, jail.local, jail.d/*.local. */
export function jailFiles(dir: string, inJailD: readonly string[]): string[] {
  // Python's glob, which fail2ban uses, skips names starting with a dot; sorted by code point.
  const visible = inJailD.filter((n) => !n.startsWith('.')).sort();
  const ending = (ext: string): string[] => visible.filter((n) => n.endsWith(ext)).map((n) => `${dir}/jail.d/${n}`);
  return [`${dir}/jail.conf`, ...ending('.conf'), `${dir}/jail.local`, ...ending('.local')];
}

/** Where each jail's `enabled` was last set; `[DEFAULT]`'s applies to a jail that sets none. */
export interface JailSettings {
  /** Every section but DEFAULT and INCLUDES: the jails fail2ban knows of. */
  jails: Map<string, { enabled?: string; where?: string }>;
  defaultEnabled?: { value: string; where: string };
}

/** Reads one file into `into` as Python's configparser does for fail2ban (`;` inline comments, continuations). */
export function readJailFile(text: string, file: string, into: JailSettings): void {
  let section: string | undefined;
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    // An indented line continues the previous value; a comment line is one whose first non-blank is # or ;.
    if (/^\s*([#;]|$)/.test(line) || /^\s/.test(line)) return;
    const header = /^\[(.+)\]\s*$/.exec(line);
    if (header) {
      section = header[1]!;
      if (section !== 'DEFAULT' && section !== 'INCLUDES' && !into.jails.has(section)) into.jails.set(section, {});
      return;
    }
    const option = /^(.*?)\s*[=:]\s*(.*)$/.exec(line);
    if (!option || section === undefined || option[1].toLowerCase() !== 'enabled') return;
    const value = option[2].replace(/\s;.*$/, '').trim();
    const where = `${file} line ${i + 1}`;
    if (section === 'DEFAULT') into.defaultEnabled = { value, where };
    else if (section !== 'INCLUDES') into.jails.set(section, { enabled: value, where });
  });
}

/** fail2ban's reading of a boolean. */
const isTrue = (value: string | undefined): boolean => ['1', 'on', 'true', 'yes'].includes((value ?? '').toLowerCase());

export function jailEnabled(settings: JailSettings, jail: string): { enabled: boolean; where?: string } {
  const own = settings.jails.get(jail);
  if (!own) return { enabled: false };
  if (own.enabled !== undefined) return { enabled: isTrue(own.enabled), where: own.where };
  return { enabled: isTrue(settings.defaultEnabled?.value), where: settings.defaultEnabled?.where };
}

/** The jails `fail2ban-client status` lists (`` `- Jail list:	a, b ``). */
export function statusJails(stdout: string): string[] {
  const list = /Jail list:\s*(.*)$/m.exec(stdout)?.[1] ?? '';
  return list
    .split(',')
    .map((j) => j.trim())
    .filter(Boolean);
}

export const fail2banCheck: DoctorCheck = {
  id: 'fail2ban-jails',
  needsHost: false,
  async run(audit) {
    const { sys } = audit;
    const dir = HARDENING.fail2banDir;
    if (!(await installed(sys, HARDENING.fail2banBins)))
      return bad('warn', `fail2ban is not installed: ${CLAIM.fail2ban}`, 'apt install fail2ban');
    const settings: JailSettings = { jails: new Map() };
    let jailD: string[];
    try {
      jailD = await sys.fs.list(`${dir}/jail.d`);
    } catch {
      return unreadable(`${dir}/jail.d could not be listed`, CLAIM.fail2ban);
    }
    for (const file of jailFiles(dir, jailD)) {
      const read = await readConfig(sys, file);
      if ('unreadable' in read) return unreadable(read.unreadable, CLAIM.fail2ban);
      if ('text' in read) readJailFile(read.text, file, settings);
    }
    const problems: Problem[] = [];
    for (const jail of JAILS) {
      const { enabled, where } = jailEnabled(settings, jail);
      if (enabled) continue;
      const why = !settings.jails.has(jail)
        ? `no file in ${dir} defines the ${jail} jail`
        : `the ${jail} jail is disabled${where ? ` (${where})` : ' (no enabled = true)'}`;
      problems.push({
        result: 'fail',
        detail: why,
        fix:
          jail === 'immich-firstboot' && !settings.jails.has(jail)
            ? `apt install --reinstall immich-firstboot (it ships ${dir}/jail.d/immich-firstboot.conf), then: systemctl reload fail2ban`
            : `printf '[${jail}]\\nenabled = true\\n' > ${dir}/jail.d/${jail}-enable.local && systemctl reload fail2ban`,
      });
    }
    const unit = await enablement(sys, 'fail2ban.service');
    if (unit !== 'enabled')
      problems.push({
        result: 'fail',
        detail: `fail2ban.service is ${unit}: no jail runs after a boot`,
        fix: enableFix('fail2ban.service', unit),
      });
    if (audit.live && problems.length === 0) {
      const status = await sys.exec('fail2ban-client', ['status'], { timeoutMs: 10_000 });
      const running = statusJails(status.stdout);
      if (status.notFound)
        problems.push({
          result: 'warn',
          detail: 'fail2ban is in the tree but not on this host',
          fix: 'apt install fail2ban',
        });
      else if (status.exitCode !== 0)
        problems.push({
          result: 'fail',
          detail: `fail2ban is not running (\`fail2ban-client status\` exit ${status.exitCode})`,
          fix: 'systemctl restart fail2ban && journalctl -u fail2ban -n 20',
        });
      else
        for (const jail of JAILS.filter((j) => !running.includes(j)))
          problems.push({
            result: 'fail',
            detail: `fail2ban runs without the ${jail} jail, though its configuration enables it`,
            fix: `fail2ban-client -t (it names what is wrong); then: systemctl reload fail2ban`,
          });
    }
    return verdictOf(
      problems,
      `fail2ban is enabled with the ${JAILS.join(' and ')} jails${audit.live ? ' (running now)' : ''}`,
    );
  },
};
