// The Postgres secret: 32 characters of A-Za-z0-9 (Immich's rule for DB_PASSWORD; other characters
// break its compose file), from the OS CSPRNG, without modulo bias.

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
export const SECRET_LENGTH = 32;
export const SECRET_CHARSET = /^[A-Za-z0-9]+$/;

/** Rejection sampling: bytes >= 248 (the largest multiple of 62 that fits a byte) are thrown away. */
export function generateSecret(randomBytes: (size: number) => Buffer, length = SECRET_LENGTH): string {
  const limit = 256 - (256 % ALPHABET.length);
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte < limit) out += ALPHABET[byte % ALPHABET.length];
      if (out.length === length) break;
    }
  }
  return out;
}
