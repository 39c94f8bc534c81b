// doctor's audit of the firewall: ufw enabled at boot (and active on the host), incoming traffic dropped
// by default, and the rules ufw keeps (its `### tuple ###` lines in user.rules and user6.rules) opening
// nothing inbound but 22, 80 and 443.

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

/** The ports the image opens: SSH, and nginx's HTTP and HTTPS. */
export const OPEN_PORTS = [22, 80, 443] as const;

/** One rule as ufw records it: `### tuple ### ACTION PROTO DPORT DST SPORT SRC [DAPP SAPP] DIRECTION[_IFACE]`. */
export interface UfwRule {
  action: 'allow' | 'limit' | 'deny' | 'reject';
  /** `log` or `log-all` (the action was `allow_log`), or ''. */
  log: string;
  /** A `route` rule: forwarded traffic, not traffic to this host. */
  route: boolean;
  protocol: string;
  dport: string;
  dst: string;
  sport: string;
  src: string;
  dapp: string;
  sapp: string;
  direction: 'in' | 'out';
  ifaceIn: string;
  ifaceOut: string;
  line: number;
}

// Each field as ufw writes it; a tuple with anything else is one ufw itself skips as malformed.
const ACTION = /^(route:)?(allow|limit|deny|reject)(?:_(log|log-all))?$/;
const PROTO = /^[a-z0-9]+$/;
const PORTS = /^(any|\d{1,5}(?:[:,]\d{1,5})*)$/;
const ADDRESS = /^[0-9A-Fa-f.:]+(\/\d{1,3})?$/;
const APP = /^(-|[A-Za-z0-9][A-Za-z0-9%._+-]*)$/;
const IFACES = /^(in|out)(?:_(\w+))?(?:!out_(\w+))?$/;

/** The rules of a user.rules file, and the lines of tuples ufw would skip as malformed. */
export function parseUfwRules(text: string): { rules: UfwRule[]; malformed: number[] } {
  const rules: UfwRule[] = [];
  const malformed: number[] = [];
  text.split('\n').forEach((raw, i) => {
    if (!raw.startsWith('### tuple ###')) return;
    const f = raw.slice('### tuple ###'.length).split(' comment=')[0].trim().split(/\s+/);
    const withApps = f.length === 9;
    const action = ACTION.exec(f[0] ?? '');
    const ifaces = IFACES.exec(f[f.length - 1] ?? '');
    const [protocol, dport, dst, sport, src] = f.slice(1, 6);
    const [dapp, sapp] = withApps ? [f[6], f[7]] : ['-', '-'];
    const ok =
      (f.length === 7 || withApps) &&
      action &&
      ifaces &&
      PROTO.test(protocol) &&
      PORTS.test(dport) &&
      PORTS.test(sport) &&
      ADDRESS.test(dst) &&
      ADDRESS.test(src) &&
      APP.test(dapp) &&
      APP.test(sapp);
    if (!ok) {
      malformed.push(i + 1);
      return;
    }
    const app = (a: string): string => (a === '-' ? '' : a.replace(/%20/g, ' '));
    rules.push({
      action: action[2] as UfwRule['action'],
      log: action[3] ?? '',
      route: action[1] !== undefined,
      protocol: protocol,
      dport: dport,
      dst: dst,
      sport: sport,
      src: src,
      dapp: app(dapp),
      sapp: app(sapp),
      direction: ifaces[1] as 'in' | 'out',
      ifaceIn: ifaces[1] === 'in' ? (ifaces[2] ?? '') : '',
      ifaceOut: ifaces[3] ?? (ifaces[1] === 'out' ? (ifaces[2] ?? '') : ''),
      line: i + 1,
    });
  });
  return { rules, malformed };
}

const anywhere = (address: string): boolean => address === '0.0.0.0/0' || address === '::/0';

/** The ports beyond 22, 80 and 443 an inbound rule lets in ('any' for every port); [] for any other rule. */
export function extraPorts(rule: UfwRule): string[] {
  if (rule.route || rule.direction !== 'in' || (rule.action !== 'allow' && rule.action !== 'limit')) return [];
  if (rule.dport === 'any') return ['any'];
  const allowed = (p: number): boolean => (OPEN_PORTS as readonly number[]).includes(p);
  return rule.dport.split(',').filter((part) => {
    const [from, to = from] = part.split(':').map(Number) as [number, number?];
    for (let p = from; p <= to; p++) if (!allowed(p)) return true;
    return false;
  });
}

/** The rule as `ufw show added` prints it (without `route`): what follows `ufw` or `ufw route` to add it. */
export function ufwCommand(r: UfwRule): string {
  const quoted = (app: string): string => (app.includes(' ') ? `'${app}'` : app);
  let res: string = r.action;
  const log = r.log ? ` ${r.log}` : '';
  if (
    anywhere(r.dst) &&
    anywhere(r.src) &&
    r.sport === 'any' &&
    !r.sapp &&
    !r.ifaceIn &&
    !r.ifaceOut &&
    r.dport !== 'any'
  ) {
    res += `${r.direction === 'out' ? ' out' : ''}${log}`;
    return `${res} ${r.dapp ? quoted(r.dapp) : `${r.dport}${r.protocol === 'any' ? '' : `/${r.protocol}`}`}`;
  }
  if (r.ifaceIn) res += ` in on ${r.ifaceIn}`;
  if (r.ifaceOut) res += ` out on ${r.ifaceOut}`;
  else if (r.direction === 'out') res += ' out';
  res += log;
  for (const [dir, loc, port, app] of [
    ['from', r.src, r.sport, r.sapp],
    ['to', r.dst, r.dport, r.dapp],
  ] as const) {
    const where = anywhere(loc) ? 'any' : loc;
    if (where !== 'any' || port !== 'any' || app)
      res += ` ${dir} ${where}${app ? ` app ${quoted(app)}` : port !== 'any' ? ` port ${port}` : ''}`;
  }
  if (!res.includes(' to ') && !res.includes(' from ') && !r.ifaceIn && !r.ifaceOut) res += ' to any';
  if (r.protocol !== 'any' && !r.dapp && !r.sapp) res += ` proto ${r.protocol}`;
  return res;
}

/** The command that removes this rule (both its IPv4 and IPv6 halves when it names no address). */
export function ufwDelete(r: UfwRule): string {
  return `ufw ${r.route ? 'route ' : ''}delete ${ufwCommand(r)}`;
}

/** `KEY=value` lines as ufw reads them (keys and values lower-cased, quotes stripped; the last wins). */
export function shellSettings(text: string): Map<string, string> {
  const settings = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^(\w+)=["']?(\w+)["']?\s*(#.*)?$/.exec(line.trim());
    if (m) settings.set(m[1].toLowerCase(), m[2].toLowerCase());
  }
  return settings;
}

export const ufwCheck: DoctorCheck = {
  id: 'ufw-22-80-443',
  needsHost: false,
  async run(audit) {
    const { sys } = audit;
    if (!(await installed(sys, HARDENING.ufwBins)))
      return bad(
        'warn',
        `ufw is not installed: ${CLAIM.ufw}`,
        "apt install ufw && ufw limit OpenSSH && ufw allow 'Nginx Full' && ufw enable",
      );
    const problems: Problem[] = [];
    const files: Array<{ path: string; family: string; text: string }> = [];
    for (const path of [HARDENING.ufwConf, HARDENING.ufwDefaults, HARDENING.ufwRules, HARDENING.ufwRules6]) {
      const read = await readConfig(sys, path);
      if ('unreadable' in read) return unreadable(read.unreadable, CLAIM.ufw);
      files.push({
        path,
        family: path === HARDENING.ufwRules6 ? 'IPv6' : 'IPv4',
        text: 'text' in read ? read.text : '',
      });
    }
    const [conf, defaults, ...rulesFiles] = files as [(typeof files)[0], (typeof files)[0], ...typeof files];
    const settings = shellSettings(`${defaults.text}\n${conf.text}`);
    const policy = settings.get('default_input_policy');
    if (policy === 'accept')
      problems.push({
        result: 'fail',
        detail: `incoming traffic is accepted by default (DEFAULT_INPUT_POLICY="ACCEPT" in ${HARDENING.ufwDefaults})`,
        fix: 'ufw default deny incoming',
      });
    else if (policy === undefined)
      problems.push({
        result: 'warn',
        detail: `${HARDENING.ufwDefaults} sets no DEFAULT_INPUT_POLICY (ufw refuses to start without one)`,
        fix: `apt install --reinstall ufw && ufw default deny incoming`,
      });
    // With IPV6=no, ufw drops all IPv6 but loopback and never loads user6.rules.
    const considered = settings.get('ipv6') === 'yes' ? rulesFiles : rulesFiles.slice(0, 1);
    let opensSsh = false;
    for (const { path, family, text } of considered) {
      const { rules, malformed } = parseUfwRules(text);
      for (const line of malformed)
        problems.push({
          result: 'warn',
          detail: `line ${line} of ${path} is not a rule ufw can read (ufw skips it; iptables still loads what follows it)`,
          fix: `ufw status verbose; remove the line from ${path}, then: ufw reload`,
        });
      for (const rule of rules) {
        if (!rule.route && rule.direction === 'in' && rule.action !== 'deny' && rule.action !== 'reject')
          if (rule.dport.split(',').some((p) => p === '22' || p === 'any')) opensSsh = true;
        const extra = extraPorts(rule);
        if (extra.length === 0) continue;
        const ports = extra.includes('any') ? 'every port' : `port ${extra.join(', ')}`;
        const from = anywhere(rule.src) ? '' : ` from ${rule.src}`;
        const on = rule.ifaceIn ? ` on ${rule.ifaceIn}` : '';
        const proto = rule.protocol === 'any' ? 'tcp and udp' : rule.protocol;
        problems.push({
          result: 'fail',
          detail: `ufw lets in ${ports} (${proto}${from}${on}, ${family}${rule.dapp ? `, app ${rule.dapp}` : ''}; ${path} line ${rule.line})`,
          fix: ufwDelete(rule),
        });
      }
    }
    const enabled = settings.get('enabled') === 'yes';
    const unit = await enablement(sys, 'ufw.service');
    // Enabling ufw without a rule for SSH would cut off the admin's own session.
    const keepSsh = opensSsh ? '' : 'ufw limit OpenSSH && ';
    if (!enabled)
      problems.push({
        result: 'fail',
        detail: `ufw is not enabled (ENABLED=yes is not set in ${HARDENING.ufwConf})`,
        fix: `${keepSsh}ufw enable`,
      });
    if (unit !== 'enabled')
      problems.push({
        result: 'fail',
        detail: `ufw.service is ${unit}: the firewall is not loaded at boot`,
        fix: enableFix('ufw.service', unit),
      });
    if (enabled && audit.live) {
      const status = await sys.exec('ufw', ['status'], { timeoutMs: 10_000 });
      const first = status.stdout.split('\n')[0]?.trim() ?? '';
      if (status.notFound)
        problems.push({ result: 'warn', detail: 'ufw is in the tree but not on this host', fix: 'apt install ufw' });
      else if (first === 'Status: inactive')
        problems.push({
          result: 'fail',
          detail: 'ufw is enabled at boot but not active on this host now',
          fix: `${keepSsh}ufw enable`,
        });
      else if (first !== 'Status: active')
        problems.push({
          result: 'warn',
          detail: `\`ufw status\` did not say whether the firewall is active (exit ${status.exitCode})`,
          fix: 'run `immich-firstboot doctor` as root',
        });
    }
    return verdictOf(
      problems,
      `ufw is enabled, drops incoming traffic by default and lets in only ${OPEN_PORTS.join(', ')}${audit.live ? ' (active now)' : ''}`,
    );
  },
};
