// What doctor's audits of the seed image's host hardening share: each claim in the words an admin reads,
// a config file read with a bound (its content may be hostile), whether a program is installed, and a
// systemd unit's enablement in the tree and its state on the host.

import { asFirstbootError } from '../errors.js';
import { HARDENING, PATHS } from '../paths.js';
import type { System } from '../system/index.js';
import { bad, pass, type Audit, type Verdict } from './doctor-audit.js';

/** What the seed image promises, as the warning for a missing piece says it. */
export const CLAIM = {
  ufw: 'the image promises a firewall that lets in only SSH (22), HTTP (80) and HTTPS (443)',
  fail2ban: 'the image promises fail2ban against SSH and Immich login password guessing',
  apparmor: "the image promises containers confined by AppArmor's docker-default profile",
  unattended: 'the image promises security updates installed unattended',
  auditd: 'the image promises an audit trail of the system (auditd)',
} as const;

/** The configuration files read here are a few KiB; past this one is not a configuration doctor reads. */
export const MAX_CONFIG_BYTES = 1024 * 1024;

export type ConfigRead = { text: string } | { missing: true } | { unreadable: string };

/** A small configuration file's text; a file too large, not regular or unreadable is named, never thrown. */
export async function readConfig(sys: System, inside: string): Promise<ConfigRead> {
  try {
    const info = await sys.fs.info(inside, { follow: true });
    if (!info) return { missing: true };
    if (!info.isFile) return { unreadable: `${inside} is not a regular file` };
    if (info.size > MAX_CONFIG_BYTES)
      return { unreadable: `${inside} is ${info.size} bytes, more than a configuration doctor reads (1 MiB)` };
    const text = await sys.fs.read(inside);
    return text === undefined ? { missing: true } : { text };
  } catch (error) {
    return { unreadable: asFirstbootError(error).message };
  }
}

/** The warning for a file doctor could not read: the claim is not known to hold. */
export function unreadable(why: string, claim: string): Verdict {
  return bad(
    'warn',
    `${why}: doctor cannot tell whether ${claim.replace(/^the image promises /, 'it keeps ')}`,
    'run `immich-firstboot doctor` as root, or fix the file it names',
  );
}

export async function installed(sys: System, bins: readonly string[]): Promise<boolean> {
  for (const bin of bins) if (await sys.fs.exists(bin)) return true;
  return false;
}

export type Enablement = 'enabled' | 'disabled' | 'masked';

/** A unit's enablement as `systemctl enable`/`mask` leave it in the tree: the link in its target's .wants, or /dev/null. */
export async function enablement(sys: System, unit: string, target = 'multi-user.target'): Promise<Enablement> {
  if ((await sys.fs.readlink(`${HARDENING.systemdEtc}/${unit}`)) === PATHS.devNull) return 'masked';
  return (await sys.fs.info(`${HARDENING.systemdEtc}/${target}.wants/${unit}`)) ? 'enabled' : 'disabled';
}

/** The fix that makes a unit start at boot and now. */
export function enableFix(unit: string, state: Enablement): string {
  return `${state === 'masked' ? `systemctl unmask ${unit} && ` : ''}systemctl enable --now ${unit}`;
}

/** A unit's ActiveState on this host (`systemctl show`); undefined when systemctl cannot say. */
export async function activeState({ sys }: Audit, unit: string): Promise<string | undefined> {
  const result = await sys.exec('systemctl', ['show', '-p', 'ActiveState', unit], { timeoutMs: 10_000 });
  if (result.notFound || result.exitCode !== 0) return undefined;
  return /^ActiveState=(\S+)/m.exec(result.stdout)?.[1];
}

/** One problem a check found; the check's verdict is the worst of them. */
export interface Problem {
  result: 'warn' | 'fail';
  detail: string;
  fix: string;
}

/** Every problem in one verdict (fail beats warn, each fix once), or a pass. */
export function verdictOf(problems: readonly Problem[], passDetail: string): Verdict {
  if (problems.length === 0) return pass(passDetail);
  const result = problems.some((p) => p.result === 'fail') ? 'fail' : 'warn';
  return bad(
    result,
    problems.map((p) => p.detail).join('; '),
    [...new Set(problems.map((p) => p.fix))].join('; then '),
  );
}

/**
 * A piece of a file quoted in a finding: one line, at most 60 characters. doctor's output escapes control
 * characters (printable) and redacts the secret on its way out; this keeps a hostile file from filling it.
 */
export function excerpt(line: string): string {
  const one = line.split('\n')[0].trim();
  return one.length > 60 ? `${one.slice(0, 60)}…` : one;
}
