// `run --data-disk-only`, the unit's full-privilege ExecStartPre=, on every first boot's critical path. Nearly
// every VM has no data disk (dataDisk: none, the default): then it reads config.yaml's text, sees that nothing
// in it can configure dataDisk, logs one line with log-line.ts's logger and exits, without loading the YAML
// parser, pino, the runner or the steps, and without writing the journal. Anything it is unsure of goes to the
// full run, which parses config.yaml (and reports an invalid one).

import { EXIT, type ExitCode } from '../errors.js';
import { createLineLogger, pickFormat, type LogSink } from '../log-line.js';
import { PATHS } from '../paths.js';
import { SecretRegistry } from '../redact.js';
import type { System } from '../system/index.js';

export const NO_DATA_DISK = 'no data disk configured (dataDisk: none); nothing to do before the rest of the first boot';

/**
 * Whether the YAML text may set dataDisk (or logLevel, which decides whether the line is logged): true unless
 * that is certain not to be so. A YAML key is made of the characters of one line (a multi-line scalar is
 * folded with a space or a newline), unless an escape (`\`) or a tag (`!`, e.g. `!!binary`) makes it; and a
 * line whose first character is `#` is a comment, or else content that puts its `#` into the key. So: no
 * "datadisk" or "loglevel" in any case, no `\` and no `!` in any other line → the key cannot be there.
 */
export function mayConfigure(text: string): boolean {
  return text
    .split(/\r\n|\r|\n/)
    .filter((line) => !line.trimStart().startsWith('#'))
    .some((line) => /datadisk|loglevel|[\\!]/i.test(line));
}

/** EXIT.ok when there is certainly nothing to do (the line logged), else undefined: the full run decides. */
export async function quickDataDiskOnly(
  sys: System,
  io: { stdout: LogSink & { isTTY?: boolean }; env: NodeJS.ProcessEnv },
): Promise<ExitCode | undefined> {
  if (io.env.IMMICH_FIRSTBOOT_IMDS_URL) return undefined;
  const text = await sys.fs.read(PATHS.config).catch(() => null);
  if (text === null || (text !== undefined && mayConfigure(text))) return undefined;
  const format = pickFormat(io.env, io.stdout.isTTY === true);
  createLineLogger({ level: 'info', format, sink: io.stdout, secrets: new SecretRegistry() }).info(NO_DATA_DISK);
  return EXIT.ok;
}
