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
import { anywhere, extraPorts, OPEN_PORTS, parseUfwRules, shellSettings, ufwDelete } from './doctor-ufw-rules.js';

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
