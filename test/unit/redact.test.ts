import { describe, expect, it } from 'vitest';
import { printable, SecretRegistry } from '../../src/redact.js';

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

describe('text for a terminal', () => {
  it('escapes C0 controls but tab and newline, DEL and C1, and nothing else', () => {
    expect(printable('\u001b]0;PWN\u0007\u001b[2J')).toBe('\\u001b]0;PWN\\u0007\\u001b[2J');
    expect(printable('a\rb\bc\u0000d\u007fe\u0085f\u009bg')).toBe('a\\u000db\\u0008c\\u0000d\\u007fe\\u0085f\\u009bg');
    const ordinary = 'status: error\n\tstep: stack-start → tls-cert, é ß 日本 \u00a0 \u00ff';
    expect(printable(ordinary)).toBe(ordinary);
  });

  it('keeps JSON text meaning the same thing', () => {
    const value = { msg: 'x\u001b[2J\u009b\u007f\\u001b "q"', list: ['\u0085'] };
    const text = printable(JSON.stringify(value, null, 2));
    expect(text).not.toMatch(/[\u007f-\u009f]/);
    expect(JSON.parse(text)).toEqual(value);
  });
});
