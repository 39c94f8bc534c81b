// The runtime is Ubuntu 24.04's nodejs 18.19; Debian 12's nodejs 18.20 stands in for it here
// (test/env/node18.sh unpacks it beside the machine's Node 20).
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { REPO, runCli } from '../support/cli.js';
import { makeRoot, modeOf } from '../support/root.js';

let node18 = '';
beforeAll(() => {
  node18 = execFileSync('bash', [path.join(REPO, 'test/env/node18.sh')], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .at(-1)!;
}, 300_000);

describe('the bundle under Node 18', () => {
  it('is really Node 18', () => {
    expect(execFileSync(node18, ['--version'], { encoding: 'utf8' })).toMatch(/^v18\./);
  });

  it('runs a whole first boot (--skip-stack), a rerun and status', async () => {
    const root = makeRoot();
    const run = await runCli(['--root', root, '--skip-stack'], {}, node18);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(modeOf(root, '/opt/immich/.env')).toBe('0640');
    expect((await runCli(['--root', root, '--skip-stack'], {}, node18)).lines.at(-1)?.msg).toMatch(/nothing to do$/);
    const status = await runCli(['--root', root, 'status', '--json'], {}, node18);
    expect(JSON.parse(status.stdout).status).toBe('done');
  });
});
