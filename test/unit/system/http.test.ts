// The System's httpGet against servers on loopback that answer too slowly or too much: every bound is
// on the whole exchange (connect, handshake, headers, body), and the body has a cap. The trickling
// servers send a byte a second, faster than any deadline used here, so an idle timeout never fires:
// with idle timeouts only, each of these calls lasts as long as the trickle (minutes) and the test
// ends at vitest's timeout instead. (A trickled TLS *handshake* is the exception: Node's idle timer
// never counted handshake bytes, so that case was bounded before and its test is a guard.)
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { httpGetReal } from '../../../src/system/http.js';
import { selfSigned, slowAnswer, startHttpsPong, startTrickle } from '../../support/trickle.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function trickle(...args: Parameters<typeof startTrickle>) {
  const server = await startTrickle(...args);
  cleanups.push(() => server.close());
  return server;
}

/** A server that answers every GET with `body`, with or without a Content-Length. */
async function answering(body: string, contentLength: boolean): Promise<string> {
  const server = http.createServer((_req, res) => {
    res.writeHead(200, contentLength ? { 'content-length': Buffer.byteLength(body) } : {});
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
}

const PONG = '{"res":"pong"}';

describe('httpGet: a deadline for the whole exchange', () => {
  it('ends an answer whose headers arrive one byte a second at its deadline, naming the deadline', async () => {
    const server = await trickle({ answer: slowAnswer(PONG) });
    await expect(httpGetReal({ url: `${server.url}/api/server/ping`, timeoutMs: 2500 })).rejects.toMatchObject({
      code: 'ETIMEDOUT',
      message: `no complete answer from ${server.url}/api/server/ping within 2500 ms`,
    });
    await server.allClosed();
    expect(server.connections).toMatchObject([{ cutOff: true, finished: false }]);
  });

  it('ends an answer whose headers come at once and whose body arrives one byte a second', async () => {
    const body = JSON.stringify({ res: 'pong', padding: '.'.repeat(600) });
    const answer = slowAnswer(body, 0);
    const server = await trickle({ answer, fast: answer.length - body.length });
    await expect(httpGetReal({ url: server.url, timeoutMs: 2500 })).rejects.toMatchObject({
      code: 'ETIMEDOUT',
      message: expect.stringContaining('within 2500 ms'),
    });
    await server.allClosed();
    expect(server.connections).toMatchObject([{ cutOff: true, finished: false }]);
    expect(server.connections[0].sent).toBeGreaterThan(answer.length - body.length); // the body had begun
  });

  it('ends an exchange with a server that accepts and never sends a byte', async () => {
    const server = await trickle({ silent: true });
    await expect(httpGetReal({ url: server.url, timeoutMs: 1000 })).rejects.toMatchObject({
      code: 'ETIMEDOUT',
      message: expect.stringContaining('within 1000 ms'),
    });
    await server.allClosed();
    expect(server.connections).toMatchObject([{ cutOff: true }]);
  });

  it('ends an https answer whose headers arrive one byte a second after a prompt handshake', async () => {
    const server = await trickle({ answer: slowAnswer(PONG) }, { tls: selfSigned() });
    const url = `https://127.0.0.1:${server.port}/api/server/ping`;
    await expect(httpGetReal({ url, timeoutMs: 2500, untrustedTls: true })).rejects.toMatchObject({
      code: 'ETIMEDOUT',
      message: `no complete answer from ${url} within 2500 ms`,
    });
    await server.allClosed();
    expect(server.connections).toMatchObject([{ cutOff: true, finished: false }]);
  });

  it('ends an https exchange whose TLS handshake arrives one byte a second', async () => {
    const tls = await startHttpsPong();
    cleanups.push(() => tls.close());
    const server = await trickle({ forward: tls.port });
    const url = `https://127.0.0.1:${server.port}/api/server/ping`;
    await expect(httpGetReal({ url, timeoutMs: 2500, untrustedTls: true })).rejects.toMatchObject({
      code: 'ETIMEDOUT',
      message: `no complete answer from ${url} within 2500 ms`,
    });
    await server.allClosed();
    expect(server.connections).toMatchObject([{ cutOff: true, finished: false }]);
  });

  it('answers as before when the server is prompt: status, body, the certificate presented, our address', async () => {
    const tls = await startHttpsPong();
    cleanups.push(() => tls.close());
    const res = await httpGetReal({ url: `https://127.0.0.1:${tls.port}/`, timeoutMs: 5000, untrustedTls: true });
    expect(res).toEqual({ status: 200, body: PONG, peerFingerprint: tls.fingerprint, localAddress: '127.0.0.1' });
  });
});

describe('httpGet: a cap on the body', () => {
  it('refuses an answer whose Content-Length is over the cap, naming the cap', async () => {
    const url = await answering('x'.repeat(5000), true);
    await expect(httpGetReal({ url, timeoutMs: 5000, maxBytes: 4096 })).rejects.toMatchObject({
      code: 'E2BIG',
      message: `the answer from ${url} is larger than 4096 bytes`,
    });
  });

  it('refuses a chunked answer once it grows over the cap', async () => {
    const url = await answering('x'.repeat(5000), false);
    await expect(httpGetReal({ url, timeoutMs: 5000, maxBytes: 4096 })).rejects.toMatchObject({ code: 'E2BIG' });
  });

  it('reads an answer of exactly the cap', async () => {
    const url = await answering('x'.repeat(4096), false);
    expect((await httpGetReal({ url, timeoutMs: 5000, maxBytes: 4096 })).body).toHaveLength(4096);
  });

  it('caps at 1 MiB when the caller names no cap', async () => {
    const url = await answering('x'.repeat(1024 * 1024 + 1), true);
    await expect(httpGetReal({ url, timeoutMs: 5000 })).rejects.toMatchObject({
      message: expect.stringContaining('larger than 1048576 bytes'),
    });
  });
});
