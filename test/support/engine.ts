// The real Docker engine for the stack-engine tests: started by test/env/docker-up.sh when it is not
// up (CI has none running), stand-in images built, and everything of the `immich` project removed.

import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO } from './cli.js';

export const UP = path.join(REPO, 'test/env/docker-up.sh');

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program and resolves with its exit code and output (never rejects on a non-zero exit). */
export function run(file: string, args: string[], timeoutMs = 120_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr });
    });
  });
}

export async function sh(command: string): Promise<string> {
  const result = await run('bash', ['-c', command]);
  if (result.code !== 0)
    throw new Error(`\`${command}\` failed (exit ${result.code}): ${result.stderr}${result.stdout}`);
  return result.stdout;
}

/** Starts Docker if needed and builds the stand-in images; throws (the tests fail) if Docker cannot start. */
export function ensureEngine(): void {
  execFileSync('bash', [UP], { stdio: ['ignore', 'inherit', 'inherit'], timeout: 120_000 });
  execFileSync('bash', [path.join(REPO, 'test/fixtures/standin-images/build.sh')], {
    stdio: ['ignore', 'ignore', 'inherit'],
    timeout: 120_000,
  });
}

/**
 * A data directory like the installed package's (templates/, nginx/, compose/), except that the
 * compose file is the TEST COPY: the shipped file with its `@sha256:` digests dropped, because a
 * local stand-in image can never match a registry digest. Everything else is byte for byte as shipped.
 */
export function testDataDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ifb-data-'));
  for (const sub of ['templates', 'nginx']) symlinkSync(path.join(REPO, sub), path.join(dir, sub));
  mkdirSync(path.join(dir, 'compose'));
  const shipped = readFileSync(path.join(REPO, 'compose/docker-compose.yml'), 'utf8');
  writeFileSync(path.join(dir, 'compose/docker-compose.yml'), shipped.replace(/@sha256:[0-9a-f]{64}/g, ''));
  return dir;
}

/** Removes every container, network and volume of the `immich` compose project. */
export async function removeProject(): Promise<void> {
  const label = 'label=com.docker.compose.project=immich';
  await sh(`ids=$(docker ps -aq --filter ${label}); [ -z "$ids" ] || docker rm -f -v $ids >/dev/null`);
  await sh(`ids=$(docker network ls -q --filter ${label}); [ -z "$ids" ] || docker network rm $ids >/dev/null`);
  await sh(`ids=$(docker volume ls -q --filter ${label}); [ -z "$ids" ] || docker volume rm -f $ids >/dev/null`);
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/**
 * The addresses of the sockets listening on `port`, read straight from /proc/net/tcp{,6} (the same
 * kernel tables `ss` reads, without going through the code under test).
 */
export function listenersOn(port: number): string[] {
  const out: string[] = [];
  for (const [file, v6] of [
    ['/proc/net/tcp', false],
    ['/proc/net/tcp6', true],
  ] as const) {
    for (const line of readFileSync(file, 'utf8').split('\n').slice(1)) {
      const [, local, , state] = line.trim().split(/\s+/);
      if (!local || state !== '0A') continue; // 0A = LISTEN
      const [hex, portHex] = local.split(':') as [string, string];
      if (Number.parseInt(portHex, 16) !== port) continue;
      out.push(v6 ? ipv6(hex) : ipv4(hex));
    }
  }
  return out;
}

// /proc/net/tcp prints each 32-bit word in host (little-endian) byte order.
const word = (hex: string): number[] => [6, 4, 2, 0].map((i) => Number.parseInt(hex.slice(i, i + 2), 16));
const ipv4 = (hex: string): string => word(hex).join('.');
function ipv6(hex: string): string {
  const bytes = [0, 8, 16, 24].flatMap((i) => word(hex.slice(i, i + 8)));
  const groups = Array.from({ length: 8 }, (_, i) => ((bytes[2 * i] << 8) | bytes[2 * i + 1]).toString(16));
  return groups.join(':').replace(/(^|:)0(:0)+(:|$)/, '::');
}

/** A second host of the test's own: a network namespace joined to this one by a veth pair on a /30. */
export interface SecondHost {
  /** This machine's address on the link (what the second host would dial). */
  hostAddress: string;
  /** Connects from inside the namespace: 'connected', or the error code (ECONNREFUSED, timeout). */
  probe(address: string, port: number): Promise<string>;
  /** The second host's own address: the peer a server here sees. */
  address: string;
  /** Runs curl inside the namespace (`ip netns exec NS curl ARGS`; never rejects on a non-zero exit). */
  curl(args: string[]): Promise<Run>;
  remove(): Promise<void>;
}

export async function makeSecondHost(): Promise<SecondHost> {
  const id = process.pid % 10_000_000;
  const ns = `ifbtest-${id}`;
  // veth*: the name our host facts leave out as a container's link (src/host-facts.ts), so a first boot
  // elsewhere in the suite (the crash matrix compares whole trees across reruns) never sees this
  // address come and go. Docker publishes on every address anyway, this one included.
  const [here, there] = [`veth${id}h`, `veth${id}n`];
  // 198.18.0.0/15 is reserved for network tests (RFC 2544); one /30 of it per test process.
  const net = `198.18.${20 + (id % 200)}`;
  const remove = async (): Promise<void> => {
    await run('ip', ['link', 'del', here]);
    await run('ip', ['netns', 'del', ns]);
  };
  await remove();
  await sh(
    [
      `ip netns add ${ns}`,
      `ip link add ${here} type veth peer name ${there}`,
      `ip link set ${there} netns ${ns}`,
      `ip addr add ${net}.1/30 dev ${here}`,
      `ip link set ${here} up`,
      `ip netns exec ${ns} ip addr add ${net}.2/30 dev ${there}`,
      `ip netns exec ${ns} ip link set ${there} up`,
      `ip netns exec ${ns} ip link set lo up`,
    ].join(' && '),
  );
  const script = `const s=require('net').connect({host:process.argv[1],port:+process.argv[2]});s.setTimeout(3000,()=>{console.log('timeout');process.exit(0)});s.on('connect',()=>{console.log('connected');s.destroy()});s.on('error',(e)=>console.log(e.code))`;
  return {
    hostAddress: `${net}.1`,
    probe: async (address, port) =>
      (await run('ip', ['netns', 'exec', ns, process.execPath, '-e', script, address, String(port)])).stdout.trim(),
    address: `${net}.2`,
    curl: (args) => run('ip', ['netns', 'exec', ns, 'curl', ...args], 30_000),
    remove,
  };
}
