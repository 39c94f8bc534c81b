import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { acquireLock, readLockHolder } from '../../src/state.js';
import { createSystem } from '../../src/system/index.js';
import { makeRoot, writeFile } from '../support/root.js';

describe('the lock', () => {
  it('refuses a second run while the first holds it, naming the holder (exit code 4)', async () => {
    const sys = createSystem(makeRoot());
    const lock = await acquireLock(sys, 'run');
    await expect(acquireLock(sys, 'regenerate-cert')).rejects.toMatchObject({ exitCode: 4, message: expect.stringContaining(`(run, pid ${process.pid}) is running`) });
    await lock.release();
    await (await acquireLock(sys, 'regenerate-cert')).release();
  });

  it('takes over a lock left by a process that died', async () => {
    const root = makeRoot();
    const child = spawn('true');
    const pid = await new Promise<number>((resolve) => child.on('exit', () => resolve(child.pid!)));
    writeFile(root, '/var/lib/immich-firstboot/lock', JSON.stringify({ pid, start: '1', command: 'run' }));
    const sys = createSystem(root);
    const lock = await acquireLock(sys, 'run');
    expect((await readLockHolder(sys))?.pid).toBe(process.pid);
    await lock.release();
    expect(await readLockHolder(sys)).toBeUndefined();
  });

  it('does not mistake a reused pid for the holder (start time differs)', async () => {
    const root = makeRoot();
    writeFile(root, '/var/lib/immich-firstboot/lock', JSON.stringify({ pid: process.pid, start: 'not-my-start', command: 'run' }));
    const lock = await acquireLock(createSystem(root), 'run');
    await lock.release();
  });
});
