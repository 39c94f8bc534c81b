// `immich-firstboot doctor [--json]`: audits the claims the image makes, each as pass / warn / fail with
// the fix, or "skipped (why)" when it cannot run here. A check never passes because it could not run.

import { PATHS } from '../paths.js';
import { readJournal } from '../state.js';
import { inspectCert } from '../tls.js';
import type { System } from '../system/index.js';

export interface Check {
  id: string;
  result: 'pass' | 'warn' | 'fail' | 'skipped';
  detail: string;
  fix?: string;
}

const DAY_MS = 86_400_000;

export async function doctor(sys: System, onHost: boolean): Promise<Check[]> {
  const checks: Check[] = [];
  const mode = async (id: string, inside: string, want: number): Promise<void> => {
    const info = await sys.fs.info(inside);
    const wanted = want.toString(8).padStart(4, '0');
    if (!info) return void checks.push({ id, result: 'skipped', detail: `${inside} does not exist (first boot not done?)` });
    const got = info.mode.toString(8).padStart(4, '0');
    const ok = info.mode === want && info.uid === 0;
    checks.push({ id, result: ok ? 'pass' : 'fail', detail: `${inside} is ${got} owned by uid ${info.uid}`, ...(ok ? {} : { fix: `chown root: ${inside} && chmod ${wanted} ${inside}` }) });
  };
  await mode('env-mode', PATHS.envFile, 0o640);
  await mode('credentials-mode', PATHS.credentials, 0o600);
  await mode('key-mode', PATHS.tlsKey, 0o600);
  checks.push(await logRotation(sys));
  checks.push(...(await certificate(sys)));
  const why = onHost ? 'not implemented yet (issue 7)' : 'needs the running host (--root is not /)';
  for (const id of ['loopback-2283', 'nginx-only-80-443', 'nginx-config', 'containers-healthy', 'ping-through-nginx', 'sign-up-state', 'unit-state']) {
    checks.push({ id, result: 'skipped', detail: why });
  }
  return checks;
}

async function logRotation(sys: System): Promise<Check> {
  const text = await sys.fs.read(PATHS.dockerDaemonJson);
  const fix = 'run `immich-firstboot run` (it merges json-file rotation into daemon.json) and restart Docker';
  let json: { 'log-driver'?: string; 'log-opts'?: Record<string, string> } | undefined;
  try {
    json = text === undefined ? undefined : (JSON.parse(text) as typeof json);
  } catch {
    return { id: 'log-rotation', result: 'fail', detail: `${PATHS.dockerDaemonJson} is not valid JSON`, fix };
  }
  const opts = json?.['log-opts'];
  const ok = (json?.['log-driver'] ?? 'json-file') === 'json-file' && !!opts?.['max-size'] && !!opts['max-file'];
  return ok
    ? { id: 'log-rotation', result: 'pass', detail: `max-size ${opts['max-size']}, max-file ${opts['max-file']}` }
    : { id: 'log-rotation', result: 'fail', detail: `${PATHS.dockerDaemonJson} sets no max-size/max-file`, fix };
}

async function certificate(sys: System): Promise<Check[]> {
  if (!(await sys.fs.exists(PATHS.tlsCert))) return [{ id: 'cert-expiry', result: 'skipped', detail: `${PATHS.tlsCert} does not exist` }];
  const cert = await inspectCert(sys, sys.fs.path(PATHS.tlsCert));
  const left = cert.notAfter.getTime() - sys.now().getTime();
  const fix = 'immich-firstboot regenerate-cert';
  const expiry: Check = left <= 0
    ? { id: 'cert-expiry', result: 'fail', detail: `expired ${cert.notAfter.toISOString()}`, fix }
    : left < 30 * DAY_MS
      ? { id: 'cert-expiry', result: 'warn', detail: `expires ${cert.notAfter.toISOString()} (< 30 days)`, fix }
      : { id: 'cert-expiry', result: 'pass', detail: `expires ${cert.notAfter.toISOString()}` };
  // The addresses first boot recorded; the live comparison belongs to the per-boot check (not done yet).
  const addresses = (await readJournal(sys))?.facts.host?.addresses ?? [];
  const missing = addresses.filter((a) => !cert.names.includes(a));
  const sans: Check = missing.length
    ? { id: 'cert-names', result: 'fail', detail: `the certificate does not name ${missing.join(', ')}`, fix }
    : { id: 'cert-names', result: 'pass', detail: `names ${cert.names.join(', ')}` };
  return [expiry, sans];
}

export function formatDoctor(checks: readonly Check[]): string {
  return checks.map((c) => `${c.result === 'skipped' ? `skipped (${c.detail})` : c.result}: ${c.id}${c.result === 'skipped' ? '' : ` — ${c.detail}`}${c.fix ? `\n  fix: ${c.fix}` : ''}`).join('\n') + '\n';
}
