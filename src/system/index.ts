// The one door to the outside world: every step gets a System and touches nothing else.

import os from 'node:os';
import { existsSync } from 'node:fs';
import { randomBytes } from './random.js';
import { RootedFs } from './rooted-fs.js';
import { crashPoints, type CrashPoint } from './crash.js';
import { dataFile, dataPath } from './data.js';
import { execReal, preloadExec, type Exec } from './exec.js';
import { hostScratch, processStart, readHostFile, type HostScratch } from './host.js';
import { httpGetReal, type HttpGet } from './http.js';
import { peerFingerprintReal, type PeerFingerprint } from './tls-peer.js';
import { resolveHostReal, type ResolveHost } from './dns.js';
import { kernelReal, type Kernel } from './kernel.js';

export type { Exec, ExecResult, ExecOptions } from './exec.js';
export type { HostScratch } from './host.js';
export type { HttpGet, HttpResponse } from './http.js';
export type { PeerFingerprint, PeerRequest } from './tls-peer.js';
export type { ResolveHost, ResolveRequest, ResolveResult } from './dns.js';
export type { Kernel } from './kernel.js';
export { RootedFs } from './rooted-fs.js';
export type { FileInfo, BlockDeviceInfo, FsUsage } from './rooted-fs.js';

export interface NetworkAddress {
  iface: string;
  address: string;
  family: 'IPv4' | 'IPv6';
  internal: boolean;
}

export interface System {
  fs: RootedFs;
  /** True when the root is this host's own / (no --root, or --root /): the running host is the root's. */
  onHost: boolean;
  exec: Exec;
  httpGet: HttpGet;
  /** The fingerprint of the certificate a TLS server presents (which certificate nginx serves now). */
  peerFingerprint: PeerFingerprint;
  /** A name's A and AAAA records (the Let's Encrypt check: does the domain point here?). */
  resolveHost: ResolveHost;
  randomBytes: (size: number) => Buffer;
  now(): Date;
  sleep(ms: number): Promise<void>;
  interfaces(): NetworkAddress[];
  /** The running kernel's hostname (used when the root has no /etc/hostname). */
  kernelHostname(): string;
  env: Readonly<Record<string, string | undefined>>;
  /** True when this process runs on a host booted with systemd (not a property of the root). */
  hostHasSystemd(): boolean;
  /** A file shipped with the program (templates/, nginx/, compose/): dataFile('compose/docker-compose.yml'). */
  dataFile(relative: string): string;
  /** The host path of a shipped file, for a program that reads it itself. */
  dataPath(relative: string): string;
  /** A file on the host, outside the root (`--config FILE`); rejects with Node's own error. */
  readHostFile(hostPath: string): Promise<string>;
  /** A private (0700) directory in the host's temp directory, for files a program we run reads. */
  hostScratch(prefix: string): Promise<HostScratch>;
  /** A process's start time on this host (its /proc, whatever the root); undefined when it does not run. */
  processStart(pid: number): string | undefined;
  /** The running kernel's /sys and /proc (host paths, never under the root): block devices, mounts, swaps. */
  kernel: Kernel;
  /** A named point where the crash-matrix tests may kill the process (a no-op in production). */
  crashPoint: CrashPoint;
  /** Starts loading, in the background, what `exec` needs, for a run about to start programs. */
  preloadExec?(): void;
}

/**
 * The unit we run under: our units name themselves (Environment=IMMICH_FIRSTBOOT_UNIT=%n); systemd sets
 * INVOCATION_ID for every service it starts, so a stray variable in an operator's shell does not count.
 */
function serviceUnit(env: NodeJS.ProcessEnv): string | undefined {
  return env.INVOCATION_ID && env.IMMICH_FIRSTBOOT_UNIT ? env.IMMICH_FIRSTBOOT_UNIT : undefined;
}

export function createSystem(root: string, env: NodeJS.ProcessEnv = process.env): System {
  const crashPoint = crashPoints(env);
  // Point names are stable across runs: the random parts of temp and pair names are masked.
  const fs = new RootedFs(
    root,
    (phase, target) =>
      crashPoint(
        `write:${target.replace(/\.[0-9a-f]{8}\.tmp/g, '.X.tmp').replace(/pair-[0-9T]+-[0-9a-f]+/g, 'pair-X')}:${phase}`,
      ),
    serviceUnit(env),
  );
  return {
    crashPoint,
    fs,
    onHost: fs.onHost,
    exec: execReal,
    preloadExec,
    httpGet: httpGetReal,
    peerFingerprint: peerFingerprintReal,
    resolveHost: resolveHostReal,
    randomBytes: (size) => randomBytes(size),
    now: () => new Date(),
    sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    interfaces: () =>
      Object.entries(os.networkInterfaces()).flatMap(([iface, list]) =>
        (list ?? []).map((a) => ({ iface, address: a.address, family: a.family, internal: a.internal })),
      ),
    kernelHostname: () => os.hostname(),
    env,
    // sd_booted(3): this directory exists only when systemd is PID 1 on the running host.
    hostHasSystemd: () => existsSync('/run/systemd/system'),
    // IMMICH_FIRSTBOOT_DATA_DIR (a test's broken release) is read from the same environment.
    dataFile: (relative) => dataFile(env, relative),
    dataPath: (relative) => dataPath(env, relative),
    readHostFile,
    hostScratch,
    processStart,
    kernel: kernelReal,
  };
}
