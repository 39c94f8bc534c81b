// Azure Instance Metadata Service: the VM's id and every NIC's addresses. Header `Metadata: true`, never
// through a proxy, short timeouts, at most 5 requests a second; 410, 429, 5xx and the load balancer's
// "not available right now" 404 are retried within one budget (Azure asks for up to 70 s).

import type { Config } from './config.js';
import { errnoCode } from './errors.js';
import { isIP } from './names.js';
import type { System } from './system/index.js';

export interface ImdsFacts {
  /** compute.vmId, lower case. */
  vmId: string | null;
  /** The primary NIC's primary private address. */
  privateIp: string | null;
  /** The first public address: the primary address's own when it has one. */
  publicIp: string | null;
  /** Every NIC's addresses, primary NIC first: the public ones, then the private IPv4, then the IPv6. */
  addresses: string[];
  /** Why the load balancer endpoint gave no public address, when it was asked and did not. */
  loadBalancer?: string;
}

export class ImdsUnavailable extends Error {}

const INSTANCE = '/metadata/instance?api-version=2021-08-01';
const LOADBALANCER = '/metadata/loadbalancer?api-version=2020-10-01';

export async function queryImds(sys: System, imds: Config['imds']): Promise<ImdsFacts> {
  const deadline = sys.now().getTime() + imds.retrySeconds * 1000;
  const answer = await getJson(sys, imds, INSTANCE, deadline);
  const instance = asObject(answer.json, 'instance');
  const compute = asObject(instance.compute, 'compute');
  const vmId = typeof compute.vmId === 'string' && UUID.test(compute.vmId) ? compute.vmId.toLowerCase() : null;
  // "The nics returned by the network call are not guaranteed to be in order", and nothing in them says
  // which is primary; but IMDS answers only requests from the primary NIC's primary IP: the one ours left from.
  const configs = primaryFirst(nicsOf(instance), answer.localAddress);

  let loadBalancer: string | undefined;
  const fromLb = new Map<string, string[]>();
  if (configs.some((c) => c.v4 && c.public === null)) {
    // Standard-SKU public IPs are not in the instance document; the load balancer endpoint has them.
    try {
      const lbAnswer = await getJson(sys, imds, LOADBALANCER, deadline, true);
      const lb = asObject(asObject(lbAnswer.json, 'loadbalancer').loadbalancer, 'loadbalancer');
      for (const entry of Array.isArray(lb.publicIpAddresses) ? lb.publicIpAddresses : []) {
        const pair = entry && typeof entry === 'object' ? (entry as Record<string, unknown>) : {};
        const frontend = ip(pair.frontendIpAddress);
        const key = ip(pair.privateIpAddress) ?? '';
        if (frontend) fromLb.set(key, [...(fromLb.get(key) ?? []), frontend]);
      }
    } catch (error) {
      loadBalancer = (error as Error).message; // No load balancer document: no public IP to learn there.
    }
  }
  const publicIps = unique([
    ...configs.flatMap((c) => (c.public !== null ? [c.public] : (fromLb.get(c.private) ?? []))),
    ...[...fromLb.values()].flat(),
  ]);
  return {
    vmId,
    privateIp: configs.find((c) => c.v4)?.private ?? null,
    publicIp: publicIps[0] ?? null,
    addresses: unique([
      ...publicIps,
      ...configs.filter((c) => c.v4).map((c) => c.private),
      ...configs.filter((c) => !c.v4).map((c) => c.private),
    ]),
    ...(loadBalancer ? { loadBalancer } : {}),
  };
}

/** One IP configuration of a NIC: its private address and, from the instance document, its public one. */
interface IpConfig {
  nic: number;
  v4: boolean;
  private: string;
  public: string | null;
}

function nicsOf(instance: Record<string, unknown>): IpConfig[] {
  const nics = asObject(instance.network, 'network').interface;
  if (!Array.isArray(nics)) throw new ImdsUnavailable('IMDS document has no network.interface list');
  return nics.flatMap((value, nic) => {
    const iface = value && typeof value === 'object' ? (value as Record<string, unknown>) : {};
    return (['ipv4', 'ipv6'] as const).flatMap((family) => {
      const list = (iface[family] as Record<string, unknown> | undefined)?.ipAddress;
      return (Array.isArray(list) ? list : []).flatMap((entry): IpConfig[] => {
        const pair = entry && typeof entry === 'object' ? (entry as Record<string, unknown>) : {};
        const privateIp = ip(pair.privateIpAddress);
        return privateIp ? [{ nic, v4: family === 'ipv4', private: privateIp, public: ip(pair.publicIpAddress) }] : [];
      });
    });
  });
}

/** The NIC holding `local` first, and `local` first within it; else IMDS's order (cloud-init's too). */
function primaryFirst(configs: IpConfig[], local: string | undefined): IpConfig[] {
  const mine = configs.find((c) => c.private === local);
  if (!mine) return configs;
  const rank = (c: IpConfig): number => (c === mine ? 0 : c.nic === mine.nic ? 1 : 2);
  return [...configs].sort((a, b) => rank(a) - rank(b)); // stable: IMDS's order within each rank
}

// --- every request --------------------------------------------------------------------------------

/** "Requests to IMDS are limited to 5 requests per second": never more in any one second. */
const PER_SECOND = 5;
/** Shared by every request made with one System: a process has one (main.ts), so this is the process's. */
const sentWith = new WeakMap<System, { times: number[]; queue: Promise<void> }>();

/** Waits (on the System's clock) until a request keeps the last second's count within the limit. */
function takeTurn(sys: System): Promise<void> {
  const sent = sentWith.get(sys) ?? { times: [], queue: Promise.resolve() };
  sentWith.set(sys, sent);
  // One after the other: two callers at once must not both see a free place.
  sent.queue = sent.queue.then(async () => {
    const wait = sent.times.length < PER_SECOND ? 0 : sent.times[0] + 1000 - sys.now().getTime();
    if (wait > 0) await sys.sleep(wait);
    sent.times = [...sent.times, sys.now().getTime()].slice(-PER_SECOND);
  });
  return sent.queue;
}

// Microsoft's table for the load balancer endpoint: a 404 means "not available right now, retry later",
// or "isn't currently available" (being enabled), or, for good, "No load balancer metadata is found"
// (no Standard load balancer or public IP) or "API isn't found" (a wrong path).
const LB_404_FOR_GOOD = /no load balancer metadata|api (?:is ?n[o']t|not) found/i;

async function getJson(
  sys: System,
  imds: Config['imds'],
  pathAndQuery: string,
  deadline: number,
  loadBalancer = false,
): Promise<{ json: unknown; localAddress?: string }> {
  const what = pathAndQuery.split('?')[0];
  for (let attempt = 1; ; attempt++) {
    await takeTurn(sys);
    let status: number;
    let body: string;
    let localAddress: string | undefined;
    try {
      ({ status, body, localAddress } = await sys.httpGet({
        url: imds.url + pathAndQuery,
        headers: { Metadata: 'true' },
        timeoutMs: imds.timeoutSeconds * 1000,
      }));
    } catch (error) {
      throw new ImdsUnavailable(`${imds.url} did not answer (${errnoCode(error) ?? String(error)})`);
    }
    if (status === 200) {
      try {
        return { json: JSON.parse(body), localAddress };
      } catch {
        throw new ImdsUnavailable(`${imds.url} answered ${what} with something that is not JSON`);
      }
    }
    // 410: IMDS is not ready yet this early in boot; 429: over 5 requests/s; 5xx: transient.
    const retryable =
      status === 410 ||
      status === 429 ||
      status >= 500 ||
      (loadBalancer && status === 404 && !LB_404_FOR_GOOD.test(body));
    const wait = status === 429 ? 1000 : Math.min(2000 * attempt, 10_000);
    if (!retryable || sys.now().getTime() + wait > deadline) {
      // The load balancer's 404s differ only in their text: say which one it was.
      const text = body
        .replace(/[^\x20-\x7e]+/g, ' ')
        .trim()
        .slice(0, 200);
      const said = status === 404 && text ? `: ${text}` : '';
      throw new ImdsUnavailable(
        `${imds.url} answered HTTP ${status} for ${what}${said}${retryable ? ` (gave up after ${attempt} tries)` : ''}`,
      );
    }
    await sys.sleep(wait);
  }
}

// --- the instance id ------------------------------------------------------------------------------

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Whether two vmIds name one VM. Azure has shown the same VM's id in upper and in lower case, and with its
 * first three groups byte-swapped (SMBIOS before 2.6 stores them little-endian, RFC 4122 reads them
 * big-endian): cloud-init took each change for a new instance until it accepted both forms.
 */
export function sameVmId(a: string, b: string): boolean {
  const [x, y] = [a.toLowerCase(), b.toLowerCase()];
  return x === y || (UUID.test(x) && byteSwapped(x) === y);
}

/** 5c08b38e-4d57-4c23-… ↔ 8eb3085c-574d-234c-…: the first three groups' bytes reversed. */
export function byteSwapped(uuid: string): string {
  const groups = uuid.split('-');
  const reverse = (hex: string): string => (hex.match(/../g) ?? []).reverse().join('');
  return [...groups.slice(0, 3).map(reverse), ...groups.slice(3)].join('-');
}

// --- shapes -----------------------------------------------------------------------------------------

function asObject(value: unknown, what: string): Record<string, unknown> {
  if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
  throw new ImdsUnavailable(`IMDS document has no ${what}`);
}

function ip(value: unknown): string | null {
  return typeof value === 'string' && isIP(value) !== 0 ? value : null;
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}
