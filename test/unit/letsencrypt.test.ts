// Let's Encrypt's decisions that no pebble can provoke: a rate limit and its date (pebble has no rate
// limits), the backoff over many failures, and when per-boot tries again. certbot's wording is Let's
// Encrypt's own (https://letsencrypt.org/docs/rate-limits/) as certbot 2.x prints it.
import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG, type Config } from '../../src/config.js';
import { failedFacts, parseCertbotFailure, retryDue } from '../../src/letsencrypt.js';
import type { LetsEncryptFacts } from '../../src/state.js';

const config: Config & { domain: string } = {
  ...DEFAULT_CONFIG,
  domain: 'photos.example.org',
  letsencrypt: { ...DEFAULT_CONFIG.letsencrypt, email: 'owner@example.org' },
};
const NOW = new Date('2026-11-30T10:00:00.000Z');
const HOUR = 3_600_000;

describe("certbot's failure, in one line", () => {
  it('reads a rate limit and the date the CA gave, and says nothing is asked before it', () => {
    const output = [
      'Saving debug log to /var/log/letsencrypt/letsencrypt.log',
      'Requesting a certificate for photos.example.org',
      'An unexpected error occurred:',
      'Error creating new order :: too many certificates (5) already issued for this exact set of domains in the last 168 hours: photos.example.org, retry after 2026-12-02T19:24:01Z: see https://letsencrypt.org/docs/rate-limits/#new-certificates-per-exact-set-of-hostnames',
      'Ask for help or search for solutions at https://community.letsencrypt.org. See the logfile /var/log/letsencrypt/letsencrypt.log or re-run Certbot with -v for more details.',
    ].join('\n');
    const outcome = parseCertbotFailure(output, config);
    expect(outcome).toMatchObject({ ok: false, rateLimitedUntil: '2026-12-02T19:24:01.000Z' });
    expect(outcome.reason).toMatch(
      /^the CA refused: rate limited until 2026-12-02T19:24:01\.000Z: too many certificates/,
    );
    expect(outcome.reason!.length).toBeLessThanOrEqual(240);
    expect(outcome.hint).toContain('nothing asks the CA again before 2026-12-02T19:24:01.000Z');
  });

  it('reads a failed challenge and names port 80', () => {
    const output = [
      'Certbot failed to authenticate some domains (authenticator: webroot). The Certificate Authority reported these problems:',
      '  Domain: photos.example.org',
      '  Type:   connection',
      '  Detail: 203.0.113.9: Fetching http://photos.example.org/.well-known/acme-challenge/abc: Timeout during connect (likely firewall problem)',
      '',
      'Hint: The Certificate Authority failed to download the temporary challenge files created by Certbot.',
    ].join('\n');
    const outcome = parseCertbotFailure(output, config);
    expect(outcome.reason).toBe(
      'the CA could not validate photos.example.org: connection: 203.0.113.9: Fetching http://photos.example.org/.well-known/acme-challenge/abc: Timeout during connect (likely firewall problem)',
    );
    expect(outcome.hint).toContain('port 80');
    expect(outcome.rateLimitedUntil).toBeUndefined();
  });
});

describe('when per-boot asks Let’s Encrypt again', () => {
  const failed = (failures: number, before?: LetsEncryptFacts): LetsEncryptFacts =>
    Array.from({ length: failures }).reduce<LetsEncryptFacts | undefined>(
      (facts) => failedFacts(facts, config.domain, { ok: false, reason: 'down' }, NOW, 'boot-1'),
      before,
    )!;

  it('backs off 1, 2, 4 … hours after failures in a row, never more than a week', () => {
    const next = (n: number) => Date.parse(failed(n).nextAttemptAfter!) - NOW.getTime();
    expect([1, 2, 3, 4].map(next)).toEqual([1, 2, 4, 8].map((h) => h * HOUR));
    expect(next(20)).toBe(168 * HOUR);
  });

  it('never before a rate-limit date, even once the backoff is over', () => {
    const limited = failedFacts(
      undefined,
      config.domain,
      { ok: false, reason: 'rate limited', rateLimitedUntil: '2026-12-05T00:00:00.000Z' },
      NOW,
      'boot-1',
    );
    expect(limited.nextAttemptAfter).toBe('2026-12-05T00:00:00.000Z');
    expect(retryDue(config, limited, new Date('2026-12-04T23:59:00Z'), 'boot-2')).toBeUndefined();
    expect(retryDue(config, limited, new Date('2026-12-05T00:00:01Z'), 'boot-2')).toContain('failed');
  });

  it('at most once per boot, not at all once issued for this domain, and anew for another domain', () => {
    const once = failed(1);
    const after = new Date(NOW.getTime() + 2 * HOUR);
    expect(retryDue(config, once, after, 'boot-1')).toBeUndefined();
    expect(retryDue(config, once, after, 'boot-2')).toBeDefined();
    const issued: LetsEncryptFacts = { state: 'issued', domain: config.domain };
    expect(retryDue(config, issued, after, 'boot-2')).toBeUndefined();
    expect(retryDue({ ...config, domain: 'other.example.org' }, issued, after, 'boot-2')).toContain(
      'not tried for it yet',
    );
    expect(
      retryDue({ ...config, letsencrypt: DEFAULT_CONFIG.letsencrypt }, undefined, after, 'boot-2'),
    ).toBeUndefined();
  });
});
