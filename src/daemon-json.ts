// Docker's log rotation in /etc/docker/daemon.json: the one merge (json-file max-size/max-file into the
// operator's file, every other key kept, the operator's values winning), shared by the first boot's
// docker-logs step and `prepare-image`, which merges it into the image so a first boot finds it done.

import type { Config } from './config.js';
import { FirstbootError } from './errors.js';
import { PATHS } from './paths.js';
import type { System } from './system/index.js';

/** Where the merge says what it did not do: the operator's other driver (a warning), an old dockerd (a note). */
export interface MergeVoice {
  warn(message: string, hint: string): void;
  info(message: string): void;
}

interface Ground {
  sys: System;
  config: Config;
}

/**
 * Reads daemon.json and returns what it must hold with rotation merged in (validated by `dockerd
 * --validate` when the operator's keys are in it), or undefined when it already rotates logs or names
 * another driver. Writes nothing. `rerun` is the command the hints tell the operator to run again.
 */
export async function mergeLogRotation(g: Ground, voice: MergeVoice, rerun: string): Promise<string | undefined> {
  const current = parseDaemonJson(await g.sys.fs.read(PATHS.dockerDaemonJson), rerun);
  const merged = mergeRotation(g, current, voice, rerun);
  if (merged === undefined) return undefined;
  const content = `${JSON.stringify(merged, null, 2)}\n`;
  if (hasOperatorSettings(g, merged)) await validate(g, content, voice, rerun);
  return content;
}

/**
 * Whether the merged file holds anything besides the rotation we would write into an empty one.
 * Ours is known-valid (config.ts checks max-size and max-file), so only an operator's keys or values
 * can make dockerd refuse to start, and only then is `dockerd --validate` worth its ~50 ms.
 */
function hasOperatorSettings(g: Ground, merged: Record<string, unknown>): boolean {
  // mergeRotation has set log-driver to json-file and made log-opts an object.
  const { 'log-driver': _driver, 'log-opts': opts, ...otherKeys } = merged;
  const { 'max-size': maxSize, 'max-file': maxFile, ...otherOpts } = opts as Record<string, unknown>;
  const { dockerLogs } = g.config;
  return (
    Object.keys(otherKeys).length > 0 ||
    Object.keys(otherOpts).length > 0 ||
    maxSize !== dockerLogs.maxSize ||
    maxFile !== dockerLogs.maxFile
  );
}

/** `dockerd --validate` (Docker 23+) on the merged file, before it replaces the real one. */
async function validate(g: Ground, content: string, voice: MergeVoice, rerun: string): Promise<void> {
  const { fs } = g.sys;
  const dir = await fs.privateDir(PATHS.daemonJsonCheck);
  try {
    await fs.write(`${dir}/daemon.json`, content, { mode: 0o644 });
    const result = await g.sys.exec('dockerd', ['--validate', '--config-file', fs.path(`${dir}/daemon.json`)], {
      timeoutMs: 60_000,
    });
    const output = `${result.stdout}${result.stderr}`.trim();
    if (result.notFound || /unknown flag: --validate/.test(output)) {
      voice.info('this dockerd cannot validate a configuration (Docker < 23); merged without validating');
      return;
    }
    if (result.exitCode !== 0) {
      throw new FirstbootError(
        'daemon-json-rejected',
        `dockerd rejects ${PATHS.dockerDaemonJson} with log rotation merged in: ${output.split('\n').pop() ?? ''}; left untouched`,
        {
          hint: `fix ${PATHS.dockerDaemonJson} (\`dockerd --validate --config-file ${PATHS.dockerDaemonJson}\` checks it), then run \`${rerun}\` again`,
        },
      );
    }
  } finally {
    await fs.remove(dir);
  }
}

function parseDaemonJson(text: string | undefined, rerun: string): Record<string, unknown> {
  if (text === undefined || text.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new FirstbootError(
      'daemon-json-invalid',
      // Not the parser's message: it quotes the file's content, which could be anything (a secret).
      `${PATHS.dockerDaemonJson} is not valid JSON; left untouched`,
      {
        cause,
        hint: `fix it (python3 -m json.tool ${PATHS.dockerDaemonJson} shows where), then run \`${rerun}\` again`,
      },
    );
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    throw new FirstbootError(
      'daemon-json-invalid',
      `${PATHS.dockerDaemonJson} must hold a JSON object ({...}); left untouched`,
      {
        hint: `make it an object such as {} (or delete it), then run \`${rerun}\` again`,
      },
    );
  }
  return value as Record<string, unknown>;
}

// Docker's own logging drivers: only these are named in a warning, anything else in the file is not quoted.
const DOCKER_LOG_DRIVERS: readonly string[] = [
  'none',
  'local',
  'syslog',
  'journald',
  'gelf',
  'fluentd',
  'awslogs',
  'splunk',
  'etwlogs',
  'gcplogs',
  'logentries',
];

/** The merged document, or undefined when nothing needs to change. */
function mergeRotation(
  g: Ground,
  current: Record<string, unknown>,
  voice: MergeVoice,
  rerun: string,
): Record<string, unknown> | undefined {
  const driver = current['log-driver'];
  if (driver !== undefined && driver !== 'json-file') {
    // The operator chose another driver (journald and local rotate on their own): theirs wins.
    voice.warn(
      `${PATHS.dockerDaemonJson} sets ${typeof driver === 'string' && DOCKER_LOG_DRIVERS.includes(driver) ? `log-driver ${JSON.stringify(driver)}` : 'another log-driver'}; kept it and added no rotation options`,
      'make sure that driver rotates or limits container logs',
    );
    return undefined;
  }
  const opts = current['log-opts'];
  if (opts !== undefined && (typeof opts !== 'object' || opts === null || Array.isArray(opts))) {
    throw new FirstbootError(
      'daemon-json-invalid',
      `${PATHS.dockerDaemonJson}: "log-opts" must be an object; left untouched`,
      {
        hint: `fix or remove "log-opts", then run \`${rerun}\` again`,
      },
    );
  }
  const logOpts = { ...(opts as Record<string, unknown> | undefined) };
  // Docker wants these values as strings; an operator's own values win.
  logOpts['max-size'] ??= g.config.dockerLogs.maxSize;
  logOpts['max-file'] ??= g.config.dockerLogs.maxFile;
  const merged = { ...current, 'log-driver': 'json-file', 'log-opts': logOpts };
  return JSON.stringify(merged) === JSON.stringify(current) ? undefined : merged;
}
