// The login banner from the built bundle: local files only, so it answers at once.
import { existsSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { BUNDLE, runCli } from '../support/cli.js';
import { makeRoot } from '../support/root.js';

beforeAll(() => {
  if (!existsSync(BUNDLE)) throw new Error('run `npm run build` first (npm test does)');
});

describe('immich-firstboot motd', () => {
  it('says first boot has not started on a fresh root, and exits 0', async () => {
    const root = makeRoot();
    const result = await runCli(['--root', root, 'motd']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('First boot: not started yet');
  });

  it('shows the URL and the first-boot state after a --skip-stack first boot', async () => {
    const root = makeRoot('imds:\n  enabled: false\nextraNames: [192.0.2.7]\n');
    const run = await runCli(['--root', root, 'run', '--skip-stack']);
    expect(run.code, run.stderr).toBe(0);
    const result = await runCli(['--root', root, 'motd']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^Immich: https:\/\//);
    expect(result.stdout).toContain('First boot: done');
  });
});
