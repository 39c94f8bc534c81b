// Plain HTTP(S) GETs with a deadline for the whole exchange, a cap on the body, and no proxy: enough for
// IMDS, Immich's local API and our own nginx door. node:http and node:https are imported at the first
// request: loading TLS costs every `status` and login a few milliseconds for nothing.

import type { TLSSocket } from 'node:tls';
import { deadline, endedBy } from './deadline.js';

export interface HttpResponse {
  status: number;
  body: string;
  /** https only: the SHA-256 fingerprint of the certificate the server presented ("AB:CD:..."). */
  peerFingerprint?: string;
  /** The address this end of the connection had (Azure IMDS answers only the primary NIC's primary IP). */
  localAddress?: string;
}

/** The body cap when a caller names none: more than any answer we read needs. */
export const DEFAULT_MAX_BYTES = 1024 * 1024;

export interface HttpRequest {
  url: string;
  headers?: Record<string, string>;
  /**
   * The deadline for the whole exchange: connect, TLS handshake, headers and body. Not an idle timeout:
   * a server that sends a byte a second is cut off all the same.
   */
  timeoutMs: number;
  /** The most body we read; a longer answer (by Content-Length or as it arrives) fails. Default 1 MiB. */
  maxBytes?: number;
  /**
   * https only: accept a certificate no CA vouches for (our own self-signed door); the caller must
   * compare `peerFingerprint` with the certificate it expects instead.
   */
  untrustedTls?: boolean;
  /** https only: the TLS server name (SNI) to ask for; never an IP address (RFC 6066). */
  servername?: string;
}

export type HttpGet = (request: HttpRequest) => Promise<HttpResponse>;

/**
 * Rejects with an Error whose `code` is the errno (ECONNREFUSED, ...), ETIMEDOUT when the deadline ended
 * the exchange, or E2BIG when the body is over the cap; the last two name their bound in the message.
 */
export const httpGetReal: HttpGet = async (request) => {
  const { url, headers, timeoutMs, maxBytes = DEFAULT_MAX_BYTES, untrustedTls, servername } = request;
  const bound = deadline(timeoutMs, `no complete answer from ${url}`);
  try {
    const secure = url.startsWith('https:');
    const { get } = secure ? await import('node:https') : await import('node:http');
    return await new Promise<HttpResponse>((resolve, reject) => {
      const fail = (error: Error) => reject(endedBy(bound.signal, error));
      const tooLarge = () =>
        bound.abort(
          Object.assign(new Error(`the answer from ${url} is larger than ${maxBytes} bytes`), { code: 'E2BIG' }),
        );
      // node:http(s) never consults HTTP(S)_PROXY, which is what IMDS requires; agent:false = no reuse.
      // `signal` destroys the request, its socket and the response wherever the exchange is.
      const options = {
        headers,
        agent: false,
        signal: bound.signal,
        ...(secure ? { rejectUnauthorized: untrustedTls !== true, servername } : {}),
      };
      const req = get(url, options, (res) => {
        res.on('error', fail);
        if (Number(res.headers['content-length']) > maxBytes) return tooLarge();
        const peerFingerprint = secure ? (res.socket as TLSSocket).getPeerCertificate().fingerprint256 : undefined;
        const localAddress = res.socket.localAddress; // read now: a closed socket no longer has one
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > maxBytes) tooLarge();
          else chunks.push(chunk);
        });
        res.on('end', () => {
          // An answer that came in one read still ends after a bound aborted it: never a truncated body.
          if (bound.signal.aborted) return reject(bound.signal.reason as Error);
          resolve({
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString('utf8'),
            ...(peerFingerprint ? { peerFingerprint } : {}),
            ...(localAddress ? { localAddress } : {}),
          });
        });
      });
      req.on('error', fail);
    });
  } finally {
    bound.clear();
  }
};
