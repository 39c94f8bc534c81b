// The compose stack: started early (so certificate and nginx work overlaps its start), checked to be
// published on loopback only, then waited for until Immich answers, watching Docker's view of the
// containers meanwhile (gone, or a server that keeps crashing, fails at once).

import { PATHS } from '../paths.js';
import { FirstbootError } from '../errors.js';
import { loopbackView, projectContainers, unrotated, type ContainerView } from '../docker.js';
import {
  adminRegistered,
  composeArgs,
  composeCommand,
  composeUp,
  ping,
  PROJECT,
  SERVER_SERVICE,
  tail,
} from '../stack.js';
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

/** Docker is asked how the containers are doing this often while Immich is polled every 100 ms. */
const LOOK_EVERY_MS = 5000;
/**
 * Restarts of the server during one wait that make a crash loop rather than a slow start: a real server
 * that cannot reach Postgres yet exits and is restarted, once or twice, while Postgres initialises.
 */
const CRASH_LOOP_RESTARTS = 3;
/** Failed looks in a row after which Docker itself is the problem (a restart of dockerd takes a few seconds). */
const DOCKER_SILENT_LOOKS = 3;

export const stackReady: Step = {
  id: 'stack-ready',
  description: 'wait until Immich answers on 127.0.0.1:2283',
  skipReason,
  // The containers may be gone since the crash or failure (`docker compose down`, a removal by hand):
  // waiting for a server nobody started would take the whole readyTimeoutSeconds.
  resumeFrom: { step: 'stack-start', why: '`up -d` again: the containers may be gone since' },
  async apply(ctx) {
    const { sys, config } = ctx;
    const url = `${config.stack.serverUrl}/api/server/ping`;
    const started = sys.now().getTime();
    const deadline = started + config.stack.readyTimeoutSeconds * 1000;
    const watch = new StackWatch();
    let nextLook = started;
    let nextReport = started;
    let silentLooks = 0;
    let seen = 'not looked at yet';
    // Our own wait, not `up --wait` (docker-compose 1.29 lacks it); systemd is asked for more time as we go.
    while (!(await ping(ctx))) {
      const now = sys.now().getTime();
      const waited = Math.round((now - started) / 1000);
      if (now >= deadline) throw await notReady(ctx, url, (now - started) / 1000);
      if (now >= nextLook) {
        // Docker's view: a stack that is gone or a server that keeps crashing fails now, not at the deadline.
        let containers: ContainerView[] | undefined;
        try {
          containers = await projectContainers(ctx);
          silentLooks = 0;
        } catch (error) {
          if (++silentLooks >= DOCKER_SILENT_LOOKS) throw error;
          ctx.log.warn({ err: error }, 'could not ask Docker how the containers are doing; waiting on');
          seen = 'Docker does not answer';
        }
        if (containers) {
          const verdict = watch.judge(containers, waited);
          if (verdict) throw await stackFailed(ctx, verdict);
          seen = watch.describe(containers);
        }
        await ctx.notify.status(
          `Waiting for Immich (${seen}; ${waited}s of at most ${config.stack.readyTimeoutSeconds}s)`,
        );
        nextLook = now + LOOK_EVERY_MS;
      }
      if (now >= nextReport) {
        await ctx.notify.extendTimeout(60);
        ctx.log.info({ waited, containers: seen }, 'waiting for Immich to answer');
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

interface Verdict {
  code: 'stack-not-running' | 'server-crashing';
  /** What Docker showed, as the end of a sentence. */
  message: string;
}

/** What the looks of one wait have seen: each container's restart count when it was first seen. */
class StackWatch {
  private readonly firstRestartCount = new Map<string, number>();

  /** Restarts during this wait (not those before it: a server that was fixed since may be coming up now). */
  restarts(c: ContainerView): number {
    if (!this.firstRestartCount.has(c.id)) this.firstRestartCount.set(c.id, c.restartCount);
    return c.restartCount - (this.firstRestartCount.get(c.id) ?? c.restartCount);
  }

  /** Whether the stack can still come up by itself; `starting` and `unhealthy` are left to the deadline. */
  judge(containers: ContainerView[], waited: number): Verdict | undefined {
    if (containers.length === 0)
      return { code: 'stack-not-running', message: `no container of compose project ${PROJECT} exists` };
    if (!containers.some((c) => ['running', 'restarting', 'paused'].includes(c.state)))
      return {
        code: 'stack-not-running',
        message: `no container of compose project ${PROJECT} runs (${containers.map((c) => `${c.name} ${c.state}`).join(', ')})`,
      };
    // By its compose service; a renamed one is left to the ping and the deadline.
    const server = containers.find((c) => c.service === SERVER_SERVICE);
    if (!server) return undefined;
    const why = server.error ? `: ${server.error}` : '';
    if (server.state === 'created')
      return { code: 'stack-not-running', message: `${server.name} was created but never started${why}` };
    if (server.state === 'exited' || server.state === 'dead')
      return {
        code: 'server-crashing',
        message: `${server.name} ${server.state === 'dead' ? 'is dead' : 'exited'} (exit code ${server.exitCode})${why} and Docker does not restart it`,
      };
    const restarts = this.restarts(server);
    if (restarts >= CRASH_LOOP_RESTARTS)
      return {
        code: 'server-crashing',
        message: `${server.name} crashed and was restarted ${times(restarts)} in ${waited}s (now ${server.state}, last exit code ${server.exitCode})`,
      };
    return undefined;
  }

  /** "database healthy, machine-learning healthy, redis healthy, server starting", for STATUS= and the log. */
  describe(containers: ContainerView[]): string {
    const short = (c: ContainerView): string => c.service.replace(/^immich-/, '');
    return [...containers]
      .sort(
        (a, b) =>
          Number(a.service === SERVER_SERVICE) - Number(b.service === SERVER_SERVICE) ||
          short(a).localeCompare(short(b)),
      )
      .map((c) => {
        const restarts = this.restarts(c);
        const state = c.state === 'running' ? (c.health ?? 'running') : c.state;
        return `${short(c)} ${state}${restarts > 0 ? ` (restarted ${times(restarts)})` : ''}`;
      })
      .join(', ');
  }
}

const times = (n: number): string => `${n} time${n === 1 ? '' : 's'}`;

/** The early failure: what Docker showed, the server's last log lines (secrets scrubbed), and the fix. */
async function stackFailed(ctx: StepContext, verdict: Verdict): Promise<FirstbootError> {
  if (verdict.code === 'stack-not-running') {
    return new FirstbootError('stack-not-running', `Immich's containers are not running: ${verdict.message}`, {
      hint: `they were removed or stopped (\`docker compose down\`, \`stop\`, or by hand), or could not start: run \`immich-firstboot\` again, which runs \`docker compose -p ${PROJECT} up -d\` (in ${PATHS.immichDir}) before it waits, and says why if they cannot start`,
    });
  }
  const logs = await lastLogLines(ctx, [SERVER_SERVICE]);
  ctx.log.error({ logs }, `the last log lines of ${SERVER_SERVICE}`);
  return new FirstbootError('server-crashing', `Immich's server does not stay up: ${verdict.message}`, {
    hint: `its last log lines are in the log (more: \`docker compose -p ${PROJECT} -f ${PATHS.composeFile} logs ${SERVER_SERVICE}\`); usually the database (is immich_postgres running? DB_PASSWORD in ${PATHS.envFile} must be the one Postgres was initialised with) or UPLOAD_LOCATION; fix the cause, then run \`immich-firstboot\` again`,
    detail: { logs },
  });
}

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
  const logs = await lastLogLines(ctx, services);
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

/** The last 20 log lines of each service (every service when none is named), secrets scrubbed. */
async function lastLogLines(ctx: StepContext, services: string[]): Promise<string> {
  try {
    const [file, ...base] = await composeCommand(ctx);
    const result = await ctx.sys.exec(
      file,
      [...base, ...composeArgs(ctx, 'logs', '--no-color', '--tail', '20', ...services)],
      { cwd: ctx.sys.fs.path(PATHS.immichDir), timeoutMs: 60_000 },
    );
    return tail(ctx.secrets.scrub(result.stdout + result.stderr), 80);
  } catch {
    return "(could not read the containers' logs)";
  }
}
