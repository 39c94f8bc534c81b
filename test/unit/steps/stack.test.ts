import { describe, expect, it } from 'vitest';
import { stackReady, stackStart } from '../../../src/steps/stack.js';
import type { HttpGet } from '../../../src/system/index.js';
import { dockerWorld, fail } from '../../support/docker-world.js';
import { fakeSystem, stepContext } from '../../support/fake-system.js';
import { makeRoot, writeFile } from '../../support/root.js';

const pong: HttpGet = async ({ url }) =>
  url.endsWith('/ping') ? { status: 200, body: '{"res":"pong"}' } : { status: 200, body: '{"isInitialized":false}' };

describe('the stack-start step', () => {
  it('starts the stack with the compose plugin, project immich and the installed file, and checks it is on loopback', async () => {
    const root = makeRoot();
    const exec = dockerWorld();
    const { ctx } = stepContext(fakeSystem(root, { exec }));
    const result = await stackStart.apply(ctx);
    // `up -d` at once: no `docker compose version` asked first, on the first boot's way to the stack.
    expect(exec.calls[0]).toEqual([
      'docker',
      'compose',
      '-p',
      'immich',
      '-f',
      `${root}/opt/immich/docker-compose.yml`,
      'up',
      '-d',
    ]);
    expect(exec.calls.filter((c) => c.includes('version'))).toEqual([]);
    expect(result.summary).toBe(
      `\`docker compose -p immich up -d\` done for /opt/immich/docker-compose.yml; ports 2283 on loopback only (127.0.0.1:2283)`,
    );
  });

  /** The docker world, but docker answering `compose ...` with `missing` (its stderr, its exit code). */
  const withoutPlugin = (missing: { stderr: string; exitCode: number }) => {
    const world = dockerWorld();
    return Object.assign(
      async (file: string, args: readonly string[]) => {
        if (file !== 'docker' || args[0] !== 'compose') return world(file, args);
        world.calls.push([file, ...args]);
        return { ...fail(missing.stderr), exitCode: missing.exitCode };
      },
      { calls: world.calls },
    );
  };

  // What docker's CLI says to `docker compose -p immich -f FILE up -d` when it has no compose plugin: the CLI
  // parses -p itself (docker 20.10 to 28), or names the command (other versions).
  it.each([
    ["unknown shorthand flag: 'p' in -p\nSee 'docker --help'.", 125],
    ["docker: 'compose' is not a docker command.\nSee 'docker --help'", 1],
    ["docker: unknown command: docker compose\n\nRun 'docker --help' for more information", 1],
  ])('falls back to docker-compose when docker says %j (no plugin), asking no version', async (stderr, exitCode) => {
    const exec = withoutPlugin({ stderr, exitCode });
    const { ctx } = stepContext(fakeSystem(makeRoot(), { exec }));
    expect((await stackStart.apply(ctx)).summary).toMatch(/^`docker-compose -p immich up -d` done/);
    // Not asked its version first: Debian 12's docker-compose is Python, ~0.7 s to answer on a first boot's way to `up -d`.
    expect(exec.calls.filter((c) => c.includes('up')).map((c) => c.slice(0, 2))).toEqual([
      ['docker', 'compose'],
      ['docker-compose', '-p'],
    ]);
    expect(exec.calls.filter((c) => c.includes('version'))).toEqual([]);
  });

  it('asks `docker compose version` when `up -d` fails in words it does not know, and falls back if that fails too', async () => {
    const exec = withoutPlugin({ stderr: 'docker: a wording of tomorrow', exitCode: 1 });
    const { ctx } = stepContext(fakeSystem(makeRoot(), { exec }));
    expect((await stackStart.apply(ctx)).summary).toMatch(/^`docker-compose -p immich up -d` done/);
    expect(exec.calls.filter((c) => c.includes('version'))).toEqual([['docker', 'compose', 'version']]);
  });

  it('keeps to the plugin when `up -d` fails and the plugin is there: retries, never docker-compose', async () => {
    const exec = dockerWorld({ upFails: 'Error response from daemon: no space left on device' });
    const { ctx } = stepContext(fakeSystem(makeRoot(), { exec }));
    await expect(stackStart.apply(ctx)).rejects.toMatchObject({ code: 'compose-up-failed' });
    expect(exec.calls.filter((c) => c.includes('up')).every((c) => c[0] === 'docker' && c[1] === 'compose')).toBe(true);
  });

  it('says how to install compose when there is none', async () => {
    const { ctx } = stepContext(fakeSystem(makeRoot(), { exec: async () => fail('', true) }));
    await expect(stackStart.apply(ctx)).rejects.toMatchObject({
      code: 'compose-missing',
      message: 'no working docker compose: tried `docker compose` (not installed), `docker-compose` (not installed)',
      hint: expect.stringContaining('Debian 13: apt install docker-cli docker-compose'),
    });
  });

  it('retries a failing `up -d` three times, then fails with its last output', async () => {
    const exec = dockerWorld({ upFails: 'Error response from daemon: no space left on device' });
    const { ctx } = stepContext(fakeSystem(makeRoot(), { exec }));
    await expect(stackStart.apply(ctx)).rejects.toMatchObject({
      code: 'compose-up-failed',
      message: expect.stringContaining('failed 3 times: Error response from daemon: no space left on device'),
    });
    expect(exec.calls.filter((c) => c.includes('up'))).toHaveLength(3);
  });

  it('fails loudly and stops the server when Docker publishes 2283 on every address', async () => {
    const exec = dockerWorld({
      publishIp: '0.0.0.0',
      ss: ['LISTEN 0 4096 0.0.0.0:2283 0.0.0.0:*', 'LISTEN 0 4096 [::]:2283 [::]:*'],
    });
    const { ctx } = stepContext(fakeSystem(makeRoot(), { exec }));
    await expect(stackStart.apply(ctx)).rejects.toMatchObject({
      code: 'port-exposed',
      message: expect.stringContaining(
        'Docker publishes immich-server on 0.0.0.0:2283; a socket listens on 0.0.0.0:2283',
      ),
      hint: expect.stringContaining("- '127.0.0.1:2283:2283'"),
    });
    expect(exec.calls.at(-1)?.slice(-2)).toEqual(['stop', 'immich-server']);
  });

  it('treats an empty HostIp (every address) as exposed', async () => {
    const exec = dockerWorld({ publishIp: '' });
    const { ctx } = stepContext(fakeSystem(makeRoot(), { exec }));
    await expect(stackStart.apply(ctx)).rejects.toMatchObject({
      code: 'port-exposed',
      message: expect.stringContaining('on every address:2283'),
    });
  });

  it('fails when a socket on 2283 listens beyond loopback even though Docker publishes on loopback, and stops nothing', async () => {
    const exec = dockerWorld({
      ss: ['LISTEN 0 4096 127.0.0.1:2283 0.0.0.0:*', 'LISTEN 0 511 *:2283 *:* users:(("node",pid=7,fd=3))'],
    });
    const { ctx } = stepContext(fakeSystem(makeRoot(), { exec }));
    await expect(stackStart.apply(ctx)).rejects.toMatchObject({
      code: 'port-exposed',
      message: expect.stringContaining('a socket listens on *:2283'),
    });
    expect(exec.calls.some((c) => c.includes('stop'))).toBe(false);
  });

  it('accepts loopback listeners of both families and ignores other ports', async () => {
    const exec = dockerWorld({
      ss: [
        'LISTEN 0 4096 127.0.0.1:2283 0.0.0.0:*',
        'LISTEN 0 4096 [::1]:2283 [::]:*',
        'LISTEN 0 511 0.0.0.0:443 0.0.0.0:*',
        'LISTEN 0 4096 127.0.0.53%lo:53 0.0.0.0:*',
      ],
    });
    const { ctx } = stepContext(fakeSystem(makeRoot(), { exec }));
    expect((await stackStart.apply(ctx)).summary).toContain('ports 2283 on loopback only (127.0.0.1:2283, ::1:2283)');
  });

  it('says when ss is missing rather than skipping the check', async () => {
    const world = dockerWorld();
    const exec = Object.assign(
      async (file: string, args: readonly string[]) => (file === 'ss' ? fail('', true) : world(file, args)),
      { calls: world.calls },
    );
    const { ctx } = stepContext(fakeSystem(makeRoot(), { exec }));
    await expect(stackStart.apply(ctx)).rejects.toMatchObject({
      code: 'ss-failed',
      hint: expect.stringContaining('apt install iproute2'),
    });
  });

  it('warns when the containers were created without log rotation', async () => {
    const exec = dockerWorld({ maxSize: undefined });
    const { ctx } = stepContext(fakeSystem(makeRoot(), { exec }));
    await stackStart.apply(ctx);
    expect(ctx.journal.warnings[0]).toMatchObject({
      message: expect.stringContaining('were created without log rotation'),
      hint: expect.stringContaining('up -d --force-recreate'),
    });
  });

  it('restarts Docker before `up` when an earlier --skip-stack run left daemon.json unapplied', async () => {
    const root = makeRoot();
    writeFile(root, '/var/lib/immich-firstboot/docker-restart-pending', 'x\n');
    const exec = dockerWorld();
    const { ctx } = stepContext(fakeSystem(root, { exec }), {
      dockerLogs: { maxSize: '50m', maxFile: '5', restartCommand: ['restart-docker'] },
    });
    await stackStart.apply(ctx);
    const order = exec.calls
      .map((c) => (c[0] === 'restart-docker' ? 'restart' : c.includes('up') ? 'up' : ''))
      .filter(Boolean);
    expect(order).toEqual(['restart', 'up']);
    expect(await ctx.sys.fs.exists('/var/lib/immich-firstboot/docker-restart-pending')).toBe(false);
  });
});

describe('the stack-ready step', () => {
  it('waits for pong, checks loopback again, then records whether the first admin exists', async () => {
    let pings = 0;
    const httpGet: HttpGet = async (request) => {
      if (request.url.endsWith('/ping') && ++pings < 4) throw Object.assign(new Error('x'), { code: 'ECONNRESET' });
      return pong(request);
    };
    const exec = dockerWorld();
    const { ctx } = stepContext(fakeSystem(makeRoot(), { httpGet, exec }));
    const result = await stackReady.apply(ctx);
    expect(pings).toBe(4);
    expect(result.summary).toContain('(after 0.3s)'); // polled every 100 ms
    expect(ctx.journal.facts.adminRegistered).toBe(false);
    expect(result.summary).toContain('ports 2283 on loopback only');
    expect(result.summary).toContain('first admin not registered yet');
  });

  it("once Immich answers, asks Docker, ss and Immich's config at the same time", async () => {
    const events: string[] = [];
    const slowly = async <T>(what: string, answer: () => Promise<T>): Promise<T> => {
      events.push(`start ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
      events.push(`end ${what}`);
      return answer();
    };
    const world = dockerWorld();
    const exec = Object.assign(
      async (file: string, args: readonly string[]) =>
        slowly(file === 'ss' ? 'ss' : `${file} ${args[0]}`, () => world(file, args)),
      { calls: world.calls },
    );
    const httpGet: HttpGet = async (request) =>
      request.url.endsWith('/ping') ? pong(request) : slowly('config', () => pong(request));
    const { ctx } = stepContext(fakeSystem(makeRoot(), { httpGet, exec }));
    await stackReady.apply(ctx);
    expect(events.slice(0, 3).sort()).toEqual(['start config', 'start docker ps', 'start ss']);
    expect(events.indexOf('start docker inspect')).toBeGreaterThan(events.indexOf('end docker ps'));
    expect(ctx.journal.facts.adminRegistered).toBe(false);
  });

  it("reports Docker's error, not ss's, when both fail", async () => {
    const exec = async (file: string) => (file === 'ss' ? fail('', true) : fail('Cannot connect to the Docker daemon'));
    const { ctx } = stepContext(fakeSystem(makeRoot(), { httpGet: pong, exec }));
    await expect(stackReady.apply(ctx)).rejects.toMatchObject({
      code: 'docker-failed',
      message: expect.stringContaining('Cannot connect to the Docker daemon'),
    });
  });

  it('fails when the server turns out to listen beyond loopback once it answers', async () => {
    const exec = dockerWorld({ ss: ['LISTEN 0 511 0.0.0.0:2283 0.0.0.0:*'] });
    const { ctx } = stepContext(fakeSystem(makeRoot(), { httpGet: pong, exec }));
    await expect(stackReady.apply(ctx)).rejects.toMatchObject({ code: 'port-exposed' });
    expect(ctx.journal.facts.adminRegistered).toBeUndefined();
  });

  it('times out naming the unhealthy service, with its logs, secrets scrubbed', async () => {
    const exec = dockerWorld({
      serverHealth: 'unhealthy',
      logs: 'immich_server | password authentication failed for PassPassPass1234\n',
    });
    const { ctx, logs } = stepContext(
      fakeSystem(makeRoot(), { exec, httpGet: async () => ({ status: 502, body: '' }) }),
      { stack: { readyTimeoutSeconds: 10, serverUrl: 'http://127.0.0.1:2283' } },
    );
    ctx.secrets.add('PassPassPass1234');
    await expect(stackReady.apply(ctx)).rejects.toMatchObject({
      code: 'stack-not-ready',
      message:
        'Immich did not answer http://127.0.0.1:2283/api/server/ping within 10s (not healthy: immich-server unhealthy)',
      hint: expect.stringContaining('logs immich-server'),
    });
    expect(exec.calls.find((c) => c.includes('logs'))?.slice(-1)).toEqual(['immich-server']);
    const logged = JSON.stringify(logs);
    expect(logged).toContain('password authentication failed for [REDACTED]');
    expect(logged).not.toContain('PassPassPass1234');
  });
});

describe('the stack-ready step watching Docker while it waits', () => {
  const refused: HttpGet = async () => {
    throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
  };
  /** A step context whose STATUS= lines are kept; Immich answers once `answersAfterMs` have passed. */
  function waiting(exec: ReturnType<typeof dockerWorld>, answersAfterMs = Infinity) {
    const sys = fakeSystem(makeRoot(), {
      exec,
      httpGet: async (request) => (sys.clock.ms - start >= answersAfterMs ? pong(request) : refused(request)),
    });
    const start = sys.clock.ms;
    const captured = stepContext(sys);
    const statuses: string[] = [];
    captured.ctx.notify = {
      status: async (text) => void statuses.push(text),
      extendTimeout: async () => undefined,
      flush: async () => undefined,
    };
    return { ...captured, statuses, waitedMs: () => sys.clock.ms - start };
  }

  it('fails at once with stack-not-running when the project has no container (after `docker compose down`)', async () => {
    const { ctx, waitedMs } = waiting(dockerWorld({ services: [] }));
    await expect(stackReady.apply(ctx)).rejects.toMatchObject({
      code: 'stack-not-running',
      message: "Immich's containers are not running: no container of compose project immich exists",
      hint: expect.stringContaining('which runs `docker compose -p immich up -d` (in /opt/immich) before it waits'),
    });
    expect(waitedMs()).toBeLessThan(5000); // the first look, not readyTimeoutSeconds (1200 s)
  });

  it('fails with stack-not-running, naming each container, when none of them runs (`docker compose stop`)', async () => {
    const states = {
      'immich-server': 'exited',
      'immich-machine-learning': 'exited',
      redis: 'exited',
      database: 'exited',
    };
    const { ctx } = waiting(dockerWorld({ states }));
    await expect(stackReady.apply(ctx)).rejects.toMatchObject({
      code: 'stack-not-running',
      message: expect.stringContaining(
        'no container of compose project immich runs (immich-server exited, immich-machine-learning exited, redis exited, database exited)',
      ),
    });
  });

  it('fails with server-crashing and its log lines, the secret scrubbed, when the server exited and the others run', async () => {
    const exec = dockerWorld({
      states: { 'immich-server': 'exited' },
      serverExit: { code: 1 },
      logs: 'immich_server | could not connect to postgres://postgres:PassPassPass1234@database:5432/immich\n',
    });
    const { ctx, logs, waitedMs } = waiting(exec);
    ctx.secrets.add('PassPassPass1234');
    const failure = stackReady.apply(ctx);
    await expect(failure).rejects.toMatchObject({
      code: 'server-crashing',
      message: "Immich's server does not stay up: immich-server exited (exit code 1) and Docker does not restart it",
      hint: expect.stringContaining('logs immich-server'),
      detail: { logs: 'immich_server | could not connect to postgres://postgres:[REDACTED]@database:5432/immich' },
    });
    expect(waitedMs()).toBeLessThan(5000);
    expect(exec.calls.find((c) => c.includes('logs'))?.slice(-1)).toEqual(['immich-server']);
    const logged = JSON.stringify(logs);
    expect(logged).toContain('postgres://postgres:[REDACTED]@database');
    expect(logged).not.toContain('PassPassPass1234');
  });

  it('fails with server-crashing once the server was restarted 3 times during the wait, long before the deadline', async () => {
    // Docker's restart policy at work: one more restart at each look (every 5 s).
    const exec = dockerWorld({ serverRestarts: (inspection) => 4 + inspection, serverExit: { code: 1 } });
    const { ctx, statuses, waitedMs } = waiting(exec);
    await expect(stackReady.apply(ctx)).rejects.toMatchObject({
      code: 'server-crashing',
      message:
        "Immich's server does not stay up: immich-server crashed and was restarted 3 times in 15s (now running, last exit code 1)",
    });
    expect(waitedMs()).toBe(15_000);
    expect(statuses).toContain(
      'Waiting for Immich (database healthy, machine-learning healthy, redis healthy, server healthy (restarted 2 times); 10s of at most 1200s)',
    );
  });

  it('keeps waiting while the server is starting, whatever it restarted before this wait, and asks Docker every 5 s, not at every poll', async () => {
    const exec = dockerWorld({ serverHealth: 'starting', serverRestarts: 7 });
    const { ctx, statuses } = waiting(exec, 30_000);
    const result = await stackReady.apply(ctx);
    expect(result.summary).toContain('(after 30.0s)');
    expect(statuses).toEqual(
      [0, 5, 10, 15, 20, 25].map(
        (s) =>
          `Waiting for Immich (database healthy, machine-learning healthy, redis healthy, server starting; ${s}s of at most 1200s)`,
      ),
    );
    // Six looks while waiting (and one once Immich answered, for the loopback check), for 301 polls.
    expect(exec.calls.filter((c) => c[0] === 'docker' && c[1] === 'ps')).toHaveLength(7);
  });

  it('waits on while Docker misses a look or two, and fails with its error when it misses three in a row', async () => {
    const world = dockerWorld({ serverHealth: 'starting' });
    let looks = 0;
    const flaky = Object.assign(
      async (file: string, args: readonly string[]) =>
        file === 'docker' && args[0] === 'ps' && ++looks <= 2
          ? fail('Cannot connect to the Docker daemon at unix:///var/run/docker.sock')
          : world(file, args),
      { calls: world.calls },
    );
    const { ctx, statuses } = waiting(flaky, 20_000);
    await stackReady.apply(ctx);
    expect(statuses.slice(0, 3)).toEqual([
      'Waiting for Immich (Docker does not answer; 0s of at most 1200s)',
      'Waiting for Immich (Docker does not answer; 5s of at most 1200s)',
      'Waiting for Immich (database healthy, machine-learning healthy, redis healthy, server starting; 10s of at most 1200s)',
    ]);

    const down = async (file: string) =>
      file === 'ss' ? world(file, []) : fail('Cannot connect to the Docker daemon');
    const gone = waiting(Object.assign(down, { calls: [] as string[][] }));
    await expect(stackReady.apply(gone.ctx)).rejects.toMatchObject({
      code: 'docker-failed',
      message: expect.stringContaining('Cannot connect to the Docker daemon'),
    });
    expect(gone.waitedMs()).toBe(10_000);
  });
});
