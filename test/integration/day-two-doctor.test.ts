// doctor against a booted --root: each claim broken on purpose is caught; host-only checks say skipped.
import { chmodSync, existsSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BUNDLE, runCli } from '../support/cli.js';
import { makeRoot, readFile, writeFile } from '../support/root.js';

beforeAll(() => {
  if (!existsSync(BUNDLE)) throw new Error('run `npm run build` first (npm test does)');
});

interface Check { id: string; result: string; detail: string; fix?: string }

async function booted(): Promise<string> {
  const root = makeRoot();
  const run = await runCli(['--root', root, 'run', '--skip-stack']);
  expect(run.code, run.stderr).toBe(0);
  return root;
}

async function doctor(root: string): Promise<{ code: number; checks: Record<string, Check> }> {
  const result = await runCli(['--root', root, 'doctor', '--json']);
  const checks = Object.fromEntries((JSON.parse(result.stdout) as Check[]).map((c) => [c.id, c]));
  return { code: result.code, checks };
}

describe('immich-firstboot doctor', () => {
  it('passes a fresh first boot, and says every host-only check is skipped and why', async () => {
    const { code, checks } = await doctor(await booted());
    expect(code).toBe(0);
    for (const id of ['config', 'env-mode', 'credentials-mode', 'key-mode', 'log-rotation', 'cert-expiry', 'cert-names', 'nginx-config']) expect(checks[id]?.result, id).toBe('pass');
    for (const id of ['loopback-2283', 'nginx-only-80-443', 'containers-healthy', 'ping-through-nginx', 'sign-up-state', 'unit-state', 'perboot-unit-state']) {
      expect(checks[id]).toMatchObject({ result: 'skipped', detail: expect.stringContaining('add --live') });
    }
  });

  it.each([
    ['env-mode', '/opt/immich/.env'],
    ['credentials-mode', '/root/immich-credentials.txt'],
    ['key-mode', '/etc/immich-firstboot/tls/current/key.pem'],
  ])('fails %s when %s is world-readable, with the fix, and exits 1', async (id, inside) => {
    const root = await booted();
    chmodSync(path.join(root, inside), 0o644);
    const { code, checks } = await doctor(root);
    expect(code).toBe(1);
    expect(checks[id]).toMatchObject({ result: 'fail', fix: expect.stringContaining(`chmod 0`) });
  });

  it('fails log-rotation when daemon.json has no max-size/max-file', async () => {
    const root = await booted();
    writeFile(root, '/etc/docker/daemon.json', '{}\n');
    const { code, checks } = await doctor(root);
    expect(code).toBe(1);
    expect(checks['log-rotation']?.result).toBe('fail');
  });

  it('fails cert-names when the recorded addresses are not all in the certificate', async () => {
    const root = await booted();
    const journal = JSON.parse(readFile(root, '/var/lib/immich-firstboot/state.json'));
    journal.facts.host.addresses.push('198.51.100.9');
    writeFile(root, '/var/lib/immich-firstboot/state.json', JSON.stringify(journal), 0o600);
    const { code, checks } = await doctor(root);
    expect(code).toBe(1);
    expect(checks['cert-names']).toMatchObject({ result: 'fail', fix: 'immich-firstboot regenerate-cert' });
  });
});
