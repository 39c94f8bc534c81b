// The compose stack: started early (so certificate and nginx work overlaps its start), checked to be
// published on loopback only, then waited for until Immich answers.

import { PATHS } from '../paths.js';
import { FirstbootError } from '../errors.js';
import { loopbackView, projectContainers, unrotated, type ContainerView } from '../docker.js';
import { adminRegistered, composeArgs, composeCommand, composeUp, ping, PROJECT, tail } from '../stack.js';
import { restartDockerIfPending } from './lib-docker-restart.js';
import type { RunOptions, Step, StepContext } from './step.js';

const skipReason = (options: RunOptions): string | undefined => (options.skipStack ? '--skip-stack' : undefined);

export const stackStart: Step = {
  id: 'stack-start',
  description: 'start the Immich containers (docker compose up -d)',
  skipReason,
  async apply(ctx) {
    // Left pending by a --skip-stack run, or by a crash: Docker must load daemon.json before `up`.
    await restartDockerIfPending(ctx);
    await ctx.notify.status('Starting the Immich containers');
    const command = await composeUp(ctx);
    ctx.journal.facts.stack = 'started';
    // Fail fast, before minutes of waiting, if a port is published beyond loopback.
    const containers = projectContainers(ctx);
    const ports = await verifyLoopbackOnly(ctx, containers);
    warnUnrotated(ctx, await containers);
    return {
      changed: true,
      summary: `\`${command.join(' ')} -p ${PROJECT} up -d\` done for ${PATHS.composeFile}; ${ports}`,
    };
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
        await ctx.notify.status(
          `Waiting for Immich to answer (${waited}s of at most ${config.stack.readyTimeoutSeconds}s)`,
        );
        await ctx.notify.extendTimeout(60);
        ctx.log.info({ waited }, 'waiting for Immich to answer');
        nextReport = now + 15_000;
      }
      // Short: up to one interval is added to every first boot, and a poll is one loopback GET.
      await sys.sleep(100);
    }
    // Again now that everything listens (a server on the host network only shows up once it answers);
    // the admin question is independent of it, and recorded only if the check passes.
    const [ports, registered] = await Promise.all([
      verifyLoopbackOnly(ctx, projectContainers(ctx)),
      adminRegistered(ctx),
    ]);
    ctx.journal.facts.adminRegistered = registered;
    const seconds = ((sys.now().getTime() - started) / 1000).toFixed(1);
    const admin =
      ctx.journal.facts.adminRegistered === null
        ? 'unknown'
        : ctx.journal.facts.adminRegistered
          ? 'registered'
          : 'not registered yet';
    return { changed: true, summary: `Immich answers ${url} (after ${seconds}s); ${ports}; first admin ${admin}` };
  },
};

/**
 * The loopback guarantee, enforced: anything beyond loopback (0.0.0.0, ::, an external address) stops
 * the exposed containers and fails. Immich's sign-up must never be reachable without nginx and TLS.
 */
async function verifyLoopbackOnly(
  ctx: StepContext,
  containers: ContainerView[] | Promise<ContainerView[]>,
): Promise<string> {
  const { problems, exposedServices, listeners, summary } = await loopbackView(ctx, containers);
  if (problems.length === 0) return summary;

  ctx.log.error({ problems, listeners: listeners.map((l) => l.line) }, 'Immich is reachable beyond this machine');
  let stopped = '';
  if (exposedServices.size > 0) {
    const [file, ...base] = await composeCommand(ctx);
    const result = await ctx.sys.exec(file, [...base, ...composeArgs(ctx, 'stop', ...exposedServices)], {
      cwd: ctx.sys.fs.path(PATHS.immichDir),
      timeoutMs: 120_000,
    });
    stopped =
      result.exitCode === 0
        ? `; stopped ${[...exposedServices].join(', ')} so nobody can sign up as admin over plain HTTP`
        : '';
  }
  throw new FirstbootError(
    'port-exposed',
    `Immich must listen on 127.0.0.1 only, but ${problems.join('; ')}${stopped}`,
    {
      hint: `in ${PATHS.composeFile} publish ports on loopback only (the server's line must read - '127.0.0.1:2283:2283'; compare with the shipped file, or ${PATHS.composeFile}.firstboot-new if it exists), stop whatever else listens on those ports, then run \`immich-firstboot\` again; nginx is the only public door`,
      detail: { problems },
    },
  );
}

/** Containers created before Docker loaded the log rotation keep unrotated logs: say so. */
function warnUnrotated(ctx: StepContext, containers: ContainerView[]): void {
  const names = unrotated(containers);
  if (names.length === 0) return;
  ctx.warn(
    `${names.join(', ')} ${names.length === 1 ? 'was' : 'were'} created without log rotation (Docker had not loaded ${PATHS.dockerDaemonJson} yet)`,
    `restart Docker, then recreate the containers: cd ${PATHS.immichDir} && docker compose -p ${PROJECT} up -d --force-recreate`,
  );
}

/** The timeout error: which services are not healthy, and the tail of their logs (secrets scrubbed). */
async function notReady(ctx: StepContext, url: string, waited: number): Promise<FirstbootError> {
  let unhealthy: ContainerView[] = [];
  try {
    unhealthy = (await projectContainers(ctx)).filter(
      (c) => c.state !== 'running' || (c.health !== undefined && c.health !== 'healthy'),
    );
  } catch (error) {
    ctx.log.warn({ err: error }, 'could not ask Docker which containers are unhealthy');
  }
  const services = unhealthy.map((c) => c.service);
  let logs = '';
  try {
    const [file, ...base] = await composeCommand(ctx);
    const result = await ctx.sys.exec(
      file,
      [...base, ...composeArgs(ctx, 'logs', '--no-color', '--tail', '20', ...services)],
      { cwd: ctx.sys.fs.path(PATHS.immichDir), timeoutMs: 60_000 },
    );
    logs = tail(ctx.secrets.scrub(result.stdout + result.stderr), 80);
  } catch {
    logs = "(could not read the containers' logs)";
  }
  const states = unhealthy.map((c) => `${c.service} ${c.health ?? c.state}`).join(', ');
  ctx.log.error(
    { logs, unhealthy: states },
    `the last log lines of ${services.length ? services.join(', ') : 'every service'}`,
  );
  return new FirstbootError(
    'stack-not-ready',
    `Immich did not answer ${url} within ${Math.round(waited)}s${states ? ` (not healthy: ${states})` : ''}`,
    {
      hint: `look at \`docker compose -p ${PROJECT} -f ${PATHS.composeFile} ps\` and \`... logs ${services[0] ?? 'immich-server'}\`; when it answers, run \`immich-firstboot\` again to finish`,
      detail: { logs },
    },
  );
}
