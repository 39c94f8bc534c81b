// An Azure IMDS stand-in on 127.0.0.1 (never the real 169.254.169.254): answers per path, records requests
// and when each came (on the test's clock, so a unit test's fake clock stamps them).

import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type Route = { status: number; body: string } | 'hang' | 'reset';

export interface ImdsStub {
  url: string;
  requests: Array<{ path: string; headers: http.IncomingHttpHeaders; at: number }>;
  close(): Promise<void>;
}

export const INSTANCE_DOC = (
  publicIp = '',
  privateIp = '10.1.0.4',
  vmId = '5c08b38e-4d57-4c23-ac45-aca61037f084',
): string =>
  JSON.stringify({
    compute: { vmId, name: 'immich-vm' },
    network: { interface: [{ ipv4: { ipAddress: [{ privateIpAddress: privateIp, publicIpAddress: publicIp }] } }] },
  });

export interface Nic {
  ipv4: Array<{ privateIpAddress: string; publicIpAddress?: string }>;
  ipv6?: string[];
}

/** An instance document with these NICs, in this order (Azure does not promise the primary first). */
export const NICS_DOC = (nics: Nic[], vmId = '5c08b38e-4d57-4c23-ac45-aca61037f084'): string =>
  JSON.stringify({
    compute: { vmId, name: 'immich-vm' },
    network: {
      interface: nics.map((nic, i) => ({
        ipv4: {
          ipAddress: nic.ipv4.map((a) => ({ publicIpAddress: '', ...a })),
          subnet: [{ address: '10.1.0.0', prefix: '24' }],
        },
        ipv6: { ipAddress: (nic.ipv6 ?? []).map((a) => ({ privateIpAddress: a })) },
        macAddress: `000D3A00000${i}`,
      })),
    },
  });

export const LB_DOC = (publicIp: string, privateIp = '10.1.0.4'): string =>
  JSON.stringify({
    loadbalancer: { publicIpAddresses: [{ frontendIpAddress: publicIp, privateIpAddress: privateIp }] },
  });

/** The load balancer endpoint's 404s, in Microsoft's words (troubleshoot-load-balancer-imds.md). */
export const LB_NOT_READY: Route = {
  status: 404,
  body: JSON.stringify({ error: "Load Balancer metadata API isn't available right now. Retry later" }),
};
export const LB_NONE: Route = {
  status: 404,
  body: JSON.stringify({
    error:
      'No load balancer metadata is found. Check if your virtual machine is using any nonbasic SKU load balancer and retry later.',
  }),
};

/**
 * routes: path ("/metadata/instance") → one answer, or a list answered in turn (the last repeats). A path
 * not routed is a 404; the load balancer's is the one Azure gives a VM without a load balancer.
 */
export async function startImdsStub(
  routes: Record<string, Route | Route[]>,
  clock: () => number = Date.now,
): Promise<ImdsStub> {
  const requests: ImdsStub['requests'] = [];
  const served = new Map<string, number>();
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    requests.push({ path, headers: req.headers, at: clock() });
    const key = Object.keys(routes).find((p) => path === p);
    const unrouted = path === '/metadata/loadbalancer' ? LB_NONE : { status: 404, body: 'not found' };
    const list = key ? ([] as Route[]).concat(routes[key]) : [unrouted];
    const n = served.get(path) ?? 0;
    served.set(path, n + 1);
    const route = list[Math.min(n, list.length - 1)];
    if (route === 'hang') return;
    if (route === 'reset') return req.socket.destroy();
    res.writeHead(route.status, { 'content-type': 'application/json' });
    res.end(route.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}
