// What this host is at this boot: hostname, addresses (Azure IMDS, else local interfaces), instance id.

import { isHostname, isIPv4, isIPv6, nameProblem } from './names.js';
import type { Ground } from './context.js';
import { queryImds, type ImdsFacts } from './imds.js';
import { PATHS } from './paths.js';
import type { HostFacts } from './state.js';
import type { System } from './system/index.js';

/** What this host is now; the host-facts step records it, `per-boot` and `doctor` compare it. */
export async function gatherHostFacts(ctx: Ground): Promise<HostFacts> {
  const { sys, config } = ctx;
  let imds: ImdsFacts = { vmId: null, privateIp: null, publicIp: null, addresses: [] };
  if (config.imds.enabled) {
    try {
      imds = await queryImds(sys, config.imds);
      ctx.log.info({ imds }, 'Azure IMDS answered');
    } catch (error) {
      ctx.log.info({ reason: (error as Error).message }, 'Azure IMDS not available; using local interfaces only');
    }
  }
  // What a certificate and a URL cannot hold (a zone id from IMDS, say) is dropped here, with a warning:
  // it must never stop a first boot or a per-boot at tls-cert.
  const usable = (address: string, from: string): boolean => {
    const why = nameProblem(address);
    if (why) ctx.log.warn({ address, from }, `ignoring the address ${address} from ${from}: it ${why}`);
    return why === undefined;
  };
  const fromImds = imds.addresses.filter((a) => usable(a, 'Azure IMDS'));
  const kept = (address: string | null): string | null => (address && fromImds.includes(address) ? address : null);
  const local = localAddresses(sys).filter((a) => usable(a, 'the local interfaces'));
  const addresses = unique([...fromImds, ...local]);
  const machineId = await readMachineId(sys);
  const instance: Pick<HostFacts, 'instanceId' | 'instanceIdSource'> = imds.vmId
    ? { instanceId: imds.vmId, instanceIdSource: 'azure-imds' }
    : machineId
      ? { instanceId: machineId, instanceIdSource: 'machine-id' }
      : { instanceId: 'unknown', instanceIdSource: 'none' };
  return {
    hostname: await hostname(sys),
    addresses,
    publicIp: kept(imds.publicIp),
    privateIp: kept(imds.privateIp) ?? local.find((a) => isIPv4(a)) ?? null,
    ...instance,
  };
}

/** The root's /etc/machine-id, when it holds one (empty or "uninitialized" in an image: none yet). */
export async function readMachineId(sys: System): Promise<string | undefined> {
  const machineId = (await sys.fs.read(PATHS.machineId))?.trim() ?? '';
  return /^[0-9a-f]{32}$/.test(machineId) ? machineId : undefined;
}

/** The root's /etc/hostname (what this machine will call itself), else the running kernel's. */
async function hostname(sys: System): Promise<string> {
  // A name a URL reads as an address (127.1) is no hostname for the certificate either.
  const usable = (name: string): boolean => isHostname(name) && nameProblem(name) === undefined;
  const fromFile = (await sys.fs.read(PATHS.hostname))?.split('\n')[0]?.trim() ?? '';
  if (usable(fromFile)) return fromFile.toLowerCase();
  const kernel = sys.kernelHostname();
  return usable(kernel) ? kernel.toLowerCase() : 'localhost';
}

// Bridges and veths belong to containers, not to the host's identity on the network.
const CONTAINER_IFACE = /^(docker\d*|br-[0-9a-f]+|veth.*|virbr\d*|cni\d*|flannel.*)$/;

function localAddresses(sys: System): string[] {
  return sys
    .interfaces()
    .filter((a) => !a.internal && !CONTAINER_IFACE.test(a.iface))
    .map((a) => a.address.split('%')[0])
    .filter((a) => !a.startsWith('169.254.') && !/^fe[89ab]/i.test(a))
    .sort((a, b) => Number(isIPv6(a)) - Number(isIPv6(b)));
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}
