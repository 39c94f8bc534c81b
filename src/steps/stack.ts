// The compose stack: started early (so certificate and nginx work overlaps its start), then waited for.

import { PATHS } from '../paths.js';
import { FirstbootError } from '../errors.js';
import { adminRegistered, composeArgs, composeCommand, composeUp, ping, tail } from '../stack.js';
import type { RunOptions, Step } from './step.js';

const skipReason = (options: RunOptions): string | undefined => (options.skipStack ? '--skip-stack' : undefined);

export const stackStart: Step = {
  id: 'stack-start',
  description: 'start the Immich containers (docker compose up -d)',
  skipReason,
  async apply(ctx) {
    await ctx.notify.status('Starting the Immich containers');
    await composeUp(ctx);
    ctx.journal.facts.stack = 'started';
    return { changed: true, summary: `docker compose -p immich up -d done for ${PATHS.composeFile}` };
  },
};

export const stackReady: Step = {
  id: 'stack-ready',
  description: 'wait until Immich answers on 127.0.0.1:2283',
  skipReason,
  async apply(ctx) {
    const { sys, config } = ctx;
    const url = `${config.stack.serverUrl}/api/server/ping`;
    const started = sys.now().getTime();
    const deadline = started + config.stack.readyTimeoutSeconds * 1000;
    let nextReport = started;
    // Our own wait, not `up --wait` (docker-compose 1.29 lacks it); systemd is asked for more time as we go.
    while (!(await ping(ctx))) {
      const now = sys.now().getTime();
      if (now >= deadline) throw await notReady(ctx, url, (now - started) / 1000);
      if (now >= nextReport) {
        const waited = Math.round((now - started) / 1000);
        await ctx.notify.status(`Waiting for Immich to answer (${waited}s of at most ${config.stack.readyTimeoutSeconds}s)`);
        await ctx.notify.extendTimeout(60);
        ctx.log.info({ waited }, 'waiting for Immich to answer');
        nextReport = now + 15_000;
      }
      await sys.sleep(250);
    }
    ctx.journal.facts.adminRegistered = await adminRegistered(ctx);
    const seconds = ((sys.now().getTime() - started) / 1000).toFixed(1);
    return { changed: true, summary: `Immich answers ${url} (after ${seconds}s); first admin ${ctx.journal.facts.adminRegistered ? 'registered' : 'not registered yet'}` };
  },
};

async function notReady(ctx: Parameters<Step['apply']>[0], url: string, waited: number): Promise<FirstbootError> {
  let logs = '';
  try {
    const [file, ...base] = await composeCommand(ctx);
    const result = await ctx.sys.exec(file!, [...base, ...composeArgs(ctx, 'logs', '--no-color', '--tail', '20')], { cwd: ctx.sys.fs.path(PATHS.immichDir), timeoutMs: 60_000 });
    logs = tail(ctx.secrets.scrub(result.stdout + result.stderr), 60);
  } catch {
    logs = '(could not read the containers\' logs)';
  }
  ctx.log.error({ logs }, 'the containers\' last log lines');
  return new FirstbootError('stack-not-ready', `Immich did not answer ${url} within ${Math.round(waited)}s`, {
    hint: `look at \`docker compose -p immich -f ${PATHS.composeFile} ps\` and its logs; when it answers, run \`immich-firstboot\` again to finish`,
    detail: { logs },
  });
}
