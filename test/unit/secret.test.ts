import { describe, expect, it } from 'vitest';
import { generateSecret, SECRET_CHARSET } from '../../src/secret.js';
import { randomBytes } from 'node:crypto';

describe('the Postgres secret', () => {
  it('is 32 characters of A-Za-z0-9 only', () => {
    for (let i = 0; i < 200; i++) {
      const secret = generateSecret(randomBytes);
      expect(secret).toHaveLength(32);
      expect(secret).toMatch(SECRET_CHARSET);
    }
  });

  it('throws away bytes that would bias the alphabet (248 and above)', () => {
    // 247 % 62 = 61 ('9'); 248..255 must be skipped, not folded onto 'A'..'H'.
    const bytes = [248, 255, 250, 0, 247, 61, 62];
    let served = 0;
    const source = (size: number): Buffer =>
      Buffer.from(Array.from({ length: size }, () => bytes[served++ % bytes.length]));
    expect(generateSecret(source, 4)).toBe('A99A');
  });

  it('draws every character of the alphabet about equally often', () => {
    const counts = new Map<string, number>();
    for (let i = 0; i < 2000; i++) for (const c of generateSecret(randomBytes)) counts.set(c, (counts.get(c) ?? 0) + 1);
    expect(counts.size).toBe(62);
    const expected = (2000 * 32) / 62;
    for (const n of counts.values()) expect(Math.abs(n - expected) / expected).toBeLessThan(0.2);
  });
});
