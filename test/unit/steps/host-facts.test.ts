import { describe, expect, it } from 'vitest';
import { hostFacts } from '../../../src/steps/host-facts.js';
import { fakeSystem, stepContext } from '../../support/fake-system.js';
import { makeRoot, writeFile } from '../../support/root.js';
import { INSTANCE_DOC } from '../../support/imds-stub.js';
import type { HttpGet } from '../../../src/system/index.js';

describe('the host-facts step', () => {
  it('uses IMDS addresses first, then local interfaces without docker bridges, and the vmId', async () => {
    const root = makeRoot();
    writeFile(root, '/etc/hostname', 'immich-vm\n');
    const httpGet: HttpGet = async () => ({ status: 200, body: INSTANCE_DOC('203.0.113.9', '10.0.0.4') });
    const { ctx } = stepContext(fakeSystem(root, { httpGet }), {
      imds: { enabled: true, url: 'http://127.0.0.1:1', timeoutSeconds: 1, retrySeconds: 0 },
    });
    await hostFacts.apply(ctx);
    expect(ctx.journal.facts.host).toEqual({
      hostname: 'immich-vm',
      addresses: ['203.0.113.9', '10.0.0.4'],
      publicIp: '203.0.113.9',
      privateIp: '10.0.0.4',
      instanceId: '5c08b38e-4d57-4c23-ac45-aca61037f084',
      instanceIdSource: 'azure-imds',
    });
  });

  it('takes no hostname a URL reads as an address (/etc/hostname 127.1): the kernel name instead', async () => {
    const root = makeRoot();
    writeFile(root, '/etc/hostname', '127.1\n');
    const { ctx } = stepContext(fakeSystem(root, { hostname: 'kernel-name' }), {
      imds: { enabled: false, url: 'http://127.0.0.1:1', timeoutSeconds: 1, retrySeconds: 0 },
    });
    await hostFacts.apply(ctx);
    expect(ctx.journal.facts.host?.hostname).toBe('kernel-name');
  });

  it('falls back to local interfaces and /etc/machine-id when IMDS is off, without asking it', async () => {
    const root = makeRoot();
    const { ctx } = stepContext(fakeSystem(root, { hostname: 'kernel-name' }), {
      imds: { enabled: false, url: 'http://127.0.0.1:1', timeoutSeconds: 1, retrySeconds: 0 },
    });
    await hostFacts.apply(ctx);
    expect(ctx.journal.facts.host).toMatchObject({
      hostname: 'kernel-name',
      addresses: ['10.0.0.4'],
      publicIp: null,
      instanceId: '0123456789abcdef0123456789abcdef',
      instanceIdSource: 'machine-id',
    });
  });

  it('falls back to local interfaces when IMDS does not answer', async () => {
    const root = makeRoot();
    const { ctx } = stepContext(fakeSystem(root), {
      imds: { enabled: true, url: 'http://127.0.0.1:1', timeoutSeconds: 1, retrySeconds: 0 },
    });
    await hostFacts.apply(ctx);
    expect(ctx.journal.facts.host?.addresses).toEqual(['10.0.0.4']);
    expect(ctx.journal.facts.host?.instanceIdSource).toBe('machine-id');
  });
});
