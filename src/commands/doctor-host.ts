// doctor's checks of this running host: Immich on loopback only, nginx the only door, the containers,
// a ping through the door, the sign-up state, our units. Ports and URLs still come from the tree.

import net from 'node:net';
import { listeningSockets, loopbackView, type ContainerView } from '../docker.js';
import { sameFingerprint, tlsDoor, type TlsDoor } from '../door.js';
import { asFirstbootError, errnoCode } from '../errors.js';
import { servedCertificates, siteListens } from '../nginx.js';
import { readClaimToken } from '../claim-token.js';
import { PATHS } from '../paths.js';
import { adminRegistered, ping, PROJECT } from '../stack.js';
import { readJournal } from '../state.js';
import { inspectCert } from '../tls.js';
import { bad, COMPOSE, pass, skip, type Audit, type DoctorCheck, type Finding, type Verdict } from './doctor-audit.js';

export const loopbackCheck: DoctorCheck = {
  id: 'loopback-2283',
  needsHost: true,
  async run(audit) {
    const containers = audit.containers!;
    const port = new URL(audit.config.stack.serverUrl).port || '80';
    const fix = `in ${PATHS.composeFile} publish on loopback only ('127.0.0.1:2283:2283'), stop anything else listening on port ${port}, then: ${COMPOSE} up -d`;
    try {
      const view = await loopbackView(audit, containers instanceof Error ? [] : containers);
      if (view.problems.length)
        return bad('fail', `Immich is reachable beyond this machine: ${view.problems.join('; ')}`, fix);
      if (containers instanceof Error)
        return bad(
          'warn',
          `${view.summary}, but Docker's published ports are unknown: ${containers.message}`,
          'systemctl start docker, then run `immich-firstboot doctor` again',
        );
      return pass(view.summary);
    } catch (error) {
      const e = asFirstbootError(error);
      return bad('fail', e.message, e.hint ?? 'apt install iproute2');
    }
  },
};

/** Every socket on the site's ports belongs to nginx, and nginx listens on each of them. */
export const nginxOnlyCheck: DoctorCheck = {
  id: 'nginx-only-80-443',
  needsHost: true,
  async run(audit) {
    const { site } = audit;
    if (site === undefined) return skip(`${PATHS.nginxSite} does not exist (first boot not done?)`);
    const ports = [...new Set(siteListens(site).map((l) => l.port))];
    let listeners;
    try {
      listeners = (await listeningSockets(audit)).filter((l) => ports.includes(l.port));
    } catch (error) {
      const e = asFirstbootError(error);
      return bad('fail', e.message, e.hint ?? 'apt install iproute2');
    }
    const others = listeners.flatMap((l) =>
      l.processes
        .filter((p) => p.name !== 'nginx')
        .map((p) => `${p.name} (pid ${p.pid}) listens on ${l.address}:${l.port}`),
    );
    if (others.length) {
      const pids = [
        ...new Set(listeners.flatMap((l) => l.processes.filter((p) => p.name !== 'nginx').map((p) => p.pid))),
      ];
      return bad(
        'fail',
        `nginx must be the only door, but ${others.join('; ')}`,
        `stop it for good (systemctl status ${pids.join(' ')} names its unit: systemctl disable --now UNIT), then: systemctl restart nginx`,
      );
    }
    const silent = ports.filter((p) => !listeners.some((l) => l.port === p));
    if (silent.length)
      return bad(
        'fail',
        `nothing listens on port ${silent.join(', ')} that the site serves: nginx is not running`,
        'systemctl restart nginx && journalctl -u nginx -n 20',
      );
    const unknown = listeners.filter((l) => l.processes.length === 0);
    if (unknown.length)
      return bad(
        'warn',
        `ss cannot tell who holds ${unknown.map((l) => `${l.address}:${l.port}`).join(', ')}`,
        'run `immich-firstboot doctor` as root',
      );
    return pass(
      `only nginx listens on ${ports.join(', ')} (${listeners.map((l) => `${l.address}:${l.port}`).join(', ')})`,
    );
  },
};

export const containersHealthyCheck: DoctorCheck = {
  id: 'containers-healthy',
  needsHost: true,
  run: async (audit) => health(audit.containers!),
};

/** containers-healthy's finding on what Docker reports. */
export function containersHealthy(containers: ContainerView[] | Error): Finding {
  return { id: containersHealthyCheck.id, ...health(containers) };
}

/**
 * Every container of the project running and healthy. A health check still `starting` (the first
 * minutes after a boot) is a warning that names it; unhealthy, exited or restarting is a failure.
 */
function health(containers: ContainerView[] | Error): Verdict {
  if (containers instanceof Error)
    return bad('fail', containers.message, 'systemctl start docker && systemctl status docker');
  if (!containers.some((c) => c.service === 'immich-server'))
    return bad('fail', `project ${PROJECT} has no immich-server container`, `${COMPOSE} up -d`);
  const starting = containers.filter((c) => c.state === 'running' && c.health === 'starting');
  const sick = containers.filter(
    (c) => c.state !== 'running' || (c.health !== undefined && c.health !== 'healthy' && c.health !== 'starting'),
  );
  const states = (list: ContainerView[]): string =>
    list.map((c) => `${c.name} ${c.state}${c.health ? ` (${c.health})` : ''}`).join(', ');
  const services = (list: ContainerView[]): string => [...new Set(list.map((c) => c.service))].join(' ');
  const stillStarting = `health check still starting: ${starting.map((c) => c.name).join(', ')}`;
  if (sick.length > 0) {
    return bad(
      'fail',
      `not healthy: ${states(sick)}${starting.length ? `; ${stillStarting}` : ''}`,
      `${COMPOSE} logs --tail 50 ${services(sick)}; then ${COMPOSE} up -d`,
    );
  }
  if (starting.length > 0) {
    return bad(
      'warn',
      `${stillStarting}; re-run \`immich-firstboot doctor\` in a minute`,
      `wait a minute, then: immich-firstboot doctor; if it stays starting: ${COMPOSE} logs --tail 50 ${services(starting)}`,
    );
  }
  return pass(states(containers));
}

/** The site's TLS door as a browser on this machine reaches it; a verdict when there is none. */
type Door = { door: TlsDoor; hostPort: string; url: string; target: string } | { none: Verdict };

async function doorOf({ sys, config, site }: Audit): Promise<Door> {
  if (site === undefined) return { none: skip(`${PATHS.nginxSite} does not exist (first boot not done?)`) };
  const journal = await readJournal(sys);
  const door = tlsDoor(site, config.domain, journal?.facts.host);
  if (!door)
    return {
      none: bad(
        'fail',
        `${PATHS.nginxSite} has no \`listen ... ssl\``,
        `compare with ${PATHS.nginxSite}.firstboot-new, or: immich-firstboot regenerate-cert`,
      ),
    };
  const { address, host } = door;
  const hostPort = `${net.isIPv6(host) ? `[${host}]` : host}${door.port === '443' ? '' : `:${door.port}`}`;
  const target = `https://${net.isIPv6(address) ? `[${address}]` : address}:${door.port}/api/server/ping`;
  return { door, hostPort, url: `https://${hostPort}/`, target };
}

/**
 * GET /api/server/ping through the door: HTTPS to the site's TLS port on this machine, with the Host a
 * browser would send. No CA vouches for our self-signed certificate, so instead of trusting nothing,
 * the certificate nginx presents must be the one the site names on disk.
 */
export const pingThroughNginxCheck: DoctorCheck = {
  id: 'ping-through-nginx',
  needsHost: true,
  async run(audit) {
    const found = await audit.once(doorOf);
    if ('none' in found) return found.none;
    const { door, hostPort, target } = found;
    const { sys, config } = audit;
    const direct = async (): Promise<string> =>
      (await ping(audit))
        ? `Immich answers on ${config.stack.serverUrl}, so nginx does not pass requests to it: nginx -t && systemctl reload nginx; journalctl -u nginx -n 20`
        : `Immich does not answer on ${config.stack.serverUrl} either: ${COMPOSE} ps; ${COMPOSE} logs --tail 50 immich-server`;
    let res;
    try {
      res = await sys.httpGet({
        url: target,
        headers: { Host: hostPort },
        // The whole exchange, handshake to last byte; pong or an error page from nginx fits in 64 KiB.
        timeoutMs: 5000,
        maxBytes: 64 * 1024,
        untrustedTls: true,
        ...(door.servername ? { servername: door.servername } : {}),
      });
    } catch (error) {
      // A bound (deadline, size) says which in its message; an errno (ECONNREFUSED, ...) is clearest alone.
      const code = errnoCode(error);
      const why = code === undefined || code === 'ETIMEDOUT' || code === 'E2BIG' ? (error as Error).message : code;
      return bad(
        'fail',
        `${target} (Host: ${hostPort}) failed: ${why}`,
        `systemctl restart nginx && journalctl -u nginx -n 20`,
      );
    }
    let pong = false;
    try {
      pong = res.status === 200 && (JSON.parse(res.body) as { res?: unknown }).res === 'pong';
    } catch {
      /* not JSON: not Immich */
    }
    if (!pong)
      return bad(
        'fail',
        `${target} (Host: ${hostPort}) answered ${res.status} ${res.body.slice(0, 80).trim()}`,
        await direct(),
      );
    const served = servedCertificates(audit.site!)[0];
    // A missing or unreadable file is cert-expiry's finding; here it only means there is nothing to compare with.
    const onDisk = served ? (await inspectCert(sys, served).catch(() => undefined))?.fingerprint : undefined;
    if (onDisk && !sameFingerprint(res.peerFingerprint, onDisk)) {
      return bad(
        'warn',
        `pong, but nginx presents ${res.peerFingerprint ?? 'no certificate'}, not ${served} (${onDisk})`,
        'nginx -t && systemctl reload nginx',
      );
    }
    const presented = onDisk
      ? `with ${served}`
      : `(the certificate was not compared: ${served ?? 'the site names none'} is missing or unreadable)`;
    return pass(`${target} (Host: ${hostPort}) answered pong ${presented}`);
  },
};

/**
 * isInitialized false means the first person to sign up becomes the admin: the claim gate is what keeps
 * that person the owner. Its state is said either way; missing while no admin exists, it is a warning.
 */
export const signUpCheck: DoctorCheck = {
  id: 'sign-up-state',
  needsHost: true,
  async run(audit) {
    const registered = await adminRegistered(audit);
    if (registered === null) return skip(`Immich did not answer ${audit.config.stack.serverUrl}/api/server/config`);
    const gate = await claimGate(audit);
    if (registered)
      return pass(
        `an admin is registered (isInitialized: true); sign-up is closed; ${gate.ok ? gate.detail : `no claim gate (harmless now): ${gate.detail}`}`,
      );
    if (!gate.ok)
      return bad(
        'warn',
        `no admin yet (isInitialized: false) and no claim gate: ${gate.detail}; whoever signs up first becomes the admin`,
        `${gate.fix}; then sign up with the claim link in ${PATHS.credentials}`,
      );
    const found = await audit.once(doorOf);
    const url = ('none' in found ? undefined : found.url) ?? "https://<this VM's address>/";
    return bad(
      'warn',
      `no admin yet (isInitialized: false); ${gate.detail}`,
      `sign up now at ${url} after opening the claim link (${url}claim/…, in ${PATHS.credentials}) in the same browser; the first account becomes the admin`,
    );
  },
};

/** The gate is in place when the site includes the token file, and that file is root's, 0600, with a token of ours. */
async function claimGate(audit: Audit): Promise<{ ok: boolean; detail: string; fix: string }> {
  const { fs } = audit.sys;
  const fix = `immich-firstboot --regenerate-cert (it makes the claim token if missing, and renders the site)`;
  const includes = (audit.site ?? '').split('\n').some((l) => l.trim() === `include ${PATHS.claimToken};`);
  if (!includes) return { ok: false, detail: `${PATHS.nginxSite} does not include ${PATHS.claimToken}`, fix };
  const info = await fs.info(PATHS.claimToken).catch(() => undefined);
  if (!info) return { ok: false, detail: `${PATHS.claimToken} is missing`, fix };
  if (info.uid !== 0 || info.gid !== 0 || info.mode !== 0o600)
    return {
      ok: false,
      detail: `${PATHS.claimToken} is ${info.uid}:${info.gid} mode ${info.mode.toString(8).padStart(4, '0')}, not root:root 0600 (others may have read the token)`,
      fix: `rm ${PATHS.claimToken} && ${fix}`,
    };
  if (!(await readClaimToken(audit.sys)))
    return {
      ok: false,
      detail: `${PATHS.claimToken} holds no claim token of ours`,
      fix: `rm ${PATHS.claimToken} && ${fix}`,
    };
  return {
    ok: true,
    detail: `the claim gate is in place (${PATHS.nginxSite} includes ${PATHS.claimToken}: root:root 0600, a valid token)`,
    fix: '',
  };
}
