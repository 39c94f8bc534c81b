// Our log lines without pino: the format (journald's <N> prefix, a readable line on a terminal, else JSON
// lines; every known secret redacted, control characters escaped), which log.ts gives pino as its
// destination, and a line logger writing the same lines pino writes, for per-boot's every-boot check,
// which must not wait for pino to load at every boot.

import type { LogLevel } from './config.js';
import { printable, type SecretRegistry } from './redact.js';
import { withSourcePositions } from './system/stack-trace.js';

export interface LogSink {
  write(line: string): void;
}

export type LogFormat = 'json' | 'journal' | 'pretty';

/** A log call, in pino's two forms: fields and a message, or a message alone. */
export interface LogFn {
  (fields: object, msg?: string): void;
  (msg: string): void;
}

/** What the code logs through: pino's logger (log.ts), or the line logger below. */
export interface Logger {
  error: LogFn;
  warn: LogFn;
  info: LogFn;
  debug: LogFn;
  child(bindings: Record<string, unknown>): Logger;
}

/** pino's numeric levels. */
export const LEVELS: Record<LogLevel, number> = { fatal: 60, error: 50, warn: 40, info: 30, debug: 20, trace: 10 };

/** Fields whose value never reaches a line (pino's `redact` paths: a key, or a key one level down). */
export const REDACTED_KEYS = ['secret', 'password', 'DB_PASSWORD'] as const;
export const REDACT_PATHS = ['secret', 'password', '*.password', 'DB_PASSWORD', '*.DB_PASSWORD'];
export const CENSOR = '[REDACTED]';

// pino's numeric levels to syslog priorities (sd-daemon(3)): fatal=crit, error=err, warn=warning, info, debug.
const SYSLOG: Record<number, number> = { 60: 2, 50: 3, 40: 4, 30: 6, 20: 7, 10: 7 };
const NAMES: Record<number, string> = { 60: 'FATAL', 50: 'ERROR', 40: 'WARN ', 30: 'INFO ', 20: 'DEBUG', 10: 'TRACE' };

/** journald when systemd connected stdout to the journal, pretty on a terminal, else JSON lines. */
export function pickFormat(env: Readonly<Record<string, string | undefined>>, isTTY: boolean): LogFormat {
  if (env.JOURNAL_STREAM) return 'journal';
  return isTTY ? 'pretty' : 'json';
}

/** Writes one JSON line (`{"level":N,...}\n`, as pino makes it) to the sink in the chosen format. */
export function lineWriter(format: LogFormat, sink: LogSink, secrets: SecretRegistry): (line: string) => void {
  return (line) => {
    const clean = secrets.scrub(line);
    const level = Number(/^\{"level":(\d+)/.exec(clean)?.[1] ?? 30);
    // Control characters escaped last: the readable line is made from the decoded JSON.
    if (format === 'journal') sink.write(printable(`<${SYSLOG[level] ?? 6}>${clean}`));
    else if (format === 'pretty') sink.write(printable(prettyLine(clean)));
    else sink.write(printable(clean));
  };
}

/**
 * The lines pino writes with log.ts's options (`{"level":30,"time":"…",…fields,"msg":"…"}`, the same keys
 * redacted, an `err` with its stack's source positions), without loading pino.
 */
export function createLineLogger(
  options: { level: LogLevel; format: LogFormat; sink: LogSink; secrets: SecretRegistry },
  bindings: Record<string, unknown> = {},
): Logger {
  const write = lineWriter(options.format, options.sink, options.secrets);
  const at =
    (level: number): LogFn =>
    (first: object | string, msg?: string): void => {
      if (level < LEVELS[options.level]) return;
      const fields = typeof first === 'string' ? {} : censored(first);
      const text = typeof first === 'string' ? first : msg;
      const line = { level, time: new Date().toISOString(), ...bindings, ...fields };
      write(`${JSON.stringify(text === undefined ? line : { ...line, msg: text })}\n`);
    };
  return {
    error: at(LEVELS.error),
    warn: at(LEVELS.warn),
    info: at(LEVELS.info),
    debug: at(LEVELS.debug),
    child: (more) => createLineLogger(options, { ...bindings, ...more }),
  };
}

function censored(fields: object): Record<string, unknown> {
  const hide = (o: Record<string, unknown>): Record<string, unknown> =>
    Object.fromEntries(
      Object.entries(o).map(([k, v]) => [k, (REDACTED_KEYS as readonly string[]).includes(k) ? CENSOR : v]),
    );
  const out = hide(fields as Record<string, unknown>);
  for (const [k, v] of Object.entries(out))
    if (v && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Error))
      out[k] = hide(v as Record<string, unknown>);
  if (out.err instanceof Error) out.err = serializeError(out.err);
  return out;
}

function serializeError(error: Error): Record<string, unknown> {
  return { type: error.name, message: error.message, stack: error.stack && withSourcePositions(error.stack) };
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
