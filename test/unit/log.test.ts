import { describe, expect, it } from 'vitest';
import { createLineLogger } from '../../src/log-line.js';
import { createLogger, pickFormat, SecretRegistry, type Logger } from '../../src/log.js';

function capture(format: 'json' | 'journal' | 'pretty') {
  const lines: string[] = [];
  const secrets = new SecretRegistry();
  const log = createLogger({ level: 'info', format, sink: { write: (l) => lines.push(l) }, secrets });
  return { lines, secrets, log };
}

describe('logging', () => {
  it('writes one JSON line per event, with the step from the child logger', () => {
    const { lines, log } = capture('json');
    log.child({ step: 'env' }).info('written');
    expect(JSON.parse(lines[0])).toMatchObject({ level: 30, step: 'env', msg: 'written' });
  });

  it('redacts a registered secret wherever it appears, even inside a message or an error', () => {
    const { lines, secrets, log } = capture('json');
    secrets.add('S3cretS3cretS3cretS3cretS3cret12');
    log.error(
      { output: 'psql: password S3cretS3cretS3cretS3cretS3cret12 rejected' },
      'got S3cretS3cretS3cretS3cretS3cret12',
    );
    log.info({ password: 'anything', nested: { password: 'x' } }, 'fields');
    expect(lines.join('')).not.toContain('S3cret');
    expect(lines.join('')).not.toContain('anything');
    expect(JSON.parse(lines[0]).msg).toBe('got [REDACTED]');
  });

  it('prefixes journal lines with the syslog priority, so journalctl -p err finds errors', () => {
    const { lines, log } = capture('journal');
    log.error('bad');
    log.warn('meh');
    log.info('fine');
    expect(lines.map((l) => l.slice(0, 3))).toEqual(['<3>', '<4>', '<6>']);
    expect(JSON.parse(lines[0].slice(3)).msg).toBe('bad');
  });

  it('prints a readable line on a terminal, hint included', () => {
    const { lines, log } = capture('pretty');
    log.child({ step: 'tls-cert' }).error({ hint: 'apt install openssl' }, 'openssl is not installed');
    expect(lines[0]).toMatch(
      /^\d\d:\d\d:\d\d ERROR \[tls-cert\] openssl is not installed\n {4}hint: apt install openssl\n$/,
    );
  });

  it('escapes control characters on every format, and a JSON line still carries them exactly', () => {
    // A process name that retitles the terminal and clears it, then a C1 CSI (U+009B) and DEL.
    const hostile = '\u001b]0;PWN\u0007\u001b[2J\u009b2J\u007f';
    // Any control character but tab and newline, as a terminal would obey it.
    // eslint-disable-next-line no-control-regex -- finding control characters is the point
    const raw = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;
    for (const format of ['json', 'journal', 'pretty'] as const) {
      const { lines, log } = capture(format);
      log.child({ step: 'stack-start' }).error({ hint: `stop ${hostile}`, line: hostile }, `listens: ${hostile}`);
      expect(lines.join(''), format).not.toMatch(raw);
      expect(lines.join(''), format).toContain('listens: \\u001b]0;PWN\\u0007\\u001b[2J\\u009b2J\\u007f');
      if (format !== 'pretty') expect(JSON.parse(lines[0].replace(/^<\d>/, '')).msg).toBe(`listens: ${hostile}`);
    }
  });

  it('picks journal under systemd, pretty on a terminal, JSON otherwise', () => {
    expect(pickFormat({ JOURNAL_STREAM: '8:123' }, true)).toBe('journal');
    expect(pickFormat({}, true)).toBe('pretty');
    expect(pickFormat({}, false)).toBe('json');
  });
});

// per-boot's every-boot check logs through createLineLogger (no pino at every boot): journald, a
// terminal and a test see the same lines from it as from pino.
describe('the line logger', () => {
  const thrown = new TypeError('boom');
  const calls = (log: Logger): void => {
    log.info({ instanceId: 'unknown', addresses: ['192.0.2.2', 'fd00::2'] }, 'nothing to do');
    log.warn({ address: 'fe80::1%eth0', from: 'Azure IMDS' }, 'ignoring the address');
    log.info('a message alone');
    log.debug({ hidden: true }, 'below the level');
    log.child({ step: 'tls-cert' }).error({ code: 'x', hint: 'do y' }, 'failed: S3cretS3cretS3cretS3cretS3cret12');
    log.info({ password: 'anything', nested: { password: 'x', DB_PASSWORD: 'y', kept: 1 }, secret: 's' }, 'fields');
    log.error({ code: 'internal', err: thrown }, 'with an error');
    log.info({ text: 'quote " backslash \\ newline \n escape \u001b[31m' }, 'odd "characters"\n');
  };

  for (const format of ['json', 'journal', 'pretty'] as const)
    it(`writes the lines pino writes (${format})`, () => {
      const made = (create: typeof createLogger | typeof createLineLogger): string[] => {
        const lines: string[] = [];
        const secrets = new SecretRegistry();
        secrets.add('S3cretS3cretS3cretS3cretS3cret12');
        calls(create({ level: 'info', format, sink: { write: (l) => lines.push(l) }, secrets }));
        // The clock is the one difference: the time each line was made.
        return lines.map((l) => l.replace(/"time":"[^"]+"/, '"time":"T"').replace(/^\d\d:\d\d:\d\d /, 'T '));
      };
      const ours = made(createLineLogger);
      expect(ours).toHaveLength(7);
      expect(ours).toEqual(made(createLogger));
    });
});
