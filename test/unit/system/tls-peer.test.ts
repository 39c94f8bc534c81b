// The System's bare TLS handshake (which certificate a server presents) against servers on loopback:
// connect and handshake are bounded as a whole by one timer, so a server that sends its handshake a
// byte a second is cut off at the deadline, and one that sends nothing too. These are guards: Node's
// idle timer on a TLS socket never counted handshake bytes, so the old `timeout:` happened to end
// these cases as well; the deadline no longer depends on that.
import { afterEach, describe, expect, it } from 'vitest';
import { peerFingerprintReal } from '../../../src/system/tls-peer.js';
import { startHttpsPong, startTrickle } from '../../support/trickle.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function httpsPong() {
  const server = await startHttpsPong();
  cleanups.push(() => server.close());
  return server;
}

async function trickle(...args: Parameters<typeof startTrickle>) {
  const server = await startTrickle(...args);
  cleanups.push(() => server.close());
  return server;
}

describe('peerFingerprint: a deadline for the whole handshake', () => {
  it('returns the fingerprint of the certificate a prompt server presents', async () => {
    const tls = await httpsPong();
    expect(await peerFingerprintReal({ host: '127.0.0.1', port: tls.port, timeoutMs: 5000 })).toBe(tls.fingerprint);
  });

  it('ends a handshake that arrives one byte a second at its deadline, naming the deadline', async () => {
    const tls = await httpsPong();
    const server = await trickle({ forward: tls.port });
    await expect(peerFingerprintReal({ host: '127.0.0.1', port: server.port, timeoutMs: 2500 })).rejects.toMatchObject({
      code: 'ETIMEDOUT',
      message: `no TLS handshake with 127.0.0.1:${server.port} within 2500 ms`,
    });
    await server.allClosed();
    expect(server.connections).toMatchObject([{ cutOff: true, finished: false }]);
  });

  it('ends a handshake with a server that accepts and never sends a byte', async () => {
    const server = await trickle({ silent: true });
    await expect(peerFingerprintReal({ host: '127.0.0.1', port: server.port, timeoutMs: 1000 })).rejects.toMatchObject({
      code: 'ETIMEDOUT',
      message: expect.stringContaining('within 1000 ms'),
    });
    await server.allClosed();
    expect(server.connections).toMatchObject([{ cutOff: true }]);
  });
});
