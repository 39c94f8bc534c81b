// Random bytes, with node:crypto loaded at the first call: it pulls in Node's streams, a few
// milliseconds that `status` and the login's MOTD, which never need randomness, would pay at start.

import { createRequire } from 'node:module';
import type * as NodeCrypto from 'node:crypto';

let crypto: typeof NodeCrypto | undefined;

export function randomBytes(size: number): Buffer {
  crypto ??= createRequire(import.meta.url)('node:crypto') as typeof NodeCrypto;
  return crypto.randomBytes(size);
}
