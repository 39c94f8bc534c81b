// Azure Instance Metadata Service: the VM's id and addresses. Header `Metadata: true`, never through
// a proxy, short timeouts; 410 and 429 are retried within a budget (Azure asks for up to 70 s).

import net from 'node:net';
import type { Config } from './config.js';
import { errnoCode } from './errors.js';
import type { System } from './system/index.js';

export interface ImdsFacts {
  vmId: string | null;
  privateIp: string | null;
  publicIp: string | null;
}

export class ImdsUnavailable extends Error {}

const INSTANCE = '/metadata/instance?api-version=2021-08-01';
const LOADBALANCER = '/metadata/loadbalancer?api-version=2020-10-01';

export async function queryImds(sys: System, imds: Config['imds']): Promise<ImdsFacts> {
  const deadline = sys.now().getTime() + imds.retrySeconds * 1000;
  const instance = asObject(await getJson(sys, imds, INSTANCE, deadline), 'instance');
  const compute = asObject(instance.compute, 'compute');
  const iface = asObject(firstOf(asObject(instance.network, 'network').interface), 'network.interface[0]');
  const ipv4 = asObject(firstOf(asObject(iface.ipv4, 'ipv4').ipAddress), 'ipv4.ipAddress[0]');
  const vmId =
    typeof compute.vmId === 'string' && /^[0-9a-f-]{36}$/i.test(compute.vmId) ? compute.vmId.toLowerCase() : null;
  const privateIp = ip(ipv4.privateIpAddress);
  let publicIp = ip(ipv4.publicIpAddress);
  if (publicIp === null) {
    // Standard-SKU public IPs are not in the instance document; the load balancer endpoint has them.
    try {
      const lb = asObject(
        asObject(await getJson(sys, imds, LOADBALANCER, deadline), 'loadbalancer').loadbalancer,
        'loadbalancer',
      );
      const first = firstOf(lb.publicIpAddresses);
      publicIp = first && typeof first === 'object' ? ip((first as Record<string, unknown>).frontendIpAddress) : null;
    } catch {
      publicIp = null; // No load balancer document: the VM has no public IP we can learn.
    }
  }
  return { vmId, privateIp, publicIp };
}

async function getJson(sys: System, imds: Config['imds'], pathAndQuery: string, deadline: number): Promise<unknown> {
  for (let attempt = 1; ; attempt++) {
    let status: number;
    let body: string;
    try {
      ({ status, body } = await sys.httpGet({
        url: imds.url + pathAndQuery,
        headers: { Metadata: 'true' },
        timeoutMs: imds.timeoutSeconds * 1000,
      }));
    } catch (error) {
      throw new ImdsUnavailable(`${imds.url} did not answer (${errnoCode(error) ?? String(error)})`);
    }
    if (status === 200) {
      try {
        return JSON.parse(body);
      } catch {
        throw new ImdsUnavailable(`${imds.url} answered ${pathAndQuery.split('?')[0]} with something that is not JSON`);
      }
    }
    // 410: IMDS is not ready yet this early in boot; 429: over 5 requests/s; 5xx: transient.
    const retryable = status === 410 || status === 429 || status >= 500;
    const wait = status === 429 ? 1000 : Math.min(2000 * attempt, 10_000);
    if (!retryable || sys.now().getTime() + wait > deadline) {
      throw new ImdsUnavailable(
        `${imds.url} answered HTTP ${status} for ${pathAndQuery.split('?')[0]}${retryable ? ` (gave up after ${attempt} tries)` : ''}`,
      );
    }
    await sys.sleep(wait);
  }
}

function asObject(value: unknown, what: string): Record<string, unknown> {
  if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
  throw new ImdsUnavailable(`IMDS document has no ${what}`);
}

function firstOf(value: unknown): unknown {
  return Array.isArray(value) ? value[0] : undefined;
}

function ip(value: unknown): string | null {
  return typeof value === 'string' && net.isIP(value) !== 0 ? value : null;
}
