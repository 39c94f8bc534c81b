import { describe, expect, it } from 'vitest';
import { SecretRegistry } from '../../src/redact.js';

const S = 'Abcdefgh0123456789ijklmnopQRSTUV';

describe('the redaction', () => {
  const secrets = new SecretRegistry();
  secrets.add(S);

  it('redacts the whole secret wherever it is', () => {
    expect(secrets.scrub(`a ${S} b ${S}`)).toBe('a [REDACTED] b [REDACTED]');
  });

  it('redacts every run of 8 or more of its characters, at either end or in the middle', () => {
    expect(secrets.scrub(`x${S.slice(5)}y`)).toBe('x[REDACTED]y');
    expect(secrets.scrub(`x${S.slice(0, 8)}y`)).toBe('x[REDACTED]y');
    expect(secrets.scrub(`x${S.slice(10, 18)}y${S.slice(20, 31)}`)).toBe('x[REDACTED]y[REDACTED]');
    // The 27 characters a 40-character quote of "DB_PASSWORD: <secret>" carried.
    expect(secrets.scrub(JSON.stringify(`DB_PASSWORD: ${S}`.slice(0, 40)))).toBe('"DB_PASSWORD: [REDACTED]"');
  });

  it('leaves runs of 7 characters and unrelated text alone', () => {
    expect(secrets.scrub(`x${S.slice(3, 10)}y`)).toBe(`x${S.slice(3, 10)}y`);
    expect(secrets.scrub('first boot done; see /root/immich-credentials.txt')).toBe(
      'first boot done; see /root/immich-credentials.txt',
    );
  });

  it('catches a secret as a JSON line carries it (escaped quotes and backslashes)', () => {
    const odd = new SecretRegistry();
    odd.add('pa"ss\\word-12345');
    expect(odd.scrub(JSON.stringify({ msg: 'x pa"ss\\word-12345 y' }))).toBe('{"msg":"x [REDACTED] y"}');
  });

  it('ignores a secret shorter than 8 characters (it would redact common words)', () => {
    const short = new SecretRegistry();
    short.add('abc');
    expect(short.scrub('abc')).toBe('abc');
  });
});
