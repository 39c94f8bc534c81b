// A strict fake `exec` that plays Docker for unit tests: compose, ps/inspect (Docker's view of the
// project: which containers exist, their state, health and restart count), ss (the listening sockets)
// and dockerd --validate. Every call is recorded; anything else fails the test.

import type { Exec, ExecResult } from '../../src/system/index.js';

export interface World {
  /** Host address the server's 2283 is published on (Docker's view). */
  publishIp?: string;
  /** Lines `ss -Hltn` prints. */
  ss?: string[];
  serverHealth?: string;
  /** The services whose containers exist (default: Immich's four; [] as after `docker compose down`). */
  services?: string[];
  /** State.Status per service (default running). */
  states?: Record<string, string>;
  /** The server's RestartCount, or a function of how many times the project was inspected (1, 2, ...). */
  serverRestarts?: number | ((inspection: number) => number);
  /** The server's State.ExitCode and State.Error. */
  serverExit?: { code: number; error?: string };
  /** max-size in the containers' LogConfig (undefined: created without rotation). */
  maxSize?: string | undefined;
  logs?: string;
  upFails?: string;
  validate?: ExecResult;
  restart?: ExecResult;
}

export const ok = (stdout = ''): ExecResult => ({
  command: '',
  exitCode: 0,
  stdout,
  stderr: '',
  notFound: false,
  timedOut: false,
});
export const fail = (stderr: string, notFound = false): ExecResult => ({
  command: '',
  exitCode: notFound ? undefined : 1,
  stdout: '',
  stderr,
  notFound,
  timedOut: false,
});

const SERVICES = ['immich-server', 'immich-machine-learning', 'redis', 'database'];

export function dockerWorld(world: World = {}): Exec & { calls: string[][] } {
  const {
    publishIp = '127.0.0.1',
    ss = ['LISTEN 0      4096       127.0.0.1:2283      0.0.0.0:*'],
    serverHealth = 'healthy',
  } = world;
  const maxSize = 'maxSize' in world ? world.maxSize : '50m';
  const services = world.services ?? SERVICES;
  let inspections = 0;
  const calls: string[][] = [];
  const exec = (async (file: string, args: readonly string[]) => {
    const argv = [file, ...args];
    calls.push(argv);
    const compose = file === 'docker-compose' || (file === 'docker' && args[0] === 'compose');
    if (compose && args.includes('version')) return ok('Docker Compose version v2.99.0\n');
    if (compose && args.includes('up')) return world.upFails ? fail(world.upFails) : ok();
    if (compose && args.includes('logs')) return ok(world.logs ?? 'immich_server | stand-in log line\n');
    if (compose && args.includes('stop')) return ok();
    if (file === 'docker' && args[0] === 'ps') return ok(services.map((s) => `id-${s}\n`).join(''));
    if (file === 'docker' && args[0] === 'inspect') {
      inspections++;
      const restarts = world.serverRestarts ?? 0;
      return ok(
        JSON.stringify(
          args.slice(1).map((id) => {
            const service = id.replace(/^id-/, '');
            const server = service === 'immich-server';
            const ports = server ? { '2283/tcp': [{ HostIp: publishIp, HostPort: '2283' }] } : {};
            return {
              Id: id,
              Name: `/${service}`,
              Config: { Labels: { 'com.docker.compose.service': service } },
              RestartCount: server ? (typeof restarts === 'number' ? restarts : restarts(inspections)) : 0,
              State: {
                Status: world.states?.[service] ?? 'running',
                ExitCode: server ? (world.serverExit?.code ?? 0) : 0,
                Error: server ? (world.serverExit?.error ?? '') : '',
                Health: { Status: server ? serverHealth : 'healthy' },
              },
              HostConfig: {
                NetworkMode: 'immich_default',
                PortBindings: ports,
                LogConfig: { Type: 'json-file', Config: maxSize ? { 'max-size': maxSize, 'max-file': '5' } : {} },
              },
              NetworkSettings: { Ports: ports },
            };
          }),
        ),
      );
    }
    if (file === 'docker' && args[0] === 'info') return ok('20.10.24\n');
    if (file === 'ss') return ok(`${ss.join('\n')}\n`);
    if (file === 'dockerd' && args[0] === '--validate') return world.validate ?? ok('configuration OK\n');
    if (file === 'restart-docker') return world.restart ?? ok();
    throw new Error(`unexpected exec: ${argv.join(' ')}`);
  }) as Exec & { calls: string[][] };
  exec.calls = calls;
  return exec;
}
