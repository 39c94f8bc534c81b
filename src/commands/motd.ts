// `immich-firstboot motd`: the login banner. Reads only local files (journal, stamp, lock) — no network,
// so a login never waits on IMDS, Docker or Immich.

import { DATA_DISK_MISSING } from '../state.js';
import { cloneLine, letsencryptLine, type StatusReport } from './status.js';

export function formatMotd(report: StatusReport): string {
  const le = report.letsencrypt.urls;
  const urls = [...(le ? [le.web] : []), ...report.addresses.map((a) => `https://${a.includes(':') ? `[${a}]` : a}/`)];
  const lines = [`Immich: ${urls.length ? urls.join('  ') : '(address not known yet)'}`];
  if (report.status === 'running')
    lines.push(`First boot: running (step ${report.step ?? 'starting'}); see: immich-firstboot status`);
  else if (report.status === 'error') {
    const last = report.errors.at(-1);
    lines.push(
      `First boot: FAILED at ${report.step ?? '?'}: ${last?.message ?? report.detail}`,
      ...(last?.hint ? [`  hint: ${last.hint}`] : []),
    );
  } else if (report.status === 'not started') lines.push('First boot: not started yet');
  else if (report.adminRegistered === false)
    lines.push('First boot: done; no admin yet: open the URL and sign up (read /root/immich-credentials.txt)');
  else if (report.adminRegistered === null)
    lines.push('First boot: done; whether an admin exists is not known (see: immich-firstboot status)');
  else lines.push('First boot: done; admin registered');
  const line = letsencryptLine(report.letsencrypt);
  if (line) lines.push(`Let's Encrypt: ${line}`);
  if (report.clone) lines.push(`This VM is ${cloneLine(report.clone)}`);
  if (report.addressChange?.certificate.startsWith('not ours')) {
    lines.push(
      `Addresses changed (${report.addressChange.to.join(', ')}); the certificate nginx serves is ${report.addressChange.certificate}`,
    );
  }
  const disk = report.warnings.find((w) => w.step === DATA_DISK_MISSING);
  if (disk) lines.push(`WARNING: ${disk.message}`, ...(disk.hint ? [`  what to do: ${disk.hint}`] : []));
  return `${lines.join('\n')}\n`;
}
