// `immich-firstboot doctor [--json] [--live]`: audits the claims the image makes, each as pass / warn /
// fail with the fix, or "skipped (why)" when it cannot run here. A check never passes because it could
// not run.
//
// The tree (modes, daemon.json, the certificate, `nginx -t`) is audited wherever --root points. The
// host (sockets, containers, the door, Immich's answers, the units) is audited on `/`, and under
// --root only with --live: an image builder auditing an offline tree gets "skipped", never a failure
// caused by the build machine. With --live the ports and URLs still come from the tree: the site's
// `listen` lines, config.yaml's stack.serverUrl, the certificate the site names.

import net from 'node:net';
import type { Config } from '../config.js';
import { listeningSockets, loopbackView, projectContainers, unrotated, type ContainerView } from '../docker.js';
import { sameFingerprint, tlsDoor } from '../door.js';
import { asFirstbootError } from '../errors.js';
import { gatherHostFacts } from '../host-facts.js';
import type { Logger } from '../log.js';
import { servedCertificates, siteListens, testNginxConfig } from '../nginx.js';
import { PATHS } from '../paths.js';
import { adminRegistered, ping, PROJECT } from '../stack.js';
import { readJournal } from '../state.js';
import { inspectCert } from '../tls.js';
import type { System } from '../system/index.js';

export interface Check {
  id: string;
  result: 'pass' | 'warn' | 'fail' | 'skipped';
  detail: string;
  fix?: string;
}

export interface DoctorOptions {
  /** Audit the running host too (always on `/`; under --root only when asked). */
  live: boolean;
  config: Config;
  log: Logger;
}

export const UNITS = ['immich-firstboot.service', 'immich-firstboot-perboot.service'] as const;
const COMPOSE = `cd ${PATHS.immichDir} && docker compose -p ${PROJECT}`;
const DAY_MS = 86_400_000;

const pass = (id: string, detail: string): Check => ({ id, result: 'pass', detail });
const skip = (id: string, detail: string): Check => ({ id, result: 'skipped', detail });
const bad = (id: string, result: 'warn' | 'fail', detail: string, fix: string): Check => ({ id, result, detail, fix });

export async function doctor(sys: System, options: DoctorOptions): Promise<Check[]> {
  const ctx = { sys, config: options.config, log: options.log };
  const site = await sys.fs.read(PATHS.nginxSite);
  let containers: ContainerView[] | Error | undefined;
  if (options.live) containers = await projectContainers(ctx).catch((e: unknown) => asFirstbootError(e));

  const checks: Check[] = [];
  const mode = async (id: string, inside: string, want: number): Promise<void> => {
    const info = await sys.fs.info(inside);
    const wanted = want.toString(8).padStart(4, '0');
    if (!info) return void checks.push(skip(id, `${inside} does not exist (first boot not done?)`));
    const got = info.mode.toString(8).padStart(4, '0');
    const ok = info.mode === want && info.uid === 0;
    const detail = `${inside} is ${got} owned by uid ${info.uid}`;
    checks.push(ok ? pass(id, detail) : bad(id, 'fail', detail, `chown root: ${inside} && chmod ${wanted} ${inside}`));
  };
  await mode('env-mode', PATHS.envFile, 0o640);
  await mode('credentials-mode', PATHS.credentials, 0o600);
  await mode('key-mode', PATHS.tlsKey, 0o600);
  checks.push(await logRotation(sys, containers));
  checks.push(...(await certificate(ctx, site, options.live)));
  checks.push(await nginxConfig(sys, options.log));
  if (!options.live) {
    const why = 'needs the running host: --root is not /; add --live to audit this host against the tree';
    for (const id of ['loopback-2283', 'nginx-only-80-443', 'containers-healthy', 'ping-through-nginx', 'sign-up-state', 'unit-state', 'perboot-unit-state']) checks.push(skip(id, why));
    return checks;
  }
  checks.push(await loopback(ctx, containers!));
  checks.push(await nginxOnly(ctx, site));
  checks.push(containersHealthy(containers!));
  const door = await pingThroughNginx(ctx, site);
  checks.push(door.check, await signUp(ctx, door.url));
  checks.push(...(await unitStates(sys)));
  return checks;
}

async function logRotation(sys: System, containers: ContainerView[] | Error | undefined): Promise<Check> {
  const id = 'log-rotation';
  const text = await sys.fs.read(PATHS.dockerDaemonJson);
  const fix = 'run `immich-firstboot run` (it merges json-file rotation into daemon.json) and restart Docker';
  let json: { 'log-driver'?: string; 'log-opts'?: Record<string, string> } | undefined;
  try {
    json = text === undefined ? undefined : (JSON.parse(text) as typeof json);
  } catch {
    return bad(id, 'fail', `${PATHS.dockerDaemonJson} is not valid JSON`, fix);
  }
  const opts = json?.['log-opts'];
  const ok = (json?.['log-driver'] ?? 'json-file') === 'json-file' && !!opts?.['max-size'] && !!opts['max-file'];
  if (!ok) return bad(id, 'fail', `${PATHS.dockerDaemonJson} sets no max-size/max-file`, fix);
  const detail = `max-size ${opts['max-size']}, max-file ${opts['max-file']}`;
  // Rotation applies only to containers created after Docker loaded it.
  const names = Array.isArray(containers) ? unrotated(containers) : [];
  return names.length
    ? bad(id, 'warn', `${detail}, but ${names.join(', ')} ${names.length === 1 ? 'was' : 'were'} created without it`, `systemctl restart docker && ${COMPOSE} up -d --force-recreate`)
    : pass(id, detail);
}

/** Expiry of the certificate the site serves (ours or certbot's); names of ours against the addresses. */
async function certificate(ctx: { sys: System; config: Config; log: Logger }, site: string | undefined, live: boolean): Promise<Check[]> {
  const { sys } = ctx;
  const served = (site === undefined ? [] : servedCertificates(site))[0] ?? PATHS.tlsCert;
  const ours = served === PATHS.tlsCert;
  if (!(await sys.fs.exists(served))) return [skip('cert-expiry', `${served} does not exist`), skip('cert-names', `${served} does not exist`)];
  let cert;
  try {
    cert = await inspectCert(sys, served);
  } catch (error) {
    const e = asFirstbootError(error);
    return [bad('cert-expiry', 'fail', e.message, 'immich-firstboot regenerate-cert'), skip('cert-names', `${served} could not be read`)];
  }
  const left = cert.notAfter.getTime() - sys.now().getTime();
  const fix = ours ? 'immich-firstboot regenerate-cert' : 'certbot renew';
  const until = cert.notAfter.toISOString();
  const expiry = left <= 0
    ? bad('cert-expiry', 'fail', `${served} expired ${until}`, fix)
    : left < 30 * DAY_MS
      ? bad('cert-expiry', 'warn', `${served} expires ${until} (< 30 days)`, fix)
      : pass('cert-expiry', `${served} expires ${until}`);
  if (!ours) return [expiry, skip('cert-names', `the site serves ${served}, not our self-signed certificate; its names are its issuer's business`)];
  // On the host: the addresses it has now (a resized or moved VM); offline: what first boot recorded.
  const addresses = live
    ? (await gatherHostFacts({ ...ctx, config: { ...ctx.config, imds: { ...ctx.config.imds, retrySeconds: 0 } } })).addresses
    : (await readJournal(sys))?.facts.host?.addresses ?? [];
  const missing = addresses.filter((a) => !cert.names.includes(a));
  const which = live ? 'current' : 'recorded';
  const names = missing.length
    ? bad('cert-names', 'fail', `the certificate does not name the ${which} address${missing.length > 1 ? 'es' : ''} ${missing.join(', ')}`, 'immich-firstboot regenerate-cert')
    : pass('cert-names', `names ${cert.names.join(', ')}; covers the ${which} addresses`);
  return [expiry, names];
}

async function nginxConfig(sys: System, log: Logger): Promise<Check> {
  const id = 'nginx-config';
  try {
    const ran = await testNginxConfig(sys, log);
    return ran ? pass(id, 'nginx -t accepts the configuration') : skip(id, `nginx is not installed here, or ${PATHS.nginxConf} is missing`);
  } catch (error) {
    const e = asFirstbootError(error);
    return bad(id, 'fail', e.message, `fix what nginx names (or compare with ${PATHS.nginxSite}.firstboot-new), then: nginx -t && systemctl reload nginx`);
  }
}

async function loopback(ctx: { sys: System; config: Config; log: Logger }, containers: ContainerView[] | Error): Promise<Check> {
  const id = 'loopback-2283';
  const port = new URL(ctx.config.stack.serverUrl).port || '80';
  const fix = `in ${PATHS.composeFile} publish on loopback only ('127.0.0.1:2283:2283'), stop anything else listening on port ${port}, then: ${COMPOSE} up -d`;
  try {
    const view = await loopbackView(ctx, containers instanceof Error ? [] : containers);
    if (view.problems.length) return bad(id, 'fail', `Immich is reachable beyond this machine: ${view.problems.join('; ')}`, fix);
    if (containers instanceof Error) return bad(id, 'warn', `${view.summary}, but Docker's published ports are unknown: ${containers.message}`, 'systemctl start docker, then run `immich-firstboot doctor` again');
    return pass(id, view.summary);
  } catch (error) {
    const e = asFirstbootError(error);
    return bad(id, 'fail', e.message, e.hint ?? 'apt install iproute2');
  }
}

/** Every socket on the site's ports belongs to nginx, and nginx listens on each of them. */
async function nginxOnly(ctx: { sys: System }, site: string | undefined): Promise<Check> {
  const id = 'nginx-only-80-443';
  if (site === undefined) return skip(id, `${PATHS.nginxSite} does not exist (first boot not done?)`);
  const ports = [...new Set(siteListens(site).map((l) => l.port))];
  let listeners;
  try {
    listeners = (await listeningSockets(ctx)).filter((l) => ports.includes(l.port));
  } catch (error) {
    const e = asFirstbootError(error);
    return bad(id, 'fail', e.message, e.hint ?? 'apt install iproute2');
  }
  const others = listeners.flatMap((l) => l.processes.filter((p) => p.name !== 'nginx').map((p) => `${p.name} (pid ${p.pid}) listens on ${l.address}:${l.port}`));
  if (others.length) {
    const pids = [...new Set(listeners.flatMap((l) => l.processes.filter((p) => p.name !== 'nginx').map((p) => p.pid)))];
    return bad(id, 'fail', `nginx must be the only door, but ${others.join('; ')}`, `stop it for good (systemctl status ${pids.join(' ')} names its unit: systemctl disable --now UNIT), then: systemctl restart nginx`);
  }
  const silent = ports.filter((p) => !listeners.some((l) => l.port === p));
  if (silent.length) return bad(id, 'fail', `nothing listens on port ${silent.join(', ')} that the site serves: nginx is not running`, 'systemctl restart nginx && journalctl -u nginx -n 20');
  const unknown = listeners.filter((l) => l.processes.length === 0);
  if (unknown.length) return bad(id, 'warn', `ss cannot tell who holds ${unknown.map((l) => `${l.address}:${l.port}`).join(', ')}`, 'run `immich-firstboot doctor` as root');
  return pass(id, `only nginx listens on ${ports.join(', ')} (${listeners.map((l) => `${l.address}:${l.port}`).join(', ')})`);
}

/**
 * Every container of the project running and healthy. A health check still `starting` (the first
 * minutes after a boot) is a warning that names it; unhealthy, exited or restarting is a failure.
 */
export function containersHealthy(containers: ContainerView[] | Error): Check {
  const id = 'containers-healthy';
  if (containers instanceof Error) return bad(id, 'fail', containers.message, 'systemctl start docker && systemctl status docker');
  if (!containers.some((c) => c.service === 'immich-server')) return bad(id, 'fail', `project ${PROJECT} has no immich-server container`, `${COMPOSE} up -d`);
  const starting = containers.filter((c) => c.state === 'running' && c.health === 'starting');
  const sick = containers.filter((c) => c.state !== 'running' || (c.health !== undefined && c.health !== 'healthy' && c.health !== 'starting'));
  const states = (list: ContainerView[]): string => list.map((c) => `${c.name} ${c.state}${c.health ? ` (${c.health})` : ''}`).join(', ');
  const services = (list: ContainerView[]): string => [...new Set(list.map((c) => c.service))].join(' ');
  const stillStarting = `health check still starting: ${starting.map((c) => c.name).join(', ')}`;
  if (sick.length > 0) {
    return bad(id, 'fail', `not healthy: ${states(sick)}${starting.length ? `; ${stillStarting}` : ''}`, `${COMPOSE} logs --tail 50 ${services(sick)}; then ${COMPOSE} up -d`);
  }
  if (starting.length > 0) {
    return bad(id, 'warn', `${stillStarting}; re-run \`immich-firstboot doctor\` in a minute`, `wait a minute, then: immich-firstboot doctor; if it stays starting: ${COMPOSE} logs --tail 50 ${services(starting)}`);
  }
  return pass(id, states(containers));
}

/**
 * GET /api/server/ping through the door: HTTPS to the site's TLS port on this machine, with the Host a
 * browser would send. No CA vouches for our self-signed certificate, so instead of trusting nothing,
 * the certificate nginx presents must be the one the site names on disk.
 */
async function pingThroughNginx(ctx: { sys: System; config: Config }, site: string | undefined): Promise<{ check: Check; url: string | undefined }> {
  const id = 'ping-through-nginx';
  if (site === undefined) return { check: skip(id, `${PATHS.nginxSite} does not exist (first boot not done?)`), url: undefined };
  const journal = await readJournal(ctx.sys);
  const door = tlsDoor(site, ctx.config.domain, journal?.facts.host);
  if (!door) return { check: bad(id, 'fail', `${PATHS.nginxSite} has no \`listen ... ssl\``, `compare with ${PATHS.nginxSite}.firstboot-new, or: immich-firstboot regenerate-cert`), url: undefined };
  const { address, host } = door;
  const hostPort = `${net.isIPv6(host) ? `[${host}]` : host}${door.port === '443' ? '' : `:${door.port}`}`;
  const url = `https://${hostPort}/`;
  const target = `https://${net.isIPv6(address) ? `[${address}]` : address}:${door.port}/api/server/ping`;
  const direct = async (): Promise<string> => (await ping(ctx))
    ? `Immich answers on ${ctx.config.stack.serverUrl}, so nginx does not pass requests to it: nginx -t && systemctl reload nginx; journalctl -u nginx -n 20`
    : `Immich does not answer on ${ctx.config.stack.serverUrl} either: ${COMPOSE} ps; ${COMPOSE} logs --tail 50 immich-server`;
  let res;
  try {
    res = await ctx.sys.httpGet({ url: target, headers: { Host: hostPort }, timeoutMs: 5000, untrustedTls: true, ...(door.servername ? { servername: door.servername } : {}) });
  } catch (error) {
    const why = (error as { code?: string }).code ?? (error as Error).message;
    return { check: bad(id, 'fail', `${target} (Host: ${hostPort}) failed: ${why}`, `systemctl restart nginx && journalctl -u nginx -n 20`), url };
  }
  let pong = false;
  try {
    pong = res.status === 200 && (JSON.parse(res.body) as { res?: unknown }).res === 'pong';
  } catch { /* not JSON: not Immich */ }
  if (!pong) return { check: bad(id, 'fail', `${target} (Host: ${hostPort}) answered ${res.status} ${res.body.slice(0, 80).trim()}`, await direct()), url };
  const served = servedCertificates(site)[0];
  // A missing or unreadable file is cert-expiry's finding; here it only means there is nothing to compare with.
  const onDisk = served ? (await inspectCert(ctx.sys, served).catch(() => undefined))?.fingerprint : undefined;
  if (onDisk && !sameFingerprint(res.peerFingerprint, onDisk)) {
    return { check: bad(id, 'warn', `pong, but nginx presents ${res.peerFingerprint ?? 'no certificate'}, not ${served} (${onDisk})`, 'nginx -t && systemctl reload nginx'), url };
  }
  const presented = onDisk ? `with ${served}` : `(the certificate was not compared: ${served ?? 'the site names none'} is missing or unreadable)`;
  return { check: pass(id, `${target} (Host: ${hostPort}) answered pong ${presented}`), url };
}

/** isInitialized false means the first person to open the site becomes the admin. */
async function signUp(ctx: { sys: System; config: Config }, url: string | undefined): Promise<Check> {
  const id = 'sign-up-state';
  const registered = await adminRegistered(ctx);
  if (registered === null) return skip(id, `Immich did not answer ${ctx.config.stack.serverUrl}/api/server/config`);
  return registered
    ? pass(id, 'an admin is registered (isInitialized: true); sign-up is closed')
    : bad(id, 'warn', 'no admin yet (isInitialized: false): whoever signs up first becomes the admin', `sign up now at ${url ?? 'https://<this VM\'s address>/'} (the first account becomes the admin; see ${PATHS.credentials})`);
}

/** `systemctl show` for our units: the first-boot unit must exist and must not have failed. */
async function unitStates(sys: System): Promise<Check[]> {
  const checks: Check[] = [];
  for (const unit of UNITS) {
    const id = unit === UNITS[0] ? 'unit-state' : 'perboot-unit-state';
    const result = await sys.exec('systemctl', ['show', '-p', 'LoadState,ActiveState,SubState,Result', unit], { timeoutMs: 10_000 });
    if (result.notFound || result.exitCode !== 0) {
      const why = result.notFound ? 'systemctl is not installed (no systemd here)' : `systemctl show failed: ${(result.stderr.trim() || `exit ${result.exitCode}`).split('\n')[0]}`;
      return [skip('unit-state', why), skip('perboot-unit-state', why)];
    }
    const p = Object.fromEntries(result.stdout.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1).trim()]));
    const state = `${p.ActiveState}/${p.SubState}, result ${p.Result}`;
    if (p.LoadState === 'not-found') {
      checks.push(unit === UNITS[0] ? bad(id, 'fail', `${unit} is not installed`, 'apt install --reinstall immich-firstboot') : skip(id, `${unit} is not installed`));
    } else if (p.ActiveState === 'failed' || (p.Result !== undefined && p.Result !== 'success')) {
      checks.push(bad(id, 'fail', `${unit} ${state}`, `immich-firstboot status (it names the step and the fix); then: systemctl restart ${unit}`));
    } else if (p.ActiveState === 'activating') {
      checks.push(bad(id, 'warn', `${unit} is still running (${state})`, `immich-firstboot status; journalctl -u ${unit} -f`));
    } else {
      checks.push(pass(id, `${unit} ${state}`));
    }
  }
  return checks;
}

export function formatDoctor(checks: readonly Check[]): string {
  return checks.map((c) => `${c.result === 'skipped' ? `skipped (${c.detail})` : c.result}: ${c.id}${c.result === 'skipped' ? '' : ` — ${c.detail}`}${c.fix ? `\n  fix: ${c.fix}` : ''}`).join('\n') + '\n';
}
