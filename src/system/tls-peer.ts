// The certificate a TLS server presents, from a bare handshake: no request, so no answer to wait for
// from whatever is behind it. Which certificate nginx serves right now is a question of the handshake
// alone. node:tls is imported at the first handshake, as http.ts does for node:https.

import { deadline, endedBy } from './deadline.js';

export interface PeerRequest {
  host: string;
  port: number;
  /** The TLS server name (SNI) to ask for; never an IP address (RFC 6066). */
  servername?: string;
  /** The deadline for connect and handshake together (not an idle timeout). */
  timeoutMs: number;
}

/**
 * The SHA-256 fingerprint ("AB:CD:...") of the certificate the server presents. Any certificate is
 * accepted: the caller compares the fingerprint with the one it expects instead of trusting a CA.
 * Rejects with an Error whose `code` is the errno (ECONNREFUSED, ...) or ETIMEDOUT (naming the deadline).
 */
export type PeerFingerprint = (request: PeerRequest) => Promise<string>;

export const peerFingerprintReal: PeerFingerprint = async ({ host, port, servername, timeoutMs }) => {
  const bound = deadline(timeoutMs, `no TLS handshake with ${host}:${port}`);
  try {
    const { connect } = await import('node:tls');
    return await new Promise<string>((resolve, reject) => {
      const socket = connect({ host, port, servername, rejectUnauthorized: false }, () => {
        const fingerprint = socket.getPeerCertificate().fingerprint256;
        socket.destroy();
        if (fingerprint) resolve(fingerprint);
        else reject(Object.assign(new Error('the server presented no certificate'), { code: 'ENOCERT' }));
      });
      socket.on('error', (error: Error) => reject(endedBy(bound.signal, error)));
      // tls.connect documents no `signal` in Node 18: the deadline destroys the socket itself.
      const abort = () => socket.destroy(bound.signal.reason as Error);
      if (bound.signal.aborted) abort();
      else bound.signal.addEventListener('abort', abort, { once: true });
    });
  } finally {
    bound.clear();
  }
};
