// sd_notify through systemd-notify: a step hands its line over and goes on; the lines go out one process at
// a time, in order, the newest of each kind when several waited; flush waits for the last.
import { describe, expect, it } from 'vitest';
import { createNotifier } from '../../src/notify.js';
import { SecretRegistry } from '../../src/redact.js';
import type { ExecResult, System } from '../../src/system/index.js';

/** A System whose systemd-notify runs until the test lets it end. */
function held(env: Record<string, string> = { NOTIFY_SOCKET: '/run/systemd/notify' }) {
  const calls: string[][] = [];
  const ends: Array<(r: ExecResult) => void> = [];
  const sys = {
    env,
    exec: (file: string, args: readonly string[]) => {
      calls.push([file, ...args]);
      return new Promise<ExecResult>((resolve) => ends.push(resolve));
    },
  } as unknown as System;
  const end = async (): Promise<void> => {
    ends.shift()?.({ command: '', exitCode: 0, stdout: '', stderr: '', notFound: false, timedOut: false });
    await new Promise((resolve) => setImmediate(resolve));
  };
  return { sys, calls, end };
}

describe('createNotifier', () => {
  it('does nothing without NOTIFY_SOCKET', async () => {
    const { sys, calls } = held({});
    const notify = createNotifier(sys, new SecretRegistry());
    await notify.status('Step 1/11: the data disk');
    await notify.flush();
    expect(calls).toEqual([]);
  });

  it('returns before systemd-notify ends, sends in order, and drops a line a newer one replaced', async () => {
    const { sys, calls, end } = held();
    const notify = createNotifier(sys, new SecretRegistry());
    // Each resolves while the first systemd-notify still runs.
    await notify.status('Step 1/11: one');
    await notify.status('Step 2/11: two');
    await notify.extendTimeout(60);
    await notify.status('Step 3/11: three');
    expect(calls).toEqual([['systemd-notify', 'STATUS=Step 1/11: one']]);
    let flushed = false;
    void notify.flush().then(() => (flushed = true));
    await end();
    // Step 2's line was replaced by step 3's before it could go; both kinds go in one call, in first-handed order.
    expect(calls[1]).toEqual(['systemd-notify', 'EXTEND_TIMEOUT_USEC=60000000', 'STATUS=Step 3/11: three']);
    expect(flushed).toBe(false);
    await end();
    expect(flushed).toBe(true);
    expect(calls).toHaveLength(2);
  });

  it('goes on after a systemd-notify that failed, and scrubs the secret from the argv', async () => {
    const calls: string[][] = [];
    const sys = {
      env: { NOTIFY_SOCKET: '/run/systemd/notify' },
      exec: async (file: string, args: readonly string[]) => {
        calls.push([file, ...args]);
        if (calls.length === 1) throw new Error('spawn systemd-notify ENOENT');
        return { command: '', exitCode: 0, stdout: '', stderr: '', notFound: false, timedOut: false };
      },
    } as unknown as System;
    const secrets = new SecretRegistry();
    secrets.add('s3cr3t-s3cr3t-s3cr3t-s3cr3t-0123');
    const notify = createNotifier(sys, secrets);
    await notify.status('first');
    await notify.flush();
    await notify.status('Failed at env: DB_PASSWORD=s3cr3t-s3cr3t-s3cr3t-s3cr3t-0123\nsecond line');
    await notify.flush();
    expect(calls).toHaveLength(2);
    expect(calls[1]?.join(' ')).not.toContain('s3cr3t-s3cr3t');
    expect(calls[1]?.[1]).toMatch(/^STATUS=Failed at env: DB_PASSWORD=\S+ second line$/);
  });
});
