// Docker's own view of the Immich project (docker ps/inspect), the host's listening sockets (ss), and
// what the loopback-only guarantee sees in both; and the acts per-boot needs on a clone (pause, unpause
// and remove a container). Deciding when to act is the stack steps' and per-boot's business.

import net from 'node:net';
import { FirstbootError } from './errors.js';
import { PROJECT } from './stack.js';
import type { Ground } from './context.js';

export interface Binding {
  hostIp: string;
  hostPort: string;
}

export interface ContainerView {
  id: string;
  name: string;
  service: string;
  /** created, running, restarting, paused, exited, dead. */
  state: string;
  /** healthy, unhealthy, starting; undefined when the container has no health check. */
  health: string | undefined;
  /** How often Docker's restart policy has restarted it (reset when it is started by hand or made anew). */
  restartCount: number;
  /** The exit code of its last process (0 for one that never ran). */
  exitCode: number;
  /** Why Docker could not start it (State.Error), or ''. */
  error: string;
  networkMode: string;
  /** Every host binding, configured (HostConfig.PortBindings) or live (NetworkSettings.Ports). */
  bindings: Binding[];
  logConfig: { type: string; config: Record<string, string> };
}

interface InspectJson {
  Id: string;
  Name: string;
  Config?: { Labels?: Record<string, string> | null };
  RestartCount?: number;
  State?: { Status?: string; ExitCode?: number; Error?: string; Health?: { Status?: string } };
  HostConfig?: {
    NetworkMode?: string;
    PortBindings?: PortMap | null;
    LogConfig?: { Type?: string; Config?: Record<string, string> | null };
  };
  NetworkSettings?: { Ports?: PortMap | null };
}
type PortMap = Record<string, Array<{ HostIp?: string; HostPort?: string }> | null>;

/**
 * Whether dockerd answers: `docker info` names the server's version. Docker 26's CLI exits 0 with an
 * empty version when it cannot reach the daemon (the error goes to stderr); 20.10's exits 1.
 */
export async function dockerAnswers(
  ctx: Pick<Ground, 'sys'>,
): Promise<{ answers: boolean; notFound: boolean; exitCode: number | undefined; stderr: string }> {
  const info = await ctx.sys.exec('docker', ['info', '--format', '{{.ServerVersion}}'], { timeoutMs: 30_000 });
  return {
    answers: info.exitCode === 0 && info.stdout.trim() !== '',
    notFound: info.notFound,
    exitCode: info.exitCode,
    stderr: info.stderr,
  };
}

/** The project's containers as Docker sees them (running or not). */
export async function projectContainers(ctx: Pick<Ground, 'sys'>): Promise<ContainerView[]> {
  // Plain docker, not compose: `compose ps` differs between 1.29 and v2 (which lists only running ones).
  const ids = (
    await docker(ctx, ['ps', '-a', '-q', '--no-trunc', '--filter', `label=com.docker.compose.project=${PROJECT}`])
  )
    .split('\n')
    .filter(Boolean);
  if (ids.length === 0) return [];
  const parsed = JSON.parse(await docker(ctx, ['inspect', ...ids])) as InspectJson[];
  return parsed.map((c) => {
    const bindings = [c.HostConfig?.PortBindings, c.NetworkSettings?.Ports].flatMap((map) =>
      Object.values(map ?? {}).flatMap((list) =>
        (list ?? []).map((b) => ({ hostIp: b.HostIp ?? '', hostPort: b.HostPort ?? '' })),
      ),
    );
    const unique = [...new Map(bindings.map((b) => [`${b.hostIp}|${b.hostPort}`, b])).values()];
    return {
      id: c.Id,
      name: c.Name.replace(/^\//, ''),
      service: c.Config?.Labels?.['com.docker.compose.service'] ?? c.Name.replace(/^\//, ''),
      state: c.State?.Status ?? 'unknown',
      health: c.State?.Health?.Status,
      restartCount: c.RestartCount ?? 0,
      exitCode: c.State?.ExitCode ?? 0,
      error: c.State?.Error ?? '',
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
export async function listeningSockets(ctx: Pick<Ground, 'sys'>): Promise<Listener[]> {
  const result = await ctx.sys.exec('ss', ['-H', '-l', '-t', '-n', '-p'], { timeoutMs: 30_000 });
  if (result.exitCode !== 0) {
    throw new FirstbootError(
      'ss-failed',
      `could not list the listening sockets: \`ss -Hltnp\` ${result.notFound ? 'is not installed' : `failed: ${result.stderr.trim()}`}`,
      {
        hint: 'install iproute2 (apt install iproute2), then run `immich-firstboot` again',
      },
    );
  }
  return result.stdout.split('\n').flatMap((line) => {
    // State Recv-Q Send-Q Local:Port Peer:Port users:(("nginx",pid=7,fd=6),...); IPv6 as [::1]:2283,
    // the dual-stack wildcard as *:2283.
    const local = line.trim().split(/\s+/)[3];
    const match = local ? /^\[?(.*?)(?:%[^\]]*)?\]?:(\d+|\*)$/.exec(local) : null;
    const processes = [...line.matchAll(/\("([^"]*)",pid=(\d+)/g)].map((m) => ({ name: m[1], pid: Number(m[2]) }));
    return match ? [{ address: match[1], port: match[2], line: line.trim().replace(/\s+/g, ' '), processes }] : [];
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
export async function loopbackView(
  ctx: Ground,
  pending: ContainerView[] | Promise<ContainerView[]>,
): Promise<LoopbackView> {
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
    if (c.networkMode === 'host')
      ctx.log.info({ container: c.name }, 'container shares the host network; its sockets are checked below');
  }
  const listeners = sockets.filter((l) => ports.has(l.port));
  for (const l of listeners)
    if (!isLoopback(l.address)) problems.push(`a socket listens on ${l.address}:${l.port} (ss: ${l.line})`);
  const seen = listeners.map((l) => `${l.address}:${l.port}`).join(', ') || 'no socket';
  return { problems, exposedServices, listeners, summary: `ports ${[...ports].join(', ')} on loopback only (${seen})` };
}

/** Both results; when both fail, the first one's error, as if they had run one after the other. */
async function bothOrFirstError<A, B>(a: A | Promise<A>, b: Promise<B>): Promise<[A, B]> {
  const [first, second] = await Promise.allSettled([a, b]);
  if (first.status === 'rejected') throw first.reason;
  if (second.status === 'rejected') throw second.reason;
  return [first.value, second.value];
}

/** The containers created before Docker loaded the log rotation: their logs grow without bound. */
export function unrotated(containers: ContainerView[]): string[] {
  return containers
    .filter((c) => c.logConfig.type === 'json-file' && !c.logConfig.config['max-size'])
    .map((c) => c.name);
}

/** `docker pause`: the containers' processes are frozen where they are, and write nothing until unpaused. */
export async function pauseContainers(ctx: Pick<Ground, 'sys'>, ids: string[]): Promise<void> {
  if (ids.length > 0) await docker(ctx, ['pause', ...ids]);
}

export async function unpauseContainers(ctx: Pick<Ground, 'sys'>, ids: string[]): Promise<void> {
  if (ids.length > 0) await docker(ctx, ['unpause', ...ids]);
}

/** `docker rm -f`: killed if running or paused, then removed, with the configuration (and environment) they held. */
export async function removeContainers(ctx: Pick<Ground, 'sys'>, ids: string[]): Promise<void> {
  if (ids.length > 0) await docker(ctx, ['rm', '-f', ...ids]);
}

async function docker(ctx: Pick<Ground, 'sys'>, args: string[]): Promise<string> {
  const result = await ctx.sys.exec('docker', args, { timeoutMs: 60_000 });
  if (result.exitCode !== 0) {
    throw new FirstbootError(
      'docker-failed',
      `\`docker ${args.slice(0, 2).join(' ')} ...\` failed: ${result.stderr.trim() || `exit ${result.exitCode}`}`,
      {
        hint: 'check that Docker runs (`systemctl status docker.service`), then run `immich-firstboot` again',
      },
    );
  }
  return result.stdout;
}
