// An Azure IMDS stand-in on 127.0.0.1 (never the real 169.254.169.254): answers per path, records requests.

import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type Route = { status: number; body: string } | 'hang' | 'reset';

export interface ImdsStub {
  url: string;
  requests: Array<{ path: string; headers: http.IncomingHttpHeaders }>;
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

export const LB_DOC = (publicIp: string): string =>
  JSON.stringify({
    loadbalancer: { publicIpAddresses: [{ frontendIpAddress: publicIp, privateIpAddress: '10.1.0.4' }] },
  });

/** routes: path prefix ("/metadata/instance") → one answer, or a list answered in turn (the last repeats). */
export async function startImdsStub(routes: Record<string, Route | Route[]>): Promise<ImdsStub> {
  const requests: ImdsStub['requests'] = [];
  const served = new Map<string, number>();
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    requests.push({ path, headers: req.headers });
    const key = Object.keys(routes).find((p) => path === p);
    const list = key ? ([] as Route[]).concat(routes[key]) : [{ status: 404, body: 'not found' }];
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
