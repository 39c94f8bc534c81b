// Plain HTTP(S) GETs with hard timeouts and no proxy: enough for IMDS, Immich's local API and our own
// nginx door. node:http and node:https are imported at the first request: loading TLS costs every
// `status` and login a few milliseconds for nothing.

import type { TLSSocket } from 'node:tls';

export interface HttpResponse {
  status: number;
  body: string;
  /** https only: the SHA-256 fingerprint of the certificate the server presented ("AB:CD:..."). */
  peerFingerprint?: string;
  /** The address this end of the connection had (Azure IMDS answers only the primary NIC's primary IP). */
  localAddress?: string;
}

export interface HttpRequest {
  url: string;
  headers?: Record<string, string>;
  timeoutMs: number;
  /**
   * https only: accept a certificate no CA vouches for (our own self-signed door); the caller must
   * compare `peerFingerprint` with the certificate it expects instead.
   */
  untrustedTls?: boolean;
  /** https only: the TLS server name (SNI) to ask for; never an IP address (RFC 6066). */
  servername?: string;
}

export type HttpGet = (request: HttpRequest) => Promise<HttpResponse>;

/** Rejects with an Error whose `code` is the errno (ECONNREFUSED, ...) or ETIMEDOUT. */
export const httpGetReal: HttpGet = async ({ url, headers, timeoutMs, untrustedTls, servername }) => {
  const secure = url.startsWith('https:');
  const { get } = secure ? await import('node:https') : await import('node:http');
  return new Promise((resolve, reject) => {
    // node:http(s) never consults HTTP(S)_PROXY, which is what IMDS requires; agent:false = no reuse.
    const options = {
      headers,
      agent: false,
      timeout: timeoutMs,
      ...(secure ? { rejectUnauthorized: untrustedTls !== true, servername } : {}),
    };
    const req = get(url, options, (res) => {
      const peerFingerprint = secure ? (res.socket as TLSSocket).getPeerCertificate().fingerprint256 : undefined;
      const localAddress = res.socket.localAddress; // read now: a closed socket no longer has one
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > 1024 * 1024) req.destroy(Object.assign(new Error('response larger than 1 MiB'), { code: 'E2BIG' }));
        else chunks.push(chunk);
      });
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          body: Buffer.concat(chunks).toString('utf8'),
          ...(peerFingerprint ? { peerFingerprint } : {}),
          ...(localAddress ? { localAddress } : {}),
        }),
      );
      res.on('error', reject);
    });
    req.on('timeout', () =>
      req.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })),
    );
    req.on('error', reject);
  });
};
