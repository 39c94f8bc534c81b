import { describe, expect, it } from 'vitest';
import { stackReady, stackStart } from '../../../src/steps/stack.js';
import type { Exec, ExecResult, HttpGet } from '../../../src/system/index.js';
import { fakeSystem, stepContext } from '../../support/fake-system.js';
import { makeRoot } from '../../support/root.js';

const ok = (stdout = ''): ExecResult => ({ command: '', exitCode: 0, stdout, stderr: '', notFound: false, timedOut: false });
const fail = (stderr: string, notFound = false): ExecResult => ({ command: '', exitCode: notFound ? undefined : 1, stdout: '', stderr, notFound, timedOut: false });

function recorder(answer: (argv: string[]) => ExecResult): Exec & { calls: string[][] } {
  const calls: string[][] = [];
  const exec = (async (file: string, args: readonly string[]) => {
    calls.push([file, ...args]);
    return answer([file, ...args]);
  }) as Exec & { calls: string[][] };
  exec.calls = calls;
  return exec;
}

describe('the stack steps', () => {
  it('starts the stack with the compose plugin, project immich and the installed file', async () => {
    const root = makeRoot();
    const exec = recorder(() => ok());
    const { ctx } = stepContext(fakeSystem(root, { exec }));
    await stackStart.apply(ctx);
    expect(exec.calls).toEqual([
      ['docker', 'compose', 'version'],
      ['docker', 'compose', '-p', 'immich', '-f', `${root}/opt/immich/docker-compose.yml`, 'up', '-d'],
    ]);
  });

  it('falls back to docker-compose when the plugin is missing', async () => {
    const exec = recorder(([file, sub]) => (file === 'docker' && sub === 'compose' ? fail("docker: 'compose' is not a docker command.") : ok()));
    const { ctx } = stepContext(fakeSystem(makeRoot(), { exec }));
    await stackStart.apply(ctx);
    expect(exec.calls.at(-1)?.slice(0, 3)).toEqual(['docker-compose', '-p', 'immich']);
  });

  it('says how to install compose when there is none', async () => {
    const exec = recorder(() => fail('', true));
    const { ctx } = stepContext(fakeSystem(makeRoot(), { exec }));
    await expect(stackStart.apply(ctx)).rejects.toMatchObject({
      code: 'compose-missing',
      message: 'no working docker compose: tried `docker compose` (not installed), `docker-compose` (not installed)',
      hint: expect.stringContaining('apt install docker.io docker-compose-v2'),
    });
  });

  it('retries a failing `up -d` three times, then fails with its last output', async () => {
    const exec = recorder(([, , ...rest]) => (rest.includes('up') ? fail('Error response from daemon: no space left on device') : ok()));
    const { ctx } = stepContext(fakeSystem(makeRoot(), { exec }));
    await expect(stackStart.apply(ctx)).rejects.toMatchObject({ code: 'compose-up-failed', message: expect.stringContaining('failed 3 times: Error response from daemon: no space left on device') });
    expect(exec.calls.filter((c) => c.includes('up'))).toHaveLength(3);
  });

  it('waits for pong, then records whether the first admin exists', async () => {
    let pings = 0;
    const httpGet: HttpGet = async ({ url }) => {
      if (url.endsWith('/ping')) return ++pings < 4 ? Promise.reject(Object.assign(new Error('x'), { code: 'ECONNRESET' })) : { status: 200, body: '{"res":"pong"}' };
      return { status: 200, body: '{"isInitialized":false}' };
    };
    const { ctx } = stepContext(fakeSystem(makeRoot(), { httpGet }));
    const result = await stackReady.apply(ctx);
    expect(pings).toBe(4);
    expect(ctx.journal.facts.adminRegistered).toBe(false);
    expect(result.summary).toContain('first admin not registered yet');
  });

  it('times out with the containers\' logs, secrets scrubbed', async () => {
    const exec = recorder(([, , ...rest]) => (rest.includes('logs') ? ok('immich_server | password authentication failed for PassPassPass1234\n') : ok()));
    const { ctx, logs } = stepContext(fakeSystem(makeRoot(), { exec, httpGet: async () => ({ status: 502, body: '' }) }), { stack: { readyTimeoutSeconds: 10, serverUrl: 'http://127.0.0.1:2283' } });
    ctx.secrets.add('PassPassPass1234');
    await expect(stackReady.apply(ctx)).rejects.toMatchObject({ code: 'stack-not-ready', message: 'Immich did not answer http://127.0.0.1:2283/api/server/ping within 10s' });
    const logged = JSON.stringify(logs);
    expect(logged).toContain('password authentication failed for [REDACTED]');
    expect(logged).not.toContain('PassPassPass1234');
  });
});
