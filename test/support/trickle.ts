// A loopback server as slow as a broken peer can be: it sends nothing at all, or one byte a second of
// its own HTTP answer (in the clear, or over TLS after a prompt handshake), or of whatever a real server
// behind it sends (a TLS handshake). Idle timeouts never fire on it; only a deadline for the whole
// exchange does. It records, for each connection, whether the client hung up before everything was
// sent: the proof a bound cut it off.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import os from 'node:os';
import path from 'node:path';

export type TrickleMode =
  /** Accepts the connection and never sends a byte. */
  | { silent: true }
  /** Sends the first `fast` bytes of `answer` at once, then the rest one byte at a time. */
  | { answer: string; fast?: number }
  /** Proxies to 127.0.0.1:`forward`; what the server there sends is passed on one byte at a time. */
  | { forward: number };

export interface TrickleConnection {
  sent: number;
  /** Everything was sent and the connection ended by us (or by the server behind us). */
  finished: boolean;
  /** The client closed the connection while we still had something to send. */
  cutOff: boolean;
}

export interface Trickle {
  port: number;
  url: string;
  connections: TrickleConnection[];
  /** Resolves once every connection so far is closed (the client's hang-up reaches us a moment later). */
  allClosed(): Promise<void>;
  close(): Promise<void>;
}

/** An HTTP/1.1 answer whose headers alone take `padding` seconds at a byte a second. */
export function slowAnswer(body: string, padding = 600): string {
  return (
    `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
    `x-padding: ${'.'.repeat(padding)}\r\nconnection: close\r\n\r\n${body}`
  );
}

export interface TrickleOptions {
  port?: number;
  intervalMs?: number;
  /** Speak TLS with this certificate: the handshake is prompt, what follows it trickles. */
  tls?: SelfSigned;
}

export async function startTrickle(
  mode: TrickleMode,
  { port = 0, intervalMs = 1000, tls: credentials }: TrickleOptions = {},
): Promise<Trickle> {
  const connections: TrickleConnection[] = [];
  const sockets = new Set<net.Socket>();
  const closed: Array<Promise<void>> = [];
  const onConnection = (client: net.Socket): void => {
    const conn: TrickleConnection = { sent: 0, finished: false, cutOff: false };
    connections.push(conn);
    sockets.add(client);
    closed.push(new Promise((resolve) => client.once('close', () => resolve())));
    let pending = Buffer.alloc(0);
    let sourceDone = false;
    let timer: NodeJS.Timeout | undefined;
    const pump = (): void => {
      timer = undefined;
      if (client.destroyed) return;
      if (pending.length === 0) {
        if (sourceDone) {
          conn.finished = true;
          client.end();
        }
        return;
      }
      client.write(pending.subarray(0, 1));
      pending = pending.subarray(1);
      conn.sent += 1;
      timer = setTimeout(pump, intervalMs);
    };
    const enqueue = (data: Buffer): void => {
      pending = Buffer.concat([pending, data]);
      if (!timer) pump();
    };
    const upstream = 'forward' in mode ? net.connect(mode.forward, '127.0.0.1') : undefined;
    client.on('error', () => undefined);
    client.on('close', () => {
      if (timer) clearTimeout(timer);
      conn.cutOff = !conn.finished;
      upstream?.destroy();
      sockets.delete(client);
    });
    if (upstream) {
      upstream.on('error', () => undefined);
      upstream.on('data', enqueue);
      upstream.on('close', () => {
        sourceDone = true;
        if (!timer) pump();
      });
      client.on('data', (data: Buffer) => upstream.write(data));
    } else {
      client.resume(); // read (and drop) the request, so the client's hang-up reaches us as it happens
    }
    if ('answer' in mode) {
      const answer = Buffer.from(mode.answer);
      const fast = mode.fast ?? 0;
      client.write(answer.subarray(0, fast));
      conn.sent += Math.min(fast, answer.length);
      sourceDone = true;
      enqueue(answer.subarray(fast));
    }
  };
  const server = credentials
    ? tls.createServer({ key: credentials.key, cert: credentials.cert }, onConnection)
    : net.createServer(onConnection);
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', resolve));
  const bound = (server.address() as net.AddressInfo).port;
  return {
    port: bound,
    url: `http://127.0.0.1:${bound}`,
    connections,
    allClosed: async () => {
      await Promise.all(closed);
    },
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

export interface SelfSigned {
  key: string;
  cert: string;
  /** SHA-256, as openssl and Node print it ("AB:CD:..."). */
  fingerprint: string;
}

/** A fresh self-signed P-256 certificate for localhost, made by the real openssl. */
export function selfSigned(): SelfSigned {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ifb-tls-'));
  try {
    const [key, cert] = [path.join(dir, 'key.pem'), path.join(dir, 'cert.pem')];
    execFileSync('openssl', [
      ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'],
      ...['-keyout', key, '-out', cert, '-subj', '/CN=localhost', '-days', '1'],
    ]);
    const fingerprint = execFileSync('openssl', ['x509', '-in', cert, '-noout', '-fingerprint', '-sha256'], {
      encoding: 'utf8',
    })
      .trim()
      .replace(/^.*=/, '');
    return { key: readFileSync(key, 'utf8'), cert: readFileSync(cert, 'utf8'), fingerprint };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A real HTTPS server on 127.0.0.1 answering `{"res":"pong"}` at once. */
export async function startHttpsPong(
  credentials = selfSigned(),
): Promise<{ port: number; fingerprint: string; close(): Promise<void> }> {
  const server = https.createServer({ key: credentials.key, cert: credentials.cert }, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"res":"pong"}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    fingerprint: credentials.fingerprint,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
