// The Postgres secret of a clone against a scripted Docker: every order in which the image's database
// container and per-boot can meet, including the one a real engine cannot be made to show on demand (the
// container initialising between per-boot's first look and the pause). The real engine and a real boot
// cover the rest: test/integration/stack-engine.test.ts and test/e2e/suite.ts.
import { describe, expect, it } from 'vitest';
import { settleCloneSecret } from '../../../src/commands/per-boot-secret.js';
import { newJournal } from '../../../src/state.js';
import type { Exec } from '../../../src/system/index.js';
import { fail, ok } from '../../support/docker-world.js';
import { fakeSystem, stepContext } from '../../support/fake-system.js';
import { makeRoot, readFile, writeFile } from '../../support/root.js';

const OLD = 'OldSecretOldSecretOldSecret12345';
const ENV = `UPLOAD_LOCATION=/opt/immich/library\nDB_PASSWORD=${OLD}\n# the operator's own\nMY_SETTING=1\n`;
const password = (root: string) => /^DB_PASSWORD=(.*)$/m.exec(readFile(root, '/opt/immich/.env'))![1];

interface Container {
  id: string;
  service: string;
  state: string;
}

/**
 * Docker with the image's containers; `on` runs a hook before answering a docker subcommand (a racing
 * container writing its data directory); each call is recorded with DB_PASSWORD as .env held it then.
 */
function docker(root: string, containers: Container[], on: Record<string, () => void> = {}, fails: string[] = []) {
  const calls: string[] = [];
  const exec = (async (file: string, args: readonly string[]) => {
    const sub = args[0];
    on[sub]?.();
    calls.push(`${[file, ...args].join(' ')} [.env: ${password(root) === OLD ? 'old' : 'new'}]`);
    if (fails.includes(sub)) return fail(`Error response from daemon: ${sub} failed`);
    if (file === 'docker' && args[0] === 'compose') return ok(args[1] === 'version' ? 'v2.99.0\n' : '');
    if (args[0] === 'ps') return ok(containers.map((c) => `${c.id}\n`).join(''));
    if (args[0] === 'inspect')
      return ok(
        JSON.stringify(
          containers.map((c) => ({
            Id: c.id,
            Name: `/immich_${c.service}`,
            Config: { Labels: { 'com.docker.compose.service': c.service } },
            State: { Status: c.state },
          })),
        ),
      );
    if (['pause', 'unpause', 'rm'].includes(args[0])) return ok();
    throw new Error(`unexpected exec: ${file} ${args.join(' ')}`);
  }) as Exec;
  return { exec, calls };
}

function clone(stackStarted = true) {
  const root = makeRoot();
  writeFile(root, '/opt/immich/.env', ENV, 0o640);
  const journal = newJournal('run', new Date());
  if (stackStarted) journal.facts.stack = 'started';
  return { root, journal };
}

const DB_RUNNING = { id: 'db1', service: 'database', state: 'running' };
const SERVER = { id: 'srv1', service: 'immich-server', state: 'running' };
const COMPOSE = (root: string) => `docker compose -p immich -f ${root}/opt/immich/docker-compose.yml`;

describe("a clone's Postgres secret", () => {
  it('is kept when Postgres holds data, without asking Docker', async () => {
    const { root, journal } = clone();
    writeFile(root, '/opt/immich/postgres/PG_VERSION', '14\n');
    const { exec, calls } = docker(root, [DB_RUNNING]);
    const { ctx } = stepContext(fakeSystem(root, { exec }));
    expect(await settleCloneSecret(ctx, journal)).toBe('kept (Postgres holds data)');
    expect(calls).toEqual([]);
    expect(readFile(root, '/opt/immich/.env')).toBe(ENV);
  });

  it('is new, without asking Docker, when the first boot started no stack (--skip-stack)', async () => {
    const { root, journal } = clone(false);
    const { exec, calls } = docker(root, []);
    const { ctx } = stepContext(fakeSystem(root, { exec }));
    expect(await settleCloneSecret(ctx, journal)).toBe('new');
    expect(calls).toEqual([]);
    expect(password(root)).toMatch(/^[A-Za-z0-9]{32}$/);
    expect(readFile(root, '/opt/immich/.env')).toBe(ENV.replace(OLD, password(root)));
  });

  it('is new when the paused database container wrote nothing: removed before .env changes, then every container made anew', async () => {
    const { root, journal } = clone();
    const { exec, calls } = docker(root, [SERVER, DB_RUNNING]);
    const { ctx, logs } = stepContext(fakeSystem(root, { exec }));
    expect(await settleCloneSecret(ctx, journal)).toBe('new');
    expect(calls).toEqual([
      'docker ps -a -q --no-trunc --filter label=com.docker.compose.project=immich [.env: old]',
      'docker inspect srv1 db1 [.env: old]',
      'docker pause db1 [.env: old]',
      'docker rm -f db1 [.env: old]',
      `${COMPOSE(root)} up -d --force-recreate [.env: new]`,
    ]);
    expect(readFile(root, '/opt/immich/.env')).toBe(ENV.replace(OLD, password(root)));
    expect(logs.map((l) => l.msg)).toContain(
      "/opt/immich/postgres is empty, but the image's database container exists with the old secret: pausing it before deciding",
    );
  });

  it('is new when the database container is not running (stopped, or Docker not started yet): nothing to pause', async () => {
    const { root, journal } = clone();
    const { exec, calls } = docker(root, [{ ...DB_RUNNING, state: 'exited' }]);
    const { ctx } = stepContext(fakeSystem(root, { exec }));
    expect(await settleCloneSecret(ctx, journal)).toBe('new');
    expect(calls.filter((c) => /docker (pause|unpause|rm)/.test(c))).toEqual(['docker rm -f db1 [.env: old]']);
    expect(calls.at(-1)).toBe(`${COMPOSE(root)} up -d --force-recreate [.env: new]`);
  });

  it('is kept when the container began initialising between the first look and the pause: thawed, not stopped, nothing recreated', async () => {
    const { root, journal } = clone();
    const initialise = () => writeFile(root, '/opt/immich/postgres/PG_VERSION', '14\n');
    const { exec, calls } = docker(root, [DB_RUNNING], { inspect: initialise });
    const { ctx, logs } = stepContext(fakeSystem(root, { exec }));
    expect(await settleCloneSecret(ctx, journal)).toBe('kept (Postgres initialised at this boot)');
    expect(calls.slice(2)).toEqual(['docker pause db1 [.env: old]', 'docker unpause db1 [.env: old]']);
    expect(readFile(root, '/opt/immich/.env')).toBe(ENV);
    expect(logs.find((l) => l.level === 40)?.msg).toContain('capture images with `immich-firstboot prepare-image`');
  });

  it.each(['ps', 'pause', 'rm'])(
    'keeps .env as it is, and fails with the hint, when `docker %s` fails',
    async (sub) => {
      const { root, journal } = clone();
      const { exec } = docker(root, [DB_RUNNING], {}, [sub]);
      const { ctx } = stepContext(fakeSystem(root, { exec }));
      await expect(settleCloneSecret(ctx, journal)).rejects.toMatchObject({
        code: 'docker-failed',
        hint: expect.stringContaining('systemctl status docker.service'),
      });
      expect(readFile(root, '/opt/immich/.env')).toBe(ENV);
    },
  );
});
