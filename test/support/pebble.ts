// Debian's pebble (an ACME server) and pebble-challtestsrv (its mock DNS) on loopback, for certbot tests.
// pebble validates HTTP-01 on `httpPort` (the test nginx's), resolving names through the mock DNS when
// given one; its HTTPS certificate is made here for 127.0.0.1 (REQUESTS_CA_BUNDLE for certbot).

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './net.js';

export interface Pebble {
  /** The ACME directory URL (https://127.0.0.1:PORT/dir). */
  url: string;
  /** pebble's own HTTPS certificate: certbot's REQUESTS_CA_BUNDLE. */
  caBundle: string;
  /** Everything pebble printed since it (re)started, across restarts. */
  log(): string;
  /** How many orders pebble was asked for (its "POST /order-plz" lines). */
  orders(): number;
  stop(): Promise<void>;
  /** Starts it again on the same port (after stop). */
  start(): Promise<void>;
  /** Stops it for good and removes its files. */
  close(): Promise<void>;
}

export interface PebbleOptions {
  /** The port pebble's HTTP-01 validation connects to (the test nginx's http port). */
  httpPort: number;
  tlsPort?: number;
  /** "127.0.0.1:PORT" of the DNS pebble resolves names with (pebble-challtestsrv). */
  dnsServer?: string;
  /** Every authorization valid without a challenge (the certbot --nginx test); default: real HTTP-01. */
  alwaysValid?: boolean;
}

export async function startPebble(options: PebbleOptions): Promise<Pebble> {
  const work = mkdtempSync(path.join(os.tmpdir(), 'ifb-pebble-'));
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-noenc',
      '-days',
      '1',
      '-subj',
      '/CN=pebble',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      `${work}/pebble-key.pem`,
      '-out',
      `${work}/pebble-cert.pem`,
    ],
    { stdio: 'pipe' },
  );
  const port = await freePort();
  writeFileSync(
    `${work}/pebble.json`,
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${port}`,
        managementListenAddress: `127.0.0.1:${await freePort()}`,
        certificate: `${work}/pebble-cert.pem`,
        privateKey: `${work}/pebble-key.pem`,
        httpPort: options.httpPort,
        tlsPort: options.tlsPort ?? (await freePort()),
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
      },
    }),
  );
  let log = '';
  let child: ChildProcess | undefined;
  const start = async (): Promise<void> => {
    const args = ['-config', `${work}/pebble.json`, ...(options.dnsServer ? ['-dnsserver', options.dnsServer] : [])];
    const proc = spawn('pebble', args, {
      // No random bad nonces or sleeps; PEBBLE_VA_ALWAYS_VALID only when asked.
      env: {
        ...process.env,
        PEBBLE_VA_NOSLEEP: '1',
        PEBBLE_WFE_NONCEREJECT: '0',
        PEBBLE_VA_ALWAYS_VALID: options.alwaysValid ? '1' : '0',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = proc;
    await new Promise<void>((resolve, reject) => {
      let mine = '';
      const onData = (chunk: Buffer) => {
        log += chunk.toString();
        mine += chunk.toString();
        if (mine.includes('Listening on')) resolve();
      };
      proc.stdout.on('data', onData);
      proc.stderr.on('data', onData);
      proc.on('exit', (code) => reject(new Error(`pebble exited (${code}): ${mine}`)));
    });
  };
  const stop = async (): Promise<void> => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      proc.on('exit', () => resolve());
      proc.kill();
    });
  };
  await start();
  return {
    url: `https://127.0.0.1:${port}/dir`,
    caBundle: `${work}/pebble-cert.pem`,
    log: () => log,
    orders: () => log.split('\n').filter((l) => /POST \/order-plz/.test(l)).length,
    stop,
    start,
    async close() {
      await stop();
      rmSync(work, { recursive: true, force: true });
    },
  };
}

export interface MockDns {
  /** "127.0.0.1:PORT": pebble's -dnsserver, and config.yaml's letsencrypt.resolver. */
  server: string;
  /** Answers A queries for `host` with `addresses` (and no AAAA: there is no default answer). */
  setA(host: string, addresses: string[]): Promise<void>;
  close(): Promise<void>;
}

/** pebble-challtestsrv as a DNS server with no default answers: only the names set with setA resolve. */
export async function startMockDns(): Promise<MockDns> {
  const dnsPort = await freePort();
  const managementPort = await freePort();
  const proc = spawn(
    'pebble-challtestsrv',
    [
      '-dns01',
      `127.0.0.1:${dnsPort}`,
      '-management',
      `127.0.0.1:${managementPort}`,
      '-http01',
      '',
      '-https01',
      '',
      '-tlsalpn01',
      '',
      '-defaultIPv4',
      '',
      '-defaultIPv6',
      '',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  await new Promise<void>((resolve, reject) => {
    let out = '';
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      if (/Starting management server/.test(out) && /DNS(-01)? challenge server/i.test(out)) resolve();
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    proc.on('exit', (code) => reject(new Error(`pebble-challtestsrv exited (${code}): ${out}`)));
    setTimeout(() => resolve(), 3000).unref(); // older builds word their start lines differently
  });
  const manage = async (endpoint: string, body: unknown): Promise<void> => {
    const res = await fetch(`http://127.0.0.1:${managementPort}${endpoint}`, {
      method: 'POST',
      body: JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`pebble-challtestsrv ${endpoint}: ${res.status} ${await res.text()}`);
  };
  return {
    server: `127.0.0.1:${dnsPort}`,
    async setA(host, addresses) {
      await manage('/clear-a', { host });
      if (addresses.length > 0) await manage('/add-a', { host, addresses });
    },
    async close() {
      if (proc.exitCode !== null) return;
      await new Promise<void>((resolve) => {
        proc.on('exit', () => resolve());
        proc.kill();
      });
    },
  };
}
