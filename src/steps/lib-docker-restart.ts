// Restarting Docker so a changed daemon.json takes effect before the stack's containers are created.

import { dockerAnswers } from '../docker.js';
import { FirstbootError } from '../errors.js';
import { PATHS } from '../paths.js';
import type { StepContext } from './step.js';

/**
 * Restarts Docker if daemon.json changed since Docker last loaded it (the marker says so), so that
 * the stack's containers, created next, get the rotation. The marker survives a crash between the
 * write and the restart, and a `--skip-stack` run whose restart is left to the next plain run.
 */
export async function restartDockerIfPending(ctx: StepContext): Promise<boolean> {
  if (!(await ctx.sys.fs.exists(PATHS.dockerRestartPending))) return false;
  const configured = ctx.config.dockerLogs.restartCommand;
  let command: string[];
  if (configured !== 'auto') command = configured;
  // ignore-dependencies: our unit has Requires=docker.service, and a plain restart of Docker would
  // propagate to it, so systemd would SIGTERM the very first boot that asked for the restart.
  else if (ctx.sys.hostHasSystemd() && ctx.sys.onHost)
    command = ['systemctl', 'restart', '--job-mode=ignore-dependencies', 'docker.service'];
  else {
    ctx.warn(
      `${PATHS.dockerDaemonJson} changed, but Docker was not restarted (no systemd here, or --root is not /)`,
      'restart Docker before the containers are created (or set dockerLogs.restartCommand), or they keep unrotated logs',
    );
    await ctx.sys.fs.remove(PATHS.dockerRestartPending);
    return false;
  }
  await ctx.notify.status('Restarting Docker to apply log rotation');
  const [file, ...args] = command as [string, ...string[]];
  const result = await ctx.sys.exec(file, args, { timeoutMs: 180_000 });
  if (result.exitCode !== 0) {
    throw new FirstbootError(
      'docker-restart-failed',
      `\`${command.join(' ')}\` failed: ${result.stderr.trim() || result.stdout.trim() || `exit ${result.exitCode}`}`,
      {
        hint: `check \`journalctl -u docker.service\`; ${PATHS.dockerDaemonJson} may hold a setting this Docker rejects`,
      },
    );
  }
  await waitForDocker(ctx, 60);
  await ctx.sys.fs.remove(PATHS.dockerRestartPending);
  ctx.log.info({ command: command.join(' ') }, 'Docker restarted to apply log rotation');
  return true;
}

async function waitForDocker(ctx: StepContext, seconds: number): Promise<void> {
  const deadline = ctx.sys.now().getTime() + seconds * 1000;
  for (;;) {
    const info = await dockerAnswers(ctx);
    if (info.answers) return;
    if (ctx.sys.now().getTime() >= deadline) {
      throw new FirstbootError(
        'docker-down',
        `Docker did not answer within ${seconds}s after the restart: ${info.stderr.trim()}`,
        {
          hint: `check \`systemctl status docker.service\` and \`journalctl -u docker.service\`, then run \`immich-firstboot\` again`,
        },
      );
    }
    await ctx.sys.sleep(500);
  }
}
