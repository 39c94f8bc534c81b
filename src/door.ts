// The nginx door as a client on this machine reaches it: where the site's TLS port answers, the name a
// browser asks for, and whether nginx presents the certificate we expect there. doctor's
// ping-through-nginx looks through it; so does a reload, which returns only once nginx serves the new
// certificate.

import net from 'node:net';
import { isLoopback } from './docker.js';
import { reloadNginx, siteListens } from './nginx.js';
import type { HostFacts } from './state.js';
import type { System } from './system/index.js';

export interface TlsDoor {
  /** Where to connect: the site's `listen ... ssl` address, loopback for a wildcard. */
  address: string;
  port: string;
  /** The name a browser would use: the domain, else the public address, else the first address. */
  host: string;
  /** The SNI to ask for: the host when it is a name (never an IP address, RFC 6066). */
  servername: string | undefined;
}

/** The door of a site as this machine reaches it; undefined when the site has no `listen ... ssl`. */
export function tlsDoor(site: string, domain: string | null, host: HostFacts | undefined): TlsDoor | undefined {
  const tls = siteListens(site).filter((l) => l.ssl);
  const listen = tls.find((l) => net.isIPv4(l.address)) ?? tls.find((l) => isLoopback(l.address)) ?? tls[0];
  if (!listen) return undefined;
  const wildcard = { '*': '127.0.0.1', '0.0.0.0': '127.0.0.1', '::': '::1' }[listen.address];
  const name = domain ?? host?.publicIp ?? host?.addresses[0] ?? 'localhost';
  return {
    address: wildcard ?? listen.address,
    port: listen.port,
    host: name,
    servername: net.isIP(name) ? undefined : name,
  };
}

/** Fingerprints as Node and openssl print them ("AB:CD:..."), whatever their case. */
export function sameFingerprint(a: string | undefined, b: string | undefined): boolean {
  return a !== undefined && b !== undefined && a.toUpperCase() === b.toUpperCase();
}

/** How long nginx gets to serve a new certificate after a reload: issue 13 saw about a second. */
const BOUND_MS = 10_000;

export interface AwaitOptions {
  /** How long nginx may take to serve the new certificate (its reload is asynchronous). */
  timeoutMs?: number;
  intervalMs?: number;
}

/**
 * Polls the door (a TLS handshake, nothing more) until nginx presents `fingerprint`. Returns undefined
 * once it does; when the bound runs out, what it presented last (a fingerprint) or why it could not tell.
 */
export async function awaitCertificate(
  sys: System,
  door: TlsDoor,
  fingerprint: string,
  options: AwaitOptions = {},
): Promise<{ presented: string } | { error: string } | undefined> {
  const { timeoutMs = BOUND_MS, intervalMs = 150 } = options;
  const deadline = sys.now().getTime() + timeoutMs;
  for (;;) {
    const left = deadline - sys.now().getTime();
    const seen = await sys
      .peerFingerprint({
        host: door.address,
        port: Number(door.port),
        servername: door.servername,
        timeoutMs: Math.max(100, Math.min(2000, left)),
      })
      .then(
        (presented) => ({ presented }),
        (error: unknown) => ({ error: (error as { code?: string }).code ?? (error as Error).message }),
      );
    if ('presented' in seen && sameFingerprint(seen.presented, fingerprint)) return undefined;
    if (sys.now().getTime() + intervalMs > deadline) return seen;
    await sys.sleep(intervalMs);
  }
}

export type ReloadOutcome = 'reloaded' | 'not running' | 'other root' | { warning: string; hint: string };

/**
 * Reloads nginx when it runs on this host (reloadNginx), and then returns only once it serves
 * `expected.fingerprint`: `nginx -s reload` and `systemctl reload nginx` return before the new
 * workers hold the new certificate, and whoever compares the fingerprint in the credentials file
 * with the browser's must find it there. If the bound runs out: a warning, not a failure (the
 * certificate and the site are in place; nginx is what lags).
 */
export async function reloadServing(
  sys: System,
  expected: { door: TlsDoor; fingerprint: string } | undefined,
  options: AwaitOptions = {},
): Promise<ReloadOutcome> {
  const outcome = await reloadNginx(sys);
  if (typeof outcome === 'object')
    return {
      warning: `could not reload nginx: ${outcome.failed}`,
      hint: 'run `systemctl reload nginx` and check `journalctl -u nginx`',
    };
  if (outcome !== 'reloaded' || !expected) return outcome;
  const late = await awaitCertificate(sys, expected.door, expected.fingerprint, options);
  if (!late) return outcome;
  const where = `${net.isIPv6(expected.door.address) ? `[${expected.door.address}]` : expected.door.address}:${expected.door.port}`;
  const seconds = (options.timeoutMs ?? BOUND_MS) / 1000;
  const what =
    'presented' in late
      ? `nginx still serves the old certificate (SHA-256 ${late.presented})`
      : `nginx could not be asked which certificate it serves (${late.error})`;
  return {
    warning: `${what} on ${where} ${seconds} s after the reload, not the new one (SHA-256 ${expected.fingerprint})`,
    hint: 'run `systemctl reload nginx`; if it still serves the old certificate, check `nginx -t` and `journalctl -u nginx -n 20`',
  };
}
