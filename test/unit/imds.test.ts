import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG } from '../../src/config.js';
import { byteSwapped, queryImds, sameVmId, ImdsUnavailable } from '../../src/imds.js';
import { httpGetReal } from '../../src/system/http.js';
import type { HttpGet } from '../../src/system/index.js';
import { fakeSystem } from '../support/fake-system.js';
import { makeRoot } from '../support/root.js';
import {
  INSTANCE_DOC,
  LB_DOC,
  LB_NONE,
  LB_NOT_READY,
  NICS_DOC,
  startImdsStub,
  type ImdsStub,
  type Route,
} from '../support/imds-stub.js';

type Answer = { status: number; body: string; localAddress?: string } | Error;
function scripted(
  answers: Record<string, Answer[]>,
): HttpGet & { calls: Array<{ url: string; headers?: Record<string, string> }> } {
  const calls: Array<{ url: string; headers?: Record<string, string> }> = [];
  const get = (async ({ url, headers }) => {
    calls.push({ url, headers });
    const path = new URL(url).pathname;
    const list = answers[path];
    if (!list) throw Object.assign(new Error('refused'), { code: 'ECONNREFUSED' });
    const answer = list.length > 1 ? list.shift()! : list[0];
    if (answer instanceof Error) throw answer;
    return answer;
  }) as HttpGet & { calls: typeof calls };
  get.calls = calls;
  return get;
}
const imds = { ...DEFAULT_CONFIG.imds, url: 'http://127.0.0.1:1' };

let stub: ImdsStub | undefined;
afterEach(async () => {
  await stub?.close();
  stub = undefined;
});

describe('Azure IMDS', () => {
  it('reads the vmId and both addresses, with Metadata: true', async () => {
    const httpGet = scripted({ '/metadata/instance': [{ status: 200, body: INSTANCE_DOC('203.0.113.9') }] });
    const facts = await queryImds(fakeSystem(makeRoot(), { httpGet }), imds);
    expect(facts).toEqual({
      vmId: '5c08b38e-4d57-4c23-ac45-aca61037f084',
      privateIp: '10.1.0.4',
      publicIp: '203.0.113.9',
      addresses: ['203.0.113.9', '10.1.0.4'],
    });
    expect(httpGet.calls[0]).toEqual({
      url: 'http://127.0.0.1:1/metadata/instance?api-version=2021-08-01',
      headers: { Metadata: 'true' },
    });
  });

  it('asks the load balancer endpoint when the public IP is empty (Standard SKU)', async () => {
    const httpGet = scripted({
      '/metadata/instance': [{ status: 200, body: INSTANCE_DOC('') }],
      '/metadata/loadbalancer': [{ status: 200, body: LB_DOC('198.51.100.20') }],
    });
    expect((await queryImds(fakeSystem(makeRoot(), { httpGet }), imds)).publicIp).toBe('198.51.100.20');
  });

  it('has no public IP, asking once, when the load balancer endpoint says the VM has no load balancer', async () => {
    const httpGet = scripted({
      '/metadata/instance': [{ status: 200, body: INSTANCE_DOC('') }],
      '/metadata/loadbalancer': [LB_NONE as Answer],
    });
    const sys = fakeSystem(makeRoot(), { httpGet });
    const start = sys.clock.ms;
    const facts = await queryImds(sys, imds);
    expect(facts).toMatchObject({ publicIp: null, addresses: ['10.1.0.4'] });
    expect(facts.loadBalancer).toMatch(/HTTP 404 for \/metadata\/loadbalancer: .*No load balancer metadata is found/);
    expect(httpGet.calls.map((c) => new URL(c.url).pathname)).toEqual(['/metadata/instance', '/metadata/loadbalancer']);
    expect(sys.clock.ms).toBe(start);
  });

  it('retries the load balancer\'s 404 "not available right now" until it answers (a Standard-SKU public IP)', async () => {
    const httpGet = scripted({
      '/metadata/instance': [{ status: 200, body: INSTANCE_DOC('') }],
      '/metadata/loadbalancer': [
        LB_NOT_READY as Answer,
        { status: 404, body: '{"error":"/metadata/loadbalancer isn\'t currently available"}' },
        { status: 200, body: LB_DOC('198.51.100.20') },
      ],
    });
    const facts = await queryImds(fakeSystem(makeRoot(), { httpGet }), imds);
    expect(facts).toMatchObject({ publicIp: '198.51.100.20', addresses: ['198.51.100.20', '10.1.0.4'] });
    expect(httpGet.calls.filter((c) => c.url.includes('loadbalancer'))).toHaveLength(3);
  });

  it("gives up on the load balancer's 404 within the budget the instance document's retries already used", async () => {
    const httpGet = scripted({
      '/metadata/instance': [
        { status: 410, body: '' },
        { status: 410, body: '' },
        { status: 410, body: '' },
        { status: 200, body: INSTANCE_DOC('') },
      ],
      '/metadata/loadbalancer': [LB_NOT_READY as Answer],
    });
    const sys = fakeSystem(makeRoot(), { httpGet });
    const start = sys.clock.ms;
    const facts = await queryImds(sys, { ...imds, retrySeconds: 30 });
    expect(facts).toMatchObject({
      vmId: '5c08b38e-4d57-4c23-ac45-aca61037f084',
      privateIp: '10.1.0.4',
      publicIp: null,
    });
    expect(facts.loadBalancer).toMatch(/HTTP 404 .*isn't available right now.*gave up after \d+ tries/);
    expect(sys.clock.ms - start).toBeLessThanOrEqual(30_000);
    expect(httpGet.calls.filter((c) => c.url.includes('loadbalancer')).length).toBeGreaterThan(1);
  });

  it('retries 410 and 429 until IMDS answers', async () => {
    const httpGet = scripted({
      '/metadata/instance': [
        { status: 410, body: '' },
        { status: 429, body: '' },
        { status: 200, body: INSTANCE_DOC('203.0.113.9') },
      ],
    });
    const sys = fakeSystem(makeRoot(), { httpGet });
    expect((await queryImds(sys, imds)).publicIp).toBe('203.0.113.9');
    expect(httpGet.calls).toHaveLength(3);
  });

  it('gives up on 410 after the retry budget', async () => {
    const httpGet = scripted({ '/metadata/instance': [{ status: 410, body: '' }] });
    const sys = fakeSystem(makeRoot(), { httpGet });
    const start = sys.clock.ms;
    await expect(queryImds(sys, { ...imds, retrySeconds: 70 })).rejects.toThrow(/HTTP 410.*gave up/);
    expect(sys.clock.ms - start).toBeLessThanOrEqual(70_000);
    expect(sys.clock.ms - start).toBeGreaterThan(50_000);
  });

  it.each([
    ['HTML instead of JSON', { status: 200, body: '<html>captive portal</html>' }, /not JSON/],
    [
      'a refused connection',
      Object.assign(new Error('x'), { code: 'ECONNREFUSED' }),
      /did not answer \(ECONNREFUSED\)/,
    ],
    ['a timeout', Object.assign(new Error('x'), { code: 'ETIMEDOUT' }), /did not answer \(ETIMEDOUT\)/],
    ['a 403', { status: 403, body: '' }, /HTTP 403/],
    ['JSON of the wrong shape', { status: 200, body: '{"compute":1}' }, /no compute/],
  ])('reports %s as unavailable', async (_what, answer, message) => {
    const httpGet = scripted({ '/metadata/instance': [answer] });
    const error = await queryImds(fakeSystem(makeRoot(), { httpGet }), imds).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ImdsUnavailable);
    expect((error as Error).message).toMatch(message);
  });
});

describe("Azure IMDS: every NIC's addresses, primary first", () => {
  // The NICs as IMDS may list them: "not guaranteed to be in order". The primary is the NIC whose address
  // our request left from (IMDS answers only the primary NIC's primary IP).
  const nics = NICS_DOC([
    { ipv4: [{ privateIpAddress: '10.2.0.5', publicIpAddress: '198.51.100.7' }], ipv6: ['fd00:2::5'] },
    {
      ipv4: [{ privateIpAddress: '10.1.0.5' }, { privateIpAddress: '10.1.0.4', publicIpAddress: '203.0.113.9' }],
      ipv6: ['fd00:1::4'],
    },
  ]);

  it('puts the NIC the request left from first, and that address first within it', async () => {
    const httpGet = scripted({
      '/metadata/instance': [{ status: 200, body: nics, localAddress: '10.1.0.4' }],
      '/metadata/loadbalancer': [LB_NONE as Answer],
    });
    expect(await queryImds(fakeSystem(makeRoot(), { httpGet }), imds)).toMatchObject({
      privateIp: '10.1.0.4',
      publicIp: '203.0.113.9',
      addresses: ['203.0.113.9', '198.51.100.7', '10.1.0.4', '10.1.0.5', '10.2.0.5', 'fd00:1::4', 'fd00:2::5'],
    });
  });

  it("keeps IMDS's order when the request's address is none of the NICs'", async () => {
    const httpGet = scripted({
      '/metadata/instance': [{ status: 200, body: nics, localAddress: '192.0.2.1' }],
      '/metadata/loadbalancer': [LB_NONE as Answer],
    });
    expect(await queryImds(fakeSystem(makeRoot(), { httpGet }), imds)).toMatchObject({
      privateIp: '10.2.0.5',
      publicIp: '198.51.100.7',
      addresses: ['198.51.100.7', '203.0.113.9', '10.2.0.5', '10.1.0.5', '10.1.0.4', 'fd00:2::5', 'fd00:1::4'],
    });
  });

  it("gives each address its load balancer public IP, the primary's first", async () => {
    const httpGet = scripted({
      '/metadata/instance': [
        {
          status: 200,
          body: NICS_DOC([{ ipv4: [{ privateIpAddress: '10.2.0.5' }] }, { ipv4: [{ privateIpAddress: '10.1.0.4' }] }]),
          localAddress: '10.1.0.4',
        },
      ],
      '/metadata/loadbalancer': [
        {
          status: 200,
          body: JSON.stringify({
            loadbalancer: {
              publicIpAddresses: [
                { frontendIpAddress: '198.51.100.7', privateIpAddress: '10.2.0.5' },
                { frontendIpAddress: '203.0.113.9', privateIpAddress: '10.1.0.4' },
              ],
            },
          }),
        },
      ],
    });
    expect(await queryImds(fakeSystem(makeRoot(), { httpGet }), imds)).toMatchObject({
      publicIp: '203.0.113.9',
      addresses: ['203.0.113.9', '198.51.100.7', '10.1.0.4', '10.2.0.5'],
    });
  });

  it('learns the address the request left from over real HTTP (the stub on 127.0.0.1 is "the primary NIC")', async () => {
    stub = await startImdsStub({
      '/metadata/instance': {
        status: 200,
        body: NICS_DOC([{ ipv4: [{ privateIpAddress: '10.2.0.5' }] }, { ipv4: [{ privateIpAddress: '127.0.0.1' }] }]),
      },
    });
    const sys = fakeSystem(makeRoot(), { httpGet: httpGetReal });
    expect(await queryImds(sys, { ...imds, url: stub.url })).toMatchObject({
      privateIp: '127.0.0.1',
      addresses: ['127.0.0.1', '10.2.0.5'],
    });
  });
});

/** The most requests the stub saw within any one second (half-open: [t, t + 1000 ms)). */
function busiestSecond(at: number[]): number {
  return Math.max(0, ...at.map((t) => at.filter((u) => u >= t && u < t + 1000).length));
}

describe('Azure IMDS over HTTP (a stub on 127.0.0.1, stamping requests with the fake clock)', () => {
  async function served(routes: Record<string, Route | Route[]>) {
    const sys = fakeSystem(makeRoot(), { httpGet: httpGetReal });
    stub = await startImdsStub(routes, () => sys.clock.ms);
    return { sys, config: { ...imds, url: stub.url } };
  }

  it('never sends more than 5 requests in a second: many lookups in one process, one after another or all at once', async () => {
    const { sys, config } = await served({ '/metadata/instance': { status: 200, body: INSTANCE_DOC('') } });
    const start = sys.clock.ms;
    for (let i = 0; i < 3; i++) await queryImds(sys, config); // instance + load balancer each
    await Promise.all([1, 2, 3].map(() => queryImds(sys, config)));
    expect(stub!.requests).toHaveLength(12);
    expect(busiestSecond(stub!.requests.map((r) => r.at))).toBe(5);
    // The first five go at once: a first boot (two requests) never waits for the limit.
    expect(stub!.requests.slice(0, 5).map((r) => r.at - start)).toEqual([0, 0, 0, 0, 0]);
  });

  it('retries the load balancer\'s "not available right now" over real HTTP until it answers', async () => {
    const { sys, config } = await served({
      '/metadata/instance': { status: 200, body: INSTANCE_DOC('') },
      '/metadata/loadbalancer': [LB_NOT_READY, { status: 200, body: LB_DOC('198.51.100.20') }],
    });
    expect((await queryImds(sys, config)).publicIp).toBe('198.51.100.20');
    expect(stub!.requests.map((r) => r.path)).toEqual([
      '/metadata/instance',
      '/metadata/loadbalancer',
      '/metadata/loadbalancer',
    ]);
  });
});

describe('the vmId', () => {
  const id = '5c08b38e-4d57-4c23-ac45-aca61037f084';

  it('is read in lower case', async () => {
    const httpGet = scripted({
      '/metadata/instance': [{ status: 200, body: INSTANCE_DOC('1.2.3.4', '10.1.0.4', id.toUpperCase()) }],
    });
    expect((await queryImds(fakeSystem(makeRoot(), { httpGet }), imds)).vmId).toBe(id);
  });

  it('names the same VM in either case and with its first three groups byte-swapped (SMBIOS < 2.6)', () => {
    expect(byteSwapped(id)).toBe('8eb3085c-574d-234c-ac45-aca61037f084');
    expect(byteSwapped(byteSwapped(id))).toBe(id);
    expect(sameVmId(id, id.toUpperCase())).toBe(true);
    expect(sameVmId(id, '8EB3085C-574D-234C-AC45-ACA61037F084')).toBe(true);
    expect(sameVmId('8eb3085c-574d-234c-ac45-aca61037f084', id)).toBe(true);
  });

  it('tells different VMs apart, byte-swapped or not', () => {
    expect(sameVmId(id, 'd3e0e374-fda6-4649-bbc9-7f20dc379f34')).toBe(false);
    expect(sameVmId(id, byteSwapped('d3e0e374-fda6-4649-bbc9-7f20dc379f34'))).toBe(false);
    // Only the first three groups swap: the last two are the same in both orders.
    expect(sameVmId(id, '8eb3085c-574d-234c-45ac-aca61037f084')).toBe(false);
  });
});
