// Docker log rotation: merge json-file max-size/max-file into /etc/docker/daemon.json, keeping every
// other key, so container logs never fill the root disk. Applies only to containers created after
// Docker reloads it, so Docker is restarted here, before the stack exists, and only if the file changed.
// On an image prepared with `prepare-image` the file already rotates logs and Docker is left running.

import { mergeLogRotation } from '../daemon-json.js';
import { PATHS } from '../paths.js';
import { restartDockerIfPending } from './lib-docker-restart.js';
import type { Step } from './step.js';

export const dockerLogs: Step = {
  id: 'docker-logs',
  description: `container log rotation in ${PATHS.dockerDaemonJson}`,
  async apply(ctx) {
    const { fs } = ctx.sys;
    const voice = {
      warn: (message: string, hint: string) => ctx.warn(message, hint),
      info: (m: string) => ctx.log.info(m),
    };
    const content = await mergeLogRotation(ctx, voice, 'immich-firstboot');
    if (content === undefined) {
      // A run that crashed between writing the file and restarting Docker restarts it now.
      const restarted = !ctx.options.skipStack && (await restartDockerIfPending(ctx));
      return {
        changed: restarted,
        summary: `${PATHS.dockerDaemonJson} already rotates logs; kept${restarted ? '; Docker restarted' : ''}`,
      };
    }
    // The marker goes first: if we die after the write, the next run still knows Docker must restart.
    await fs.write(PATHS.dockerRestartPending, `${ctx.sys.now().toISOString()}\n`, { mode: 0o644, dirMode: 0o700 });
    await fs.write(PATHS.dockerDaemonJson, content, { mode: 0o644 });
    // Before the stack is created: rotation applies only to containers created after the restart.
    const restarted = !ctx.options.skipStack && (await restartDockerIfPending(ctx));
    return {
      changed: true,
      summary: `${PATHS.dockerDaemonJson} now rotates container logs (max-size ${ctx.config.dockerLogs.maxSize}, max-file ${ctx.config.dockerLogs.maxFile})${restarted ? `; ${NOT_PREPARED}` : ''}`,
    };
  },
};

/** Why a first boot restarted Docker, and the image builder's fix. */
export const NOT_PREPARED =
  'Docker restarted because this image was not prepared with `immich-firstboot prepare-image` (it merges the rotation into the image, so the first boot needs no restart)';
