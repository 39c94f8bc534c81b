// Docker log rotation: merge json-file max-size/max-file into /etc/docker/daemon.json, keeping every
// other key, so container logs never fill the root disk. Applies to containers created afterwards.

import { PATHS } from '../paths.js';
import { FirstbootError } from '../errors.js';
import type { Step, StepContext } from './step.js';

export const dockerLogs: Step = {
  id: 'docker-logs',
  description: `container log rotation in ${PATHS.dockerDaemonJson}`,
  async apply(ctx) {
    const { fs } = ctx.sys;
    const text = await fs.read(PATHS.dockerDaemonJson);
    const current = parseDaemonJson(text);
    const merged = mergeRotation(ctx, current);
    if (merged === undefined) return { changed: false, summary: `${PATHS.dockerDaemonJson} already rotates logs; kept` };
    await fs.write(PATHS.dockerDaemonJson, `${JSON.stringify(merged, null, 2)}\n`, { mode: 0o644 });
    await restartDocker(ctx);
    return { changed: true, summary: `${PATHS.dockerDaemonJson} now rotates container logs (max-size ${ctx.config.dockerLogs.maxSize}, max-file ${ctx.config.dockerLogs.maxFile})` };
  },
};

function parseDaemonJson(text: string | undefined): Record<string, unknown> {
  if (text === undefined || text.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new FirstbootError('daemon-json-invalid', `${PATHS.dockerDaemonJson} is not valid JSON (${(cause as Error).message}); left untouched`, {
      cause,
      hint: `fix it (python3 -m json.tool ${PATHS.dockerDaemonJson} shows where), then run \`immich-firstboot\` again`,
    });
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    throw new FirstbootError('daemon-json-invalid', `${PATHS.dockerDaemonJson} must hold a JSON object ({...}); left untouched`, {
      hint: `make it an object such as {} (or delete it), then run \`immich-firstboot\` again`,
    });
  }
  return value as Record<string, unknown>;
}

/** The merged document, or undefined when nothing needs to change. */
function mergeRotation(ctx: StepContext, current: Record<string, unknown>): Record<string, unknown> | undefined {
  const driver = current['log-driver'];
  if (driver !== undefined && driver !== 'json-file') {
    // The operator chose another driver (journald and local rotate on their own): theirs wins.
    ctx.warn(`${PATHS.dockerDaemonJson} sets log-driver "${String(driver)}"; kept it and added no rotation options`, 'make sure that driver rotates or limits container logs');
    return undefined;
  }
  const opts = current['log-opts'];
  if (opts !== undefined && (typeof opts !== 'object' || opts === null || Array.isArray(opts))) {
    throw new FirstbootError('daemon-json-invalid', `${PATHS.dockerDaemonJson}: "log-opts" must be an object; left untouched`, {
      hint: 'fix or remove "log-opts", then run `immich-firstboot` again',
    });
  }
  const logOpts = { ...(opts as Record<string, unknown> | undefined) };
  // Docker wants these values as strings; an operator's own values win.
  logOpts['max-size'] ??= ctx.config.dockerLogs.maxSize;
  logOpts['max-file'] ??= ctx.config.dockerLogs.maxFile;
  const merged = { ...current, 'log-driver': 'json-file', 'log-opts': logOpts };
  return JSON.stringify(merged) === JSON.stringify(current) ? undefined : merged;
}

async function restartDocker(ctx: StepContext): Promise<void> {
  if (ctx.options.skipStack) return;
  if (!ctx.sys.hostHasSystemd() || ctx.sys.fs.root !== '/') {
    ctx.warn('log rotation is configured, but Docker was not restarted (no systemd here, or --root is not /)', 'restart Docker before creating containers, or they keep unrotated logs');
    return;
  }
  const result = await ctx.sys.exec('systemctl', ['restart', 'docker.service'], { timeoutMs: 120_000 });
  if (result.exitCode !== 0) {
    throw new FirstbootError('docker-restart-failed', `systemctl restart docker.service failed: ${result.stderr.trim() || `exit ${result.exitCode}`}`, {
      hint: `check \`journalctl -u docker.service\`; ${PATHS.dockerDaemonJson} may hold a setting this Docker rejects`,
    });
  }
  ctx.log.info('docker.service restarted to apply log rotation');
}
