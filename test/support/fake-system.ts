// A System for unit tests: the real rooted filesystem on a temp root, and strict fakes for the rest
// (an unexpected program or HTTP call fails the test, as Immich's strict repository mocks do).

import {
  createSystem,
  type Exec,
  type HttpGet,
  type PeerFingerprint,
  type ResolveHost,
  type System,
  type NetworkAddress,
} from '../../src/system/index.js';
import { DEFAULT_CONFIG, type Config } from '../../src/config.js';
import { createLogger, SecretRegistry } from '../../src/log.js';
import { newJournal, type HostFacts } from '../../src/state.js';
import type { RunOptions, StepContext } from '../../src/steps/step.js';

/** The shipped data files (templates/, nginx/, compose/) as a real System reads them: for a render outside a step. */
export const shipped: Pick<System, 'dataFile'> = createSystem(process.cwd(), {});

export interface FakeOptions {
  exec?: Exec;
  httpGet?: HttpGet;
  peerFingerprint?: PeerFingerprint;
  resolveHost?: ResolveHost;
  interfaces?: NetworkAddress[];
  random?: (size: number) => Buffer;
  hostname?: string;
}

export function fakeSystem(root: string, options: FakeOptions = {}): System & { clock: { ms: number } } {
  const clock = { ms: Date.parse('2026-11-28T12:00:00Z') };
  const real = createSystem(root, {});
  return {
    ...real,
    clock,
    exec:
      options.exec ??
      (async (file, args) => {
        throw new Error(`unexpected exec: ${file} ${args.join(' ')}`);
      }),
    httpGet:
      options.httpGet ??
      (async ({ url }) => {
        throw Object.assign(new Error(`unexpected GET ${url}`), { code: 'ECONNREFUSED' });
      }),
    peerFingerprint:
      options.peerFingerprint ??
      (async ({ host, port }) => {
        throw Object.assign(new Error(`unexpected TLS handshake with ${host}:${port}`), { code: 'ECONNREFUSED' });
      }),
    resolveHost:
      options.resolveHost ??
      (async ({ name }) => {
        throw new Error(`unexpected DNS look-up of ${name}`);
      }),
    interfaces: () =>
      options.interfaces ?? [
        { iface: 'lo', address: '127.0.0.1', family: 'IPv4', internal: true },
        { iface: 'eth0', address: '10.0.0.4', family: 'IPv4', internal: false },
        { iface: 'docker0', address: '172.17.0.1', family: 'IPv4', internal: false },
      ],
    randomBytes: options.random ?? real.randomBytes,
    now: () => new Date(clock.ms),
    sleep: async (ms) => {
      clock.ms += ms;
    },
    kernelHostname: () => options.hostname ?? 'testvm',
    hostHasSystemd: () => false,
    // Real: the shipped data files (dataFile, dataPath) and this host's processes (the lock's liveness).
    // Strict: the host beyond the temp root.
    readHostFile: async (hostPath) => {
      throw new Error(`unexpected read of the host's ${hostPath}`);
    },
    hostScratch: async (prefix) => {
      throw new Error(`unexpected host temp directory ${prefix}`);
    },
  };
}

export interface Captured {
  ctx: StepContext;
  logs: Array<Record<string, unknown>>;
}

export function stepContext(sys: System, config: Partial<Config> = {}, options: Partial<RunOptions> = {}): Captured {
  const logs: Array<Record<string, unknown>> = [];
  const secrets = new SecretRegistry();
  const log = createLogger({
    level: 'debug',
    format: 'json',
    sink: { write: (l) => logs.push(JSON.parse(l)) },
    secrets,
  });
  const journal = newJournal('run', sys.now());
  const ctx: StepContext = {
    sys,
    config: { ...structuredClone(DEFAULT_CONFIG), ...config },
    journal,
    log,
    notify: { status: async () => undefined, extendTimeout: async () => undefined, flush: async () => undefined },
    secrets,
    options: { skipStack: false, newCert: false, ...options },
    warn(message, hint) {
      journal.warnings.push({ step: 'test', at: sys.now().toISOString(), message, ...(hint ? { hint } : {}) });
    },
  };
  return { ctx, logs };
}

/** A VM's names and addresses as host-facts records them: immich-vm on 203.0.113.9, no IMDS; override what a test needs. */
export function hostFacts(overrides: Partial<HostFacts> = {}): HostFacts {
  return {
    hostname: 'immich-vm',
    addresses: ['203.0.113.9'],
    publicIp: null,
    privateIp: null,
    instanceId: 'x',
    instanceIdSource: 'none',
    ...overrides,
  };
}
