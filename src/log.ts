// Logging: pino JSON lines on stdout for journald (with a <N> syslog prefix so `journalctl -p err`
// finds our errors), a readable line per event on a terminal, and every known secret redacted
// (redact.ts: whole or any run of 8 or more of its characters). The format itself is log-line.ts's.

import pino from 'pino';
import type { LogLevel } from './config.js';
import { CENSOR, lineWriter, REDACT_PATHS, type LogFormat, type Logger, type LogSink } from './log-line.js';
import type { SecretRegistry } from './redact.js';
import { withSourcePositions } from './system/stack-trace.js';

export type { Logger, LogFormat, LogSink } from './log-line.js';
export { pickFormat } from './log-line.js';
export { SecretRegistry } from './redact.js';

export function createLogger(options: {
  level: LogLevel;
  format: LogFormat;
  sink: LogSink;
  secrets: SecretRegistry;
}): Logger {
  const write = lineWriter(options.format, options.sink, options.secrets);
  return pino(
    {
      level: options.level,
      base: undefined, // no pid/hostname on every line: journald records both
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: CENSOR },
      formatters: { level: (_label, number) => ({ level: number }) },
      // An error's stack (code internal) names the real file and line, ours or a dependency's.
      serializers: { err: serializeError },
    },
    { write },
  );
}

/** pino's own error serializer (message and stack with every cause), the stack's frames mapped to their sources. */
function serializeError(error: unknown): unknown {
  const serialized: unknown = pino.stdSerializers.err(error as Error);
  if (serialized && typeof serialized === 'object' && 'stack' in serialized && typeof serialized.stack === 'string')
    serialized.stack = withSourcePositions(serialized.stack);
  return serialized;
}
