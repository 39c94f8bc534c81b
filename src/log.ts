// Logging: pino JSON lines on stdout for journald (with a <N> syslog prefix so `journalctl -p err`
// finds our errors), a readable line per event on a terminal, and every known secret redacted
// (redact.ts: whole or any run of 8 or more of its characters).

import pino, { type Logger } from 'pino';
import type { LogLevel } from './config.js';
import { printable, type SecretRegistry } from './redact.js';
import { withSourcePositions } from './system/stack-trace.js';

export type { Logger } from 'pino';
export { SecretRegistry } from './redact.js';

export interface LogSink {
  write(line: string): void;
}

export type LogFormat = 'json' | 'journal' | 'pretty';

// pino's numeric levels to syslog priorities (sd-daemon(3)): fatal=crit, error=err, warn=warning, info, debug.
const SYSLOG: Record<number, number> = { 60: 2, 50: 3, 40: 4, 30: 6, 20: 7, 10: 7 };
const NAMES: Record<number, string> = { 60: 'FATAL', 50: 'ERROR', 40: 'WARN ', 30: 'INFO ', 20: 'DEBUG', 10: 'TRACE' };

/** journald when systemd connected stdout to the journal, pretty on a terminal, else JSON lines. */
export function pickFormat(env: Readonly<Record<string, string | undefined>>, isTTY: boolean): LogFormat {
  if (env.JOURNAL_STREAM) return 'journal';
  return isTTY ? 'pretty' : 'json';
}

export function createLogger(options: {
  level: LogLevel;
  format: LogFormat;
  sink: LogSink;
  secrets: SecretRegistry;
}): Logger {
  const { format, sink, secrets } = options;
  const destination = {
    write(line: string): void {
      const clean = secrets.scrub(line);
      const level = Number(/^\{"level":(\d+)/.exec(clean)?.[1] ?? 30);
      // Control characters escaped last: the readable line is made from the decoded JSON.
      if (format === 'journal') sink.write(printable(`<${SYSLOG[level] ?? 6}>${clean}`));
      else if (format === 'pretty') sink.write(printable(prettyLine(clean)));
      else sink.write(printable(clean));
    },
  };
  return pino(
    {
      level: options.level,
      base: undefined, // no pid/hostname on every line: journald records both
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: ['secret', 'password', '*.password', 'DB_PASSWORD', '*.DB_PASSWORD'], censor: '[REDACTED]' },
      formatters: { level: (_label, number) => ({ level: number }) },
      // An error's stack (code internal) names the real file and line, ours or a dependency's.
      serializers: { err: serializeError },
    },
    destination,
  );
}

/** pino's own error serializer (message and stack with every cause), the stack's frames mapped to their sources. */
function serializeError(error: unknown): unknown {
  const serialized: unknown = pino.stdSerializers.err(error as Error);
  if (serialized && typeof serialized === 'object' && 'stack' in serialized && typeof serialized.stack === 'string')
    serialized.stack = withSourcePositions(serialized.stack);
  return serialized;
}

function prettyLine(json: string): string {
  try {
    const { level, time, step, msg, err, hint, ...rest } = JSON.parse(json) as Record<string, unknown>;
    const clock = typeof time === 'string' ? time.slice(11, 19) : '';
    const extras = Object.entries(rest)
      .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
      .join(' ');
    const error = err && typeof err === 'object' && 'message' in err ? `\n    cause: ${String(err.message)}` : '';
    const hintLine = typeof hint === 'string' ? `\n    hint: ${hint}` : '';
    return `${clock} ${NAMES[Number(level)] ?? 'INFO '} ${step ? `[${text(step)}] ` : ''}${text(msg ?? '')}${extras ? `  ${extras}` : ''}${error}${hintLine}\n`;
  } catch {
    return json;
  }
}

/** A log field as a person reads it: strings as they are, anything else as JSON. */
function text(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}
