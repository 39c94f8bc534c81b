import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG } from '../../src/config.js';
import { queryImds, ImdsUnavailable } from '../../src/imds.js';
import type { HttpGet } from '../../src/system/index.js';
import { fakeSystem } from '../support/fake-system.js';
import { makeRoot } from '../support/root.js';
import { INSTANCE_DOC, LB_DOC } from '../support/imds-stub.js';

type Answer = { status: number; body: string } | Error;
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

describe('Azure IMDS', () => {
  it('reads the vmId and both addresses, with Metadata: true', async () => {
    const httpGet = scripted({ '/metadata/instance': [{ status: 200, body: INSTANCE_DOC('203.0.113.9') }] });
    const facts = await queryImds(fakeSystem(makeRoot(), { httpGet }), imds);
    expect(facts).toEqual({
      vmId: '5c08b38e-4d57-4c23-ac45-aca61037f084',
      privateIp: '10.1.0.4',
      publicIp: '203.0.113.9',
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

  it('has no public IP when the load balancer endpoint has none', async () => {
    const httpGet = scripted({
      '/metadata/instance': [{ status: 200, body: INSTANCE_DOC('') }],
      '/metadata/loadbalancer': [{ status: 404, body: '' }],
    });
    expect((await queryImds(fakeSystem(makeRoot(), { httpGet }), imds)).publicIp).toBeNull();
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
