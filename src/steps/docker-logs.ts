// Docker log rotation: merge json-file max-size/max-file into /etc/docker/daemon.json, keeping every
// other key, so container logs never fill the root disk. Applies only to containers created after
// Docker reloads it, so Docker is restarted here, before the stack exists, and only if the file changed.

import { PATHS } from '../paths.js';
import { FirstbootError } from '../errors.js';
import { restartDockerIfPending } from './lib-docker-restart.js';
import type { Step, StepContext } from './step.js';

export const dockerLogs: Step = {
  id: 'docker-logs',
  description: `container log rotation in ${PATHS.dockerDaemonJson}`,
  async apply(ctx) {
    const { fs } = ctx.sys;
    const text = await fs.read(PATHS.dockerDaemonJson);
    const current = parseDaemonJson(text);
    const merged = mergeRotation(ctx, current);
    if (merged === undefined) {
      // A run that crashed between writing the file and restarting Docker restarts it now.
      const restarted = !ctx.options.skipStack && (await restartDockerIfPending(ctx));
      return {
        changed: restarted,
        summary: `${PATHS.dockerDaemonJson} already rotates logs; kept${restarted ? '; Docker restarted' : ''}`,
      };
    }
    const content = `${JSON.stringify(merged, null, 2)}\n`;
    if (hasOperatorSettings(ctx, merged)) await validate(ctx, content);
    // The marker goes first: if we die after the write, the next run still knows Docker must restart.
    await fs.write(PATHS.dockerRestartPending, `${ctx.sys.now().toISOString()}\n`, { mode: 0o644, dirMode: 0o700 });
    await fs.write(PATHS.dockerDaemonJson, content, { mode: 0o644 });
    // Before the stack is created: rotation applies only to containers created after the restart.
    const restarted = !ctx.options.skipStack && (await restartDockerIfPending(ctx));
    return {
      changed: true,
      summary: `${PATHS.dockerDaemonJson} now rotates container logs (max-size ${ctx.config.dockerLogs.maxSize}, max-file ${ctx.config.dockerLogs.maxFile})${restarted ? '; Docker restarted' : ''}`,
    };
  },
};

/**
 * Whether the merged file holds anything besides the rotation we would write into an empty one.
 * Ours is known-valid (config.ts checks max-size and max-file), so only an operator's keys or values
 * can make dockerd refuse to start, and only then is `dockerd --validate` worth its ~50 ms.
 */
function hasOperatorSettings(ctx: StepContext, merged: Record<string, unknown>): boolean {
  // mergeRotation has set log-driver to json-file and made log-opts an object.
  const { 'log-driver': _driver, 'log-opts': opts, ...otherKeys } = merged;
  const { 'max-size': maxSize, 'max-file': maxFile, ...otherOpts } = opts as Record<string, unknown>;
  const { dockerLogs } = ctx.config;
  return (
    Object.keys(otherKeys).length > 0 ||
    Object.keys(otherOpts).length > 0 ||
    maxSize !== dockerLogs.maxSize ||
    maxFile !== dockerLogs.maxFile
  );
}

/** `dockerd --validate` (Docker 23+) on the merged file, before it replaces the real one. */
async function validate(ctx: StepContext, content: string): Promise<void> {
  const { fs } = ctx.sys;
  const dir = await fs.privateDir(PATHS.daemonJsonCheck);
  try {
    await fs.write(`${dir}/daemon.json`, content, { mode: 0o644 });
    const result = await ctx.sys.exec('dockerd', ['--validate', '--config-file', fs.path(`${dir}/daemon.json`)], {
      timeoutMs: 60_000,
    });
    const output = `${result.stdout}${result.stderr}`.trim();
    if (result.notFound || /unknown flag: --validate/.test(output)) {
      ctx.log.info('this dockerd cannot validate a configuration (Docker < 23); merged without validating');
      return;
    }
    if (result.exitCode !== 0) {
      throw new FirstbootError(
        'daemon-json-rejected',
        `dockerd rejects ${PATHS.dockerDaemonJson} with log rotation merged in: ${output.split('\n').pop() ?? ''}; left untouched`,
        {
          hint: `fix ${PATHS.dockerDaemonJson} (\`dockerd --validate --config-file ${PATHS.dockerDaemonJson}\` checks it), then run \`immich-firstboot\` again`,
        },
      );
    }
  } finally {
    await fs.remove(dir);
  }
}

function parseDaemonJson(text: string | undefined): Record<string, unknown> {
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
        hint: `fix it (python3 -m json.tool ${PATHS.dockerDaemonJson} shows where), then run \`immich-firstboot\` again`,
      },
    );
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    throw new FirstbootError(
      'daemon-json-invalid',
      `${PATHS.dockerDaemonJson} must hold a JSON object ({...}); left untouched`,
      {
        hint: `make it an object such as {} (or delete it), then run \`immich-firstboot\` again`,
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
function mergeRotation(ctx: StepContext, current: Record<string, unknown>): Record<string, unknown> | undefined {
  const driver = current['log-driver'];
  if (driver !== undefined && driver !== 'json-file') {
    // The operator chose another driver (journald and local rotate on their own): theirs wins.
    ctx.warn(
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
        hint: 'fix or remove "log-opts", then run `immich-firstboot` again',
      },
    );
  }
  const logOpts = { ...(opts as Record<string, unknown> | undefined) };
  // Docker wants these values as strings; an operator's own values win.
  logOpts['max-size'] ??= ctx.config.dockerLogs.maxSize;
  logOpts['max-file'] ??= ctx.config.dockerLogs.maxFile;
  const merged = { ...current, 'log-driver': 'json-file', 'log-opts': logOpts };
  return JSON.stringify(merged) === JSON.stringify(current) ? undefined : merged;
}
