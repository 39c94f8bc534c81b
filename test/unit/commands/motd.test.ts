import { describe, expect, it } from 'vitest';
import { formatMotd } from '../../../src/commands/motd.js';
import type { StatusReport } from '../../../src/commands/status.js';

const base: StatusReport = {
  status: 'done', step: null, detail: '', errors: [], warnings: [], startedAt: null, updatedAt: null, finishedAt: null,
  completed: [], pending: [], instanceId: null, addresses: ['192.0.2.10', '2001:db8::1'], certFingerprint: null, adminRegistered: false,
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
    const error = { step: 'stack-start', at: '', code: 'x', message: 'Docker is not running', hint: 'systemctl start docker' };
    const text = formatMotd({ ...base, status: 'error', step: 'stack-start', errors: [error] });
    expect(text).toContain('FAILED at stack-start: Docker is not running');
    expect(text).toContain('hint: systemctl start docker');
  });
});
