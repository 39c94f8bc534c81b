// First boot and per-boot in this process against the IMDS stub on 127.0.0.1, each boot with its own
// System (as each is its own process) on a fake clock that the stub stamps requests with; real openssl
// and nginx -t. What is asserted is what an operator sees: IMDS's request log, the done-stamp, the
// journal `status` reads, the log, and which files changed.
import { afterEach, describe, expect, it } from 'vitest';
import { perBoot } from '../../../src/commands/per-boot.js';
import { statusReport, formatStatus } from '../../../src/commands/status.js';
import { byteSwapped } from '../../../src/imds.js';
import { runFirstBoot } from '../../../src/runner.js';
import { FIRST_BOOT } from '../../../src/steps/index.js';
import { execReal } from '../../../src/system/exec.js';
import { httpGetReal } from '../../../src/system/http.js';
import { fakeSystem, stepContext } from '../../support/fake-system.js';
import { NICS_DOC, startImdsStub, type ImdsStub, type Route } from '../../support/imds-stub.js';
import { makeRoot, readFile, snapshotTree, writeFile } from '../../support/root.js';

const VM_ID = '5c08b38e-4d57-4c23-ac45-aca61037f084';
const MACHINE_ID = '0123456789abcdef0123456789abcdef'; // makeRoot's
const stamp = (root: string) =>
  JSON.parse(readFile(root, '/var/lib/immich-firstboot/done')) as { instanceId: string; instanceIdSource: string };
/** The instance document of a VM on 10.0.0.4, the address the fake System's eth0 has. */
const instance = (vmId = VM_ID, privateIp = '10.0.0.4'): Route => ({
  status: 200,
  body: NICS_DOC([{ ipv4: [{ privateIpAddress: privateIp }] }], vmId),
});

let stub: ImdsStub | undefined;
afterEach(async () => {
  await stub?.close();
  stub = undefined;
});

/** IMDS on 127.0.0.1; `routes` may be changed between boots. Requests are stamped with the running boot's clock. */
async function imds(routes: Record<string, Route | Route[]>) {
  let clock = () => 0;
  stub = await startImdsStub(routes, () => clock());
  const boot = (root: string) => {
    const sys = fakeSystem(root, { exec: execReal, httpGet: httpGetReal });
    clock = () => sys.clock.ms;
    const { ctx, logs } = stepContext(sys, {
      imds: { enabled: true, url: stub!.url, timeoutSeconds: 2, retrySeconds: 10 },
    });
    return { sys, env: ctx, logs };
  };
  return { stub, boot };
}

/** The most requests within any one second (half-open: [t, t + 1000 ms)). */
function busiestSecond(at: number[]): number {
  return Math.max(0, ...at.map((t) => at.filter((u) => u >= t && u < t + 1000).length));
}

describe('IMDS requests of a first boot and of a per-boot', () => {
  it('never exceed 5 a second, though a per-boot that follows new addresses looks three times', async () => {
    const routes = { '/metadata/instance': instance(VM_ID, '10.1.0.4') };
    const { stub, boot } = await imds(routes);
    const root = makeRoot('');
    expect(await runFirstBoot(boot(root).env, FIRST_BOOT, { skipStack: true, newCert: false })).toBe(0);
    const firstBoot = stub.requests.map((r) => r.at);
    expect(firstBoot).toHaveLength(2); // the instance document and the load balancer's
    expect(busiestSecond(firstBoot)).toBeLessThanOrEqual(5);

    routes['/metadata/instance'] = instance(VM_ID, '10.1.0.99');
    stub.requests.length = 0;
    const { env, logs } = boot(root);
    expect(await perBoot(env)).toBe(0);
    expect(logs.map((l) => l.msg)).toContain('per-boot check done: certificate renewed');
    // A look, a look again under the lock, and the host-facts step: two requests each.
    expect(stub.requests).toHaveLength(6);
    expect(busiestSecond(stub.requests.map((r) => r.at))).toBe(5);
  });
});

describe('the instance id per-boot compares', () => {
  it('is the same VM when Azure reports the vmId in upper case and byte-swapped: nothing written', async () => {
    const routes = { '/metadata/instance': instance() };
    const { boot } = await imds(routes);
    const root = makeRoot('');
    await runFirstBoot(boot(root).env, FIRST_BOOT, { skipStack: true, newCert: false });
    expect(stamp(root)).toMatchObject({ instanceId: VM_ID, instanceIdSource: 'azure-imds' });

    routes['/metadata/instance'] = instance(byteSwapped(VM_ID).toUpperCase());
    const before = snapshotTree(root);
    const { env, logs } = boot(root);
    expect(await perBoot(env)).toBe(0);
    expect(logs.at(-1)?.msg).toBe('per-boot check: same instance, same addresses; nothing to do');
    expect(snapshotTree(root)).toEqual(before);
  });

  it('is still a clone when the vmId is another VM’s', async () => {
    const routes = { '/metadata/instance': instance() };
    const { boot } = await imds(routes);
    const root = makeRoot('');
    await runFirstBoot(boot(root).env, FIRST_BOOT, { skipStack: true, newCert: false });
    const other = 'd3e0e374-fda6-4649-bbc9-7f20dc379f34';
    routes['/metadata/instance'] = instance(other);
    const { sys, env } = boot(root);
    expect(await perBoot(env)).toBe(0);
    expect((await statusReport(sys)).clone).toMatchObject({ fromInstanceId: VM_ID, toInstanceId: other });
    expect(stamp(root)).toMatchObject({ instanceId: other, instanceIdSource: 'azure-imds' });
  });
});

describe('a done-stamp made while IMDS was down (the machine-id)', () => {
  async function stampedWithoutImds() {
    const routes: Record<string, Route | Route[]> = { '/metadata/instance': 'reset' };
    const { boot } = await imds(routes);
    const root = makeRoot('');
    expect(await runFirstBoot(boot(root).env, FIRST_BOOT, { skipStack: true, newCert: false })).toBe(0);
    expect(stamp(root)).toMatchObject({ instanceId: MACHINE_ID, instanceIdSource: 'machine-id' });
    return { root, routes, boot };
  }

  it('takes the vmId the first time IMDS answers, says so, and calls it no clone', async () => {
    const { root, routes, boot } = await stampedWithoutImds();
    routes['/metadata/instance'] = instance();
    const before = snapshotTree(root);
    const { sys, env, logs } = boot(root);
    expect(await perBoot(env)).toBe(0);

    expect(stamp(root)).toMatchObject({ instanceId: VM_ID, instanceIdSource: 'azure-imds' });
    expect(logs.find((l) => String(l.msg).startsWith('the done-stamp now names this VM'))).toMatchObject({
      level: 30,
      msg: `the done-stamp now names this VM by its Azure vmId ${VM_ID}: first boot recorded the machine-id ${MACHINE_ID} because Azure IMDS did not answer then; the same VM, not a clone`,
    });
    const report = await statusReport(sys);
    expect(report).toMatchObject({
      clone: null,
      instanceId: VM_ID,
      instanceIdUpgrade: { from: MACHINE_ID, fromSource: 'machine-id', to: VM_ID },
    });
    expect(formatStatus(report)).toMatch(
      new RegExp(
        `^instance id: .*machine-id ${MACHINE_ID} \\(Azure IMDS was down at first boot\\) → Azure vmId ${VM_ID}$`,
        'm',
      ),
    );
    // Only the stamp and the journal: the certificate, the secret and the credentials stay.
    const after = snapshotTree(root);
    expect(Object.keys(after).filter((k) => after[k] !== before[k])).toEqual([
      'var/lib/immich-firstboot/done',
      'var/lib/immich-firstboot/state.json',
    ]);

    // From now on: nothing to do for the same vmId, and a clone for another, whatever the machine-id says.
    const again = boot(root);
    expect(await perBoot(again.env)).toBe(0);
    expect(again.logs.at(-1)?.msg).toBe('per-boot check: same instance, same addresses; nothing to do');
    routes['/metadata/instance'] = instance('d3e0e374-fda6-4649-bbc9-7f20dc379f34');
    const copy = boot(root);
    expect(await perBoot(copy.env)).toBe(0);
    expect((await statusReport(copy.sys)).clone).toMatchObject({ fromInstanceId: VM_ID });
  });

  it('is a clone, not an upgrade, when the machine-id changed too', async () => {
    const { root, routes, boot } = await stampedWithoutImds();
    routes['/metadata/instance'] = instance();
    writeFile(root, '/etc/machine-id', 'fedcba9876543210fedcba9876543210\n');
    const { sys, env } = boot(root);
    expect(await perBoot(env)).toBe(0);
    expect(await statusReport(sys)).toMatchObject({
      clone: { fromInstanceId: MACHINE_ID, toInstanceId: VM_ID },
      instanceIdUpgrade: null,
    });
    expect(stamp(root)).toMatchObject({ instanceId: VM_ID, instanceIdSource: 'azure-imds' });
  });

  it('stays as it is while IMDS keeps not answering', async () => {
    const { root, boot } = await stampedWithoutImds();
    const before = snapshotTree(root);
    const { env, logs } = boot(root);
    expect(await perBoot(env)).toBe(0);
    expect(logs.at(-1)?.msg).toBe('per-boot check: same instance, same addresses; nothing to do');
    expect(snapshotTree(root)).toEqual(before);
  });
});
