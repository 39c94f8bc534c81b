import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { WRITTEN_DIRS } from '../../src/paths.js';
import { acquireLock, readLockHolder } from '../../src/state.js';
import { createSystem } from '../../src/system/index.js';
import { makeRoot, writeFile } from '../support/root.js';

describe('the lock', () => {
  it('refuses a second run while the first holds it, naming the holder (exit code 4)', async () => {
    const sys = createSystem(makeRoot());
    const lock = await acquireLock(sys, 'run');
    await expect(acquireLock(sys, 'regenerate-cert')).rejects.toMatchObject({
      exitCode: 4,
      message: expect.stringContaining(`(run, pid ${process.pid}) is running`),
    });
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
    writeFile(
      root,
      '/var/lib/immich-firstboot/lock',
      JSON.stringify({ pid: process.pid, start: 'not-my-start', command: 'run' }),
    );
    const lock = await acquireLock(createSystem(root), 'run');
    await lock.release();
  });

  it('a racer arriving while the holder sweeps stale temp files is refused with exit 4, not an I/O error', async () => {
    const root = makeRoot();
    const holder = createSystem(root);
    const lock = await acquireLock(holder, 'run');
    // The racer has written its lock file and is about to link it when the holder (runner.ts, right
    // after taking the lock) removes the temp files a crashed run left in the directories we write.
    const racer = createSystem(root);
    const link = racer.fs.linkNew.bind(racer.fs);
    racer.fs.linkNew = async (from, to) => {
      await Promise.all(WRITTEN_DIRS.map((d) => holder.fs.removeStaleTemps(d)));
      return link(from, to);
    };
    await expect(acquireLock(racer, 'run')).rejects.toMatchObject({ exitCode: 4, code: 'locked' });
    expect((await readLockHolder(holder))?.pid).toBe(process.pid);
    await lock.release();
  });

  it("clears what a racer killed mid-try left in the lock scratch, and keeps a live racer's", async () => {
    const root = makeRoot();
    const child = spawn('true');
    const dead = await new Promise<number>((resolve) => child.on('exit', () => resolve(child.pid!)));
    const tag = (pid: number) => pid.toString(16).padStart(8, '0');
    writeFile(root, `/var/lib/immich-firstboot/lock-scratch/lock.${tag(dead)}.tmp`, 'x');
    writeFile(root, `/var/lib/immich-firstboot/lock-scratch/.immich-firstboot-lock.${tag(dead)}.tmp.0123abcd.tmp`, 'x');
    writeFile(root, `/var/lib/immich-firstboot/lock-scratch/lock.${tag(process.ppid)}.tmp`, 'x');
    const lock = await acquireLock(createSystem(root), 'run');
    expect(readdirSync(`${root}/var/lib/immich-firstboot/lock-scratch`)).toEqual([`lock.${tag(process.ppid)}.tmp`]);
    await lock.release();
  });
});
