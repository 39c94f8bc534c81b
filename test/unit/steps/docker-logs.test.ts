import { describe, expect, it } from 'vitest';
import { dockerLogs } from '../../../src/steps/docker-logs.js';
import type { Exec } from '../../../src/system/index.js';
import { dockerWorld, fail, type World } from '../../support/docker-world.js';
import { fakeSystem, stepContext } from '../../support/fake-system.js';
import { makeRoot, readFile, writeFile } from '../../support/root.js';
import { readdirSync, existsSync } from 'node:fs';

const DAEMON = '/etc/docker/daemon.json';
const PENDING = '/var/lib/immich-firstboot/docker-restart-pending';
const OLD_DOCKERD = fail('');
OLD_DOCKERD.stdout = "Status: unknown flag: --validate\nSee 'dockerd --help'., Code: 125\n";

/** The step as --skip-stack runs it (no restart), with Debian 12's dockerd 20.10, which cannot validate. */
const run = async (root: string, exec: Exec = dockerWorld({ validate: OLD_DOCKERD })) => {
  const { ctx } = stepContext(fakeSystem(root, { exec }), {}, { skipStack: true });
  return { result: await dockerLogs.apply(ctx), ctx };
};

/** The step in a full run, restarting Docker with a configured command. */
const runWithRestart = async (root: string, world: World = {}) => {
  const exec = dockerWorld(world);
  const { ctx } = stepContext(fakeSystem(root, { exec }), {
    dockerLogs: { maxSize: '50m', maxFile: '5', restartCommand: ['restart-docker'] },
  });
  const result = await dockerLogs.apply(ctx);
  return { result, restarts: exec.calls.filter((c) => c[0] === 'restart-docker').length, exec };
};

describe('the docker-logs step', () => {
  it('creates daemon.json with json-file rotation when there is none', async () => {
    const root = makeRoot();
    expect((await run(root)).result.changed).toBe(true);
    expect(JSON.parse(readFile(root, DAEMON))).toEqual({
      'log-driver': 'json-file',
      'log-opts': { 'max-size': '50m', 'max-file': '5' },
    });
  });

  it("keeps every foreign key and the operator's own log-opts values", async () => {
    const root = makeRoot();
    writeFile(
      root,
      DAEMON,
      JSON.stringify({ 'data-root': '/mnt/docker', 'log-opts': { 'max-size': '10m', compress: 'true' } }),
    );
    await run(root);
    expect(JSON.parse(readFile(root, DAEMON))).toEqual({
      'data-root': '/mnt/docker',
      'log-driver': 'json-file',
      'log-opts': { 'max-size': '10m', compress: 'true', 'max-file': '5' },
    });
  });

  it('changes nothing the second time', async () => {
    const root = makeRoot();
    await run(root);
    const before = readFile(root, DAEMON);
    expect((await run(root)).result.changed).toBe(false);
    expect(readFile(root, DAEMON)).toBe(before);
  });

  it.each([
    ['not JSON', '{"log-driver": json-file', /is not valid JSON/],
    ['a list', '["json-file"]', /must hold a JSON object/],
    ['log-opts that are not an object', '{"log-opts": "max-size=1m"}', /"log-opts" must be an object/],
  ])('leaves a daemon.json that is %s untouched and fails clearly', async (_what, text, message) => {
    const root = makeRoot();
    writeFile(root, DAEMON, text);
    await expect(run(root)).rejects.toMatchObject({
      code: 'daemon-json-invalid',
      message: expect.stringMatching(message),
    });
    expect(readFile(root, DAEMON)).toBe(text);
  });

  it('treats an empty daemon.json as {}', async () => {
    const root = makeRoot();
    writeFile(root, DAEMON, '\n');
    await run(root);
    expect(JSON.parse(readFile(root, DAEMON))['log-driver']).toBe('json-file');
  });

  it("keeps an operator's other log driver and warns", async () => {
    const root = makeRoot();
    writeFile(root, DAEMON, '{"log-driver":"journald"}');
    const { result, ctx } = await run(root);
    expect(result.changed).toBe(false);
    expect(readFile(root, DAEMON)).toBe('{"log-driver":"journald"}');
    expect(ctx.journal.warnings[0]?.message).toContain('sets log-driver "journald"; kept it');
  });

  it('validates the merged file with dockerd, and leaves daemon.json untouched when dockerd rejects it', async () => {
    const root = makeRoot();
    writeFile(root, DAEMON, '{"bogus-key": true}');
    const rejected = fail('');
    rejected.stdout =
      "unable to configure the Docker daemon with file /x: the following directives don't match any configuration option: bogus-key\n";
    const exec = dockerWorld({ validate: rejected });
    await expect(run(root, exec)).rejects.toMatchObject({
      code: 'daemon-json-rejected',
      message: expect.stringContaining("don't match any configuration option: bogus-key; left untouched"),
    });
    expect(readFile(root, DAEMON)).toBe('{"bogus-key": true}');
    const validated = exec.calls.find((c) => c[0] === 'dockerd')!;
    expect(validated.slice(0, 3)).toEqual(['dockerd', '--validate', '--config-file']);
    expect(readdirSync(`${root}/etc/docker`)).toEqual(['daemon.json']); // the candidate's temp dir is gone
    expect(existsSync(`${root}${PENDING}`)).toBe(false);
  });

  it.each([
    ['there is no daemon.json', undefined],
    ['daemon.json is empty', ''],
    ['daemon.json only names the json-file driver', '{"log-driver": "json-file"}'],
    ['daemon.json already holds our own values', '{"log-opts": {"max-size": "50m"}}'],
  ])(
    'does not run dockerd --validate when %s: nothing an operator wrote could make Docker refuse it',
    async (_what, text) => {
      const root = makeRoot();
      if (text !== undefined) writeFile(root, DAEMON, text);
      const exec = dockerWorld();
      const { result } = await run(root, exec);
      expect(result.changed).toBe(true);
      expect(exec.calls).toEqual([]);
      expect(JSON.parse(readFile(root, DAEMON))).toEqual({
        'log-driver': 'json-file',
        'log-opts': { 'max-size': '50m', 'max-file': '5' },
      });
    },
  );

  it.each([
    ['a key of its own', '{"data-root": "/mnt/docker"}'],
    ['a log option of its own', '{"log-opts": {"compress": "true"}}'],
    ['its own max-size', '{"log-opts": {"max-size": "10m"}}'],
  ])("runs dockerd --validate when the operator's daemon.json holds %s", async (_what, text) => {
    const root = makeRoot();
    writeFile(root, DAEMON, text);
    const exec = dockerWorld();
    await run(root, exec);
    expect(exec.calls.map((c) => c.slice(0, 2))).toEqual([['dockerd', '--validate']]);
  });

  it('restarts Docker once, after writing, and not again when nothing changed', async () => {
    const root = makeRoot();
    writeFile(root, DAEMON, '{"data-root": "/mnt/docker"}'); // so that dockerd validates first
    const first = await runWithRestart(root);
    expect(first.restarts).toBe(1);
    // The log names the image builder's fix: on a prepared image the first boot has nothing to restart.
    expect(first.result.summary).toContain(
      '; Docker restarted because this image was not prepared with `immich-firstboot prepare-image`',
    );
    const order = first.exec.calls.map((c) => c[0]);
    expect(order.indexOf('dockerd')).toBeLessThan(order.indexOf('restart-docker'));
    expect(existsSync(`${root}${PENDING}`)).toBe(false);
    const second = await runWithRestart(root);
    expect(second.restarts).toBe(0);
    expect(second.result.changed).toBe(false);
  });

  it('restarts Docker on the next run when the last one died between writing and restarting', async () => {
    const root = makeRoot();
    await runWithRestart(root, { restart: fail('Job for docker.service failed') }).catch(() => undefined);
    expect(existsSync(`${root}${PENDING}`)).toBe(true);
    const again = await runWithRestart(root);
    expect(again.restarts).toBe(1);
    expect(again.result.changed).toBe(true);
    expect(existsSync(`${root}${PENDING}`)).toBe(false);
  });

  it("fails with the restart command's output when Docker does not come back", async () => {
    await expect(
      runWithRestart(makeRoot(), {
        restart: fail('Job for docker.service failed because the control process exited with error code.'),
      }),
    ).rejects.toMatchObject({
      code: 'docker-restart-failed',
      message:
        '`restart-docker` failed: Job for docker.service failed because the control process exited with error code.',
      hint: expect.stringContaining('journalctl -u docker.service'),
    });
  });

  it('leaves the restart to the next plain run under --skip-stack', async () => {
    const root = makeRoot();
    const { ctx } = await run(root);
    expect(existsSync(`${root}${PENDING}`)).toBe(true);
    expect(ctx.journal.warnings).toEqual([]);
  });

  it('warns instead of restarting without systemd when no restart command is configured', async () => {
    const root = makeRoot();
    const exec = dockerWorld();
    const { ctx } = stepContext(fakeSystem(root, { exec }));
    await dockerLogs.apply(ctx);
    expect(ctx.journal.warnings[0]?.message).toBe(
      '/etc/docker/daemon.json changed, but Docker was not restarted (no systemd here, or --root is not /)',
    );
    expect(exec.calls).toEqual([]); // neither a restart nor, with no operator keys, dockerd --validate
  });
});
