import { describe, expect, it } from 'vitest';
import { formatMotd } from '../../../src/commands/motd.js';
import type { StatusReport } from '../../../src/commands/status.js';

const base: StatusReport = {
  status: 'done',
  step: null,
  detail: '',
  errors: [],
  warnings: [],
  startedAt: null,
  updatedAt: null,
  finishedAt: null,
  completed: [],
  pending: [],
  instanceId: null,
  addresses: ['192.0.2.10', '2001:db8::1'],
  certFingerprint: null,
  adminRegistered: false,
  clone: null,
  addressChange: null,
  instanceIdUpgrade: null,
  letsencrypt: {
    state: 'off',
    domain: null,
    reason: null,
    hint: null,
    nextAttemptAfter: null,
    rateLimitedUntil: null,
    notAfter: null,
    urls: null,
  },
};

describe('the login banner', () => {
  it('shows the web URLs and that the first admin still has to sign up', () => {
    const text = formatMotd(base);
    expect(text).toContain('https://192.0.2.10/  https://[2001:db8::1]/');
    expect(text).toContain('no admin yet');
  });
  it('names the running step', () => {
    expect(formatMotd({ ...base, status: 'running', step: 'stack-ready' })).toContain('running (step stack-ready)');
  });
  it('shows the failure with its hint', () => {
    const error = {
      step: 'stack-start',
      at: '',
      code: 'x',
      message: 'Docker is not running',
      hint: 'systemctl start docker',
    };
    const text = formatMotd({ ...base, status: 'error', step: 'stack-start', errors: [error] });
    expect(text).toContain('FAILED at stack-start: Docker is not running');
    expect(text).toContain('hint: systemctl start docker');
  });
  it('says the VM is a clone, of which instance, and what became of the secret', () => {
    const clone = {
      at: '2026-11-28T12:00:00.000Z',
      fromInstanceId: 'aaaa',
      toInstanceId: 'bbbb',
      secret: 'kept (Postgres holds data)' as const,
    };
    expect(formatMotd({ ...base, clone })).toContain(
      'This VM is a copy of instance aaaa, noticed 2026-11-28T12:00:00.000Z: new certificate and credentials; Postgres secret kept (Postgres holds data)',
    );
  });
  it('says when new addresses met a certificate that is not ours, and stays quiet when ours was renewed', () => {
    const change = {
      at: '',
      from: ['10.0.0.4'],
      to: ['10.0.0.9'],
      certificate: 'not ours (nginx serves /etc/letsencrypt/live/x/fullchain.pem): left alone',
    };
    expect(formatMotd({ ...base, addressChange: change })).toContain(
      'Addresses changed (10.0.0.9); the certificate nginx serves is not ours',
    );
    expect(formatMotd({ ...base, addressChange: { ...change, certificate: 'renewed' } })).not.toContain(
      'Addresses changed',
    );
  });

  it("leads with https://DOMAIN/ once Let's Encrypt issued, and says why when it did not", () => {
    const issued = formatMotd({
      ...base,
      letsencrypt: {
        ...base.letsencrypt,
        state: 'issued',
        domain: 'photos.example.org',
        notAfter: '2027-03-01T00:00:00.000Z',
        urls: { web: 'https://photos.example.org/', mobile: 'https://photos.example.org/api' },
      },
    });
    expect(issued.split('\n')[0]).toBe(
      'Immich: https://photos.example.org/  https://192.0.2.10/  https://[2001:db8::1]/',
    );
    expect(issued).toContain('mobile app: https://photos.example.org/api');
    const pending = formatMotd({
      ...base,
      letsencrypt: {
        ...base.letsencrypt,
        state: 'pending-dns',
        domain: 'photos.example.org',
        reason: 'photos.example.org resolves to 203.0.113.9',
      },
    });
    expect(pending).toContain(
      "Let's Encrypt: pending-dns for photos.example.org: photos.example.org resolves to 203.0.113.9; tried again at the next boot",
    );
  });
});
