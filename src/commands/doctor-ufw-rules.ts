// ufw's own files as ufw reads them: the `### tuple ###` rules of user.rules and user6.rules, the KEY=value
// settings of ufw.conf and /etc/default/ufw; and a rule printed back as the `ufw` command that adds or deletes it.

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

export const anywhere = (address: string): boolean => address === '0.0.0.0/0' || address === '::/0';

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
