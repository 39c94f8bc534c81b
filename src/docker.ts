// Docker's own view of the Immich project (docker ps/inspect), the host's listening sockets (ss),
// the loopback-only check built on both, and restarting Docker so daemon.json takes effect.

import net from 'node:net';
import { PATHS } from './paths.js';
import { FirstbootError } from './errors.js';
import { composeArgs, composeCommand, PROJECT } from './stack.js';
import type { StepContext } from './steps/step.js';

export interface Binding {
  hostIp: string;
  hostPort: string;
}

export interface ContainerView {
  id: string;
  name: string;
  service: string;
  /** running, restarting, exited, ... */
  state: string;
  /** healthy, unhealthy, starting; undefined when the container has no health check. */
  health: string | undefined;
  networkMode: string;
  /** Every host binding, configured (HostConfig.PortBindings) or live (NetworkSettings.Ports). */
  bindings: Binding[];
  logConfig: { type: string; config: Record<string, string> };
}

interface InspectJson {
  Id: string;
  Name: string;
  Config?: { Labels?: Record<string, string> | null };
  State?: { Status?: string; Health?: { Status?: string } };
  HostConfig?: { NetworkMode?: string; PortBindings?: PortMap | null; LogConfig?: { Type?: string; Config?: Record<string, string> | null } };
  NetworkSettings?: { Ports?: PortMap | null };
}
type PortMap = Record<string, Array<{ HostIp?: string; HostPort?: string }> | null>;

/** The project's containers as Docker sees them (running or not). */
export async function projectContainers(ctx: Pick<StepContext, 'sys'>): Promise<ContainerView[]> {
  // Plain docker, not compose: `compose ps` differs between 1.29 and v2 (which lists only running ones).
  const ids = (await docker(ctx, ['ps', '-a', '-q', '--no-trunc', '--filter', `label=com.docker.compose.project=${PROJECT}`])).split('\n').filter(Boolean);
  if (ids.length === 0) return [];
  const parsed = JSON.parse(await docker(ctx, ['inspect', ...ids])) as InspectJson[];
  return parsed.map((c) => {
    const bindings = [c.HostConfig?.PortBindings, c.NetworkSettings?.Ports].flatMap((map) =>
      Object.values(map ?? {}).flatMap((list) => (list ?? []).map((b) => ({ hostIp: b.HostIp ?? '', hostPort: b.HostPort ?? '' }))),
    );
    const unique = [...new Map(bindings.map((b) => [`${b.hostIp}|${b.hostPort}`, b])).values()];
    return {
      id: c.Id,
      name: c.Name.replace(/^\//, ''),
      service: c.Config?.Labels?.['com.docker.compose.service'] ?? c.Name.replace(/^\//, ''),
      state: c.State?.Status ?? 'unknown',
      health: c.State?.Health?.Status,
      networkMode: c.HostConfig?.NetworkMode ?? '',
      bindings: unique,
      logConfig: { type: c.HostConfig?.LogConfig?.Type ?? '', config: c.HostConfig?.LogConfig?.Config ?? {} },
    };
  });
}

export interface Listener {
  address: string;
  port: string;
  /** The line as ss printed it, for messages. */
  line: string;
  /** The programs holding the socket (`ss -p`: all of them as root, only our own otherwise). */
  processes: Array<{ name: string; pid: number }>;
}

/** Every listening TCP socket of this host, with its programs, from `ss -Hltnp` (iproute2). */
export async function listeningSockets(ctx: Pick<StepContext, 'sys'>): Promise<Listener[]> {
  const result = await ctx.sys.exec('ss', ['-H', '-l', '-t', '-n', '-p'], { timeoutMs: 30_000 });
  if (result.exitCode !== 0) {
    throw new FirstbootError('ss-failed', `could not list the listening sockets: \`ss -Hltnp\` ${result.notFound ? 'is not installed' : `failed: ${result.stderr.trim()}`}`, {
      hint: 'install iproute2 (apt install iproute2), then run `immich-firstboot` again',
    });
  }
  return result.stdout.split('\n').flatMap((line) => {
    // State Recv-Q Send-Q Local:Port Peer:Port users:(("nginx",pid=7,fd=6),...); IPv6 as [::1]:2283,
    // the dual-stack wildcard as *:2283.
    const local = line.trim().split(/\s+/)[3];
    const match = local ? /^\[?(.*?)(?:%[^\]]*)?\]?:(\d+|\*)$/.exec(local) : null;
    const processes = [...line.matchAll(/\("([^"]*)",pid=(\d+)/g)].map((m) => ({ name: m[1]!, pid: Number(m[2]) }));
    return match ? [{ address: match[1]!, port: match[2]!, line: line.trim().replace(/\s+/g, ' '), processes }] : [];
  });
}

export function isLoopback(address: string): boolean {
  const v4 = address.replace(/^::ffff:/i, '');
  if (net.isIPv4(v4)) return v4.startsWith('127.');
  return address === '::1' || address.toLowerCase() === 'localhost';
}

export interface LoopbackView {
  /** Each binding or socket beyond loopback, as a sentence fragment; empty when all is well. */
  problems: string[];
  /** Compose services whose published ports reach beyond loopback. */
  exposedServices: Set<string>;
  listeners: Listener[];
  /** "ports 2283 on loopback only (127.0.0.1:2283)" when there is no problem. */
  summary: string;
}

/**
 * What the loopback guarantee sees, without acting on it: every port Docker publishes for the
 * project, and every socket listening on those ports or on Immich's own port, must be on 127.0.0.0/8
 * or ::1. Shared by the stack steps (which stop what is exposed) and `doctor` (which only reports).
 */
export async function loopbackView(ctx: Pick<StepContext, 'sys' | 'config' | 'log'>, pending: ContainerView[] | Promise<ContainerView[]>): Promise<LoopbackView> {
  // ss runs while Docker is still answering ps/inspect; it cannot depend on them.
  const [containers, sockets] = await bothOrFirstError(pending, listeningSockets(ctx));
  const problems: string[] = [];
  const exposedServices = new Set<string>();
  const ports = new Set([new URL(ctx.config.stack.serverUrl).port || '80']);
  for (const c of containers) {
    for (const b of c.bindings) {
      ports.add(b.hostPort);
      if (!isLoopback(b.hostIp)) {
        problems.push(`Docker publishes ${c.name} on ${b.hostIp || 'every address'}:${b.hostPort}`);
        exposedServices.add(c.service);
      }
    }
    if (c.networkMode === 'host') ctx.log.info({ container: c.name }, 'container shares the host network; its sockets are checked below');
  }
  const listeners = sockets.filter((l) => ports.has(l.port));
  for (const l of listeners) if (!isLoopback(l.address)) problems.push(`a socket listens on ${l.address}:${l.port} (ss: ${l.line})`);
  const seen = listeners.map((l) => `${l.address}:${l.port}`).join(', ') || 'no socket';
  return { problems, exposedServices, listeners, summary: `ports ${[...ports].join(', ')} on loopback only (${seen})` };
}

/**
 * The loopback guarantee, enforced: anything beyond loopback (0.0.0.0, ::, an external address) stops
 * the exposed containers and fails. Immich's sign-up must never be reachable without nginx and TLS.
 */
export async function verifyLoopbackOnly(ctx: StepContext, containers: ContainerView[] | Promise<ContainerView[]>): Promise<string> {
  const { problems, exposedServices, listeners, summary } = await loopbackView(ctx, containers);
  if (problems.length === 0) return summary;

  ctx.log.error({ problems, listeners: listeners.map((l) => l.line) }, 'Immich is reachable beyond this machine');
  let stopped = '';
  if (exposedServices.size > 0) {
    const [file, ...base] = await composeCommand(ctx);
    const result = await ctx.sys.exec(file!, [...base, ...composeArgs(ctx, 'stop', ...exposedServices)], { cwd: ctx.sys.fs.path(PATHS.immichDir), timeoutMs: 120_000 });
    stopped = result.exitCode === 0 ? `; stopped ${[...exposedServices].join(', ')} so nobody can sign up as admin over plain HTTP` : '';
  }
  throw new FirstbootError('port-exposed', `Immich must listen on 127.0.0.1 only, but ${problems.join('; ')}${stopped}`, {
    hint: `in ${PATHS.composeFile} publish ports on loopback only (the server's line must read - '127.0.0.1:2283:2283'; compare with the shipped file, or ${PATHS.composeFile}.firstboot-new if it exists), stop whatever else listens on those ports, then run \`immich-firstboot\` again; nginx is the only public door`,
    detail: { problems },
  });
}

/** Both results; when both fail, the first one's error, as if they had run one after the other. */
async function bothOrFirstError<A, B>(a: A | Promise<A>, b: Promise<B>): Promise<[A, B]> {
  const [first, second] = await Promise.allSettled([a, b]);
  if (first.status === 'rejected') throw first.reason;
  if (second.status === 'rejected') throw second.reason;
  return [first.value, second.value];
}

/** Containers created before Docker loaded the log rotation keep unrotated logs: say so. */
export function warnUnrotated(ctx: StepContext, containers: ContainerView[]): void {
  const unrotated = containers.filter((c) => c.logConfig.type === 'json-file' && !c.logConfig.config['max-size']).map((c) => c.name);
  if (unrotated.length === 0) return;
  ctx.warn(
    `${unrotated.join(', ')} ${unrotated.length === 1 ? 'was' : 'were'} created without log rotation (Docker had not loaded ${PATHS.dockerDaemonJson} yet)`,
    `restart Docker, then recreate the containers: cd ${PATHS.immichDir} && docker compose -p ${PROJECT} up -d --force-recreate`,
  );
}

// --- restarting Docker -----------------------------------------------------------------------

/**
 * Restarts Docker if daemon.json changed since Docker last loaded it (the marker says so), so that
 * the stack's containers, created next, get the rotation. The marker survives a crash between the
 * write and the restart, and a `--skip-stack` run whose restart is left to the next plain run.
 */
export async function restartDockerIfPending(ctx: StepContext): Promise<boolean> {
  if (!(await ctx.sys.fs.exists(PATHS.dockerRestartPending))) return false;
  const configured = ctx.config.dockerLogs.restartCommand;
  let command: string[];
  if (configured !== 'auto') command = configured;
  // ignore-dependencies: our unit has Requires=docker.service, and a plain restart of Docker would
  // propagate to it, so systemd would SIGTERM the very first boot that asked for the restart.
  else if (ctx.sys.hostHasSystemd() && ctx.sys.fs.root === '/') command = ['systemctl', 'restart', '--job-mode=ignore-dependencies', 'docker.service'];
  else {
    ctx.warn(
      `${PATHS.dockerDaemonJson} changed, but Docker was not restarted (no systemd here, or --root is not /)`,
      'restart Docker before the containers are created (or set dockerLogs.restartCommand), or they keep unrotated logs',
    );
    await ctx.sys.fs.remove(PATHS.dockerRestartPending);
    return false;
  }
  await ctx.notify.status('Restarting Docker to apply log rotation');
  const [file, ...args] = command as [string, ...string[]];
  const result = await ctx.sys.exec(file, args, { timeoutMs: 180_000 });
  if (result.exitCode !== 0) {
    throw new FirstbootError('docker-restart-failed', `\`${command.join(' ')}\` failed: ${result.stderr.trim() || result.stdout.trim() || `exit ${result.exitCode}`}`, {
      hint: `check \`journalctl -u docker.service\`; ${PATHS.dockerDaemonJson} may hold a setting this Docker rejects`,
    });
  }
  await waitForDocker(ctx, 60);
  await ctx.sys.fs.remove(PATHS.dockerRestartPending);
  ctx.log.info({ command: command.join(' ') }, 'Docker restarted to apply log rotation');
  return true;
}

async function waitForDocker(ctx: StepContext, seconds: number): Promise<void> {
  const deadline = ctx.sys.now().getTime() + seconds * 1000;
  for (;;) {
    const info = await ctx.sys.exec('docker', ['info', '--format', '{{.ServerVersion}}'], { timeoutMs: 30_000 });
    if (info.exitCode === 0) return;
    if (ctx.sys.now().getTime() >= deadline) {
      throw new FirstbootError('docker-down', `Docker did not answer within ${seconds}s after the restart: ${info.stderr.trim()}`, {
        hint: `check \`systemctl status docker.service\` and \`journalctl -u docker.service\`, then run \`immich-firstboot\` again`,
      });
    }
    await ctx.sys.sleep(500);
  }
}

async function docker(ctx: Pick<StepContext, 'sys'>, args: string[]): Promise<string> {
  const result = await ctx.sys.exec('docker', args, { timeoutMs: 60_000 });
  if (result.exitCode !== 0) {
    throw new FirstbootError('docker-failed', `\`docker ${args.slice(0, 2).join(' ')} ...\` failed: ${result.stderr.trim() || `exit ${result.exitCode}`}`, {
      hint: 'check that Docker runs (`systemctl status docker.service`), then run `immich-firstboot` again',
    });
  }
  return result.stdout;
}
