// Immich's answers on loopback as src/stack.ts asks for them, through the real System's httpGet: each
// request has its deadline for the whole exchange and its own size cap. Servers here trickle (a byte a
// second: an idle timeout never fires) or answer more than the cap.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG, type Config } from '../../src/config.js';
import { adminRegistered, ping } from '../../src/stack.js';
import { createSystem } from '../../src/system/index.js';
import { makeRoot } from '../support/root.js';
import { slowAnswer, startTrickle } from '../support/trickle.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

function at(serverUrl: string) {
  const config: Config = { ...DEFAULT_CONFIG, stack: { ...DEFAULT_CONFIG.stack, serverUrl } };
  return { sys: createSystem(makeRoot(), {}), config };
}

/** An Immich stand-in answering /api/server/ping and /api/server/config with JSON padded to `bytes`. */
async function immich(bytes: number): Promise<string> {
  const server = http.createServer((req, res) => {
    const value = req.url === '/api/server/ping' ? { res: 'pong' } : { isInitialized: true };
    const json = JSON.stringify({ ...value, pad: '' });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(json.replace('"pad":""', `"pad":"${'.'.repeat(bytes - json.length)}"`));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe("Immich's answers, bounded", () => {
  it('reads a pong of 4 KiB and refuses one a byte longer', async () => {
    expect(await ping(at(await immich(4096)))).toBe(true);
    expect(await ping(at(await immich(4097)))).toBe(false);
  });

  it("reads the server's config up to 64 KiB and not beyond", async () => {
    expect(await adminRegistered(at(await immich(64 * 1024)))).toBe(true);
    expect(await adminRegistered(at(await immich(64 * 1024 + 1)))).toBeNull();
  });

  it('gives up on a ping or a config whose answer trickles, once its deadline is past', async () => {
    const server = await startTrickle({ answer: slowAnswer('{"res":"pong","isInitialized":true}') });
    cleanups.push(() => server.close());
    expect(await ping(at(server.url))).toBe(false);
    expect(await adminRegistered(at(server.url))).toBeNull();
    await server.allClosed();
    expect(server.connections).toMatchObject([{ cutOff: true }, { cutOff: true }]);
  });
});
