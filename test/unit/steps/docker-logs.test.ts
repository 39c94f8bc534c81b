import { describe, expect, it } from 'vitest';
import { dockerLogs } from '../../../src/steps/docker-logs.js';
import { fakeSystem, stepContext } from '../../support/fake-system.js';
import { makeRoot, readFile, writeFile } from '../../support/root.js';

const DAEMON = '/etc/docker/daemon.json';
const run = async (root: string) => {
  const { ctx } = stepContext(fakeSystem(root), {}, { skipStack: true });
  return { result: await dockerLogs.apply(ctx), ctx };
};

describe('the docker-logs step', () => {
  it('creates daemon.json with json-file rotation when there is none', async () => {
    const root = makeRoot();
    expect((await run(root)).result.changed).toBe(true);
    expect(JSON.parse(readFile(root, DAEMON))).toEqual({ 'log-driver': 'json-file', 'log-opts': { 'max-size': '50m', 'max-file': '5' } });
  });

  it('keeps every foreign key and the operator\'s own log-opts values', async () => {
    const root = makeRoot();
    writeFile(root, DAEMON, JSON.stringify({ 'data-root': '/mnt/docker', 'log-opts': { 'max-size': '10m', compress: 'true' } }));
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
    await expect(run(root)).rejects.toMatchObject({ code: 'daemon-json-invalid', message: expect.stringMatching(message) });
    expect(readFile(root, DAEMON)).toBe(text);
  });

  it('treats an empty daemon.json as {}', async () => {
    const root = makeRoot();
    writeFile(root, DAEMON, '\n');
    await run(root);
    expect(JSON.parse(readFile(root, DAEMON))['log-driver']).toBe('json-file');
  });

  it('keeps an operator\'s other log driver and warns', async () => {
    const root = makeRoot();
    writeFile(root, DAEMON, '{"log-driver":"journald"}');
    const { result, ctx } = await run(root);
    expect(result.changed).toBe(false);
    expect(readFile(root, DAEMON)).toBe('{"log-driver":"journald"}');
    expect(ctx.journal.warnings[0]?.message).toContain('sets log-driver "journald"; kept it');
  });
});
