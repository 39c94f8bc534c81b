// The Postgres secret of a clone, decided so that .env, Postgres's data directory and every container
// agree. Loaded by per-boot only when it handles a clone: the every-boot path loads none of Docker.
//
// The race it closes: an image captured after a first boot (without `prepare-image`) carries the
// original's containers, each created with the original's DB_PASSWORD in its own configuration, and
// Docker starts them on its own (`restart: always`) when it starts: at boot, or later when a `docker`
// command wakes it through docker.socket. An empty data directory seen once is no proof: the database
// container may initialise it a moment later with the original's secret, after .env got a new one, and
// the next `docker compose up` would give Immich a password Postgres never had.
//
// So the database container is frozen (`docker pause`) before the second look, and that look decides:
// - still empty: the container wrote nothing and never will (it is removed before .env changes, so no
//   container holding the old secret is left for Docker to start, even if what follows fails); .env
//   gets a new secret and every container is made anew from it;
// - not empty: Postgres began initialising with the secret .env already holds; it is kept, and the
//   container thawed to finish. Not stopped: a real initdb cut short leaves a directory Postgres refuses.

import { pauseContainers, projectContainers, removeContainers, unpauseContainers } from '../docker.js';
import { dbPasswordOf, replaceDbPassword } from '../env-file-format.js';
import { dataDirs, ENV_MODE } from '../immich-env.js';
import { syncEnvCopy } from '../data-disk.js';
import { PATHS } from '../paths.js';
import type { RunnerEnv } from '../runner.js';
import { generateSecret } from '../secret.js';
import { composeUp } from '../stack.js';
import type { CloneFacts, Journal } from '../state.js';

const DATABASE_SERVICE = 'database';

export async function settleCloneSecret(env: RunnerEnv, journal: Journal | undefined): Promise<CloneFacts['secret']> {
  const { log } = env;
  if (await postgresHoldsData(env)) return 'kept (Postgres holds data)';
  // The first boot never started the stack (--skip-stack): no container of ours exists to initialise
  // behind our back. Without a journal nobody can say, so Docker is asked.
  if (journal && journal.facts.stack !== 'started') return (await replaceSecret(env), 'new');

  const database = (await projectContainers(env)).filter((c) => c.service === DATABASE_SERVICE);
  const running = database.filter((c) => c.state === 'running').map((c) => c.id);
  if (database.length > 0)
    log.info(
      { containers: database.map((c) => `${c.name} (${c.state})`) },
      `${dataDirs(env.config).postgres} is empty, but the image's database container exists with the old secret: pausing it before deciding`,
    );
  await pauseContainers(env, running);
  if (await postgresHoldsData(env)) {
    await unpauseContainers(env, running);
    log.warn(
      `Postgres began initialising ${dataDirs(env.config).postgres} at this boot, from the image's database container and with the image's secret: the secret is kept (it is the one Postgres holds), so this VM shares it with the image; capture images with \`immich-firstboot prepare-image\` to give each VM its own`,
    );
    return 'kept (Postgres initialised at this boot)';
  }
  await removeContainers(env, [...running, ...database.filter((c) => c.state !== 'running').map((c) => c.id)]);
  await replaceSecret(env);
  if (database.length > 0 || journal?.facts.stack === 'started') {
    await composeUp(env, { recreate: true });
    log.info('every Immich container made anew with the new secret (docker compose up -d --force-recreate)');
  }
  return 'new';
}

async function postgresHoldsData(env: RunnerEnv): Promise<boolean> {
  return (await env.sys.fs.list(dataDirs(env.config).postgres)).length > 0;
}

/** DB_PASSWORD gets a new value; every other line of .env stays as it is. */
async function replaceSecret(env: RunnerEnv): Promise<void> {
  const text = await env.sys.fs.read(PATHS.envFile);
  const old = text === undefined ? undefined : dbPasswordOf(text);
  if (text === undefined || !old) return void env.log.info(`${PATHS.envFile} holds no DB_PASSWORD; nothing to replace`);
  env.secrets.add(old);
  const fresh = generateSecret(env.sys.randomBytes);
  env.secrets.add(fresh);
  const replaced = replaceDbPassword(text, fresh);
  await env.sys.fs.write(PATHS.envFile, replaced, { mode: ENV_MODE, rootOwned: true });
  // The data disk's copy follows: the next VM the disk is attached to takes the secret from it.
  const copied = await syncEnvCopy(env.sys, env.config, replaced);
  env.log.info(
    `${PATHS.envFile}: new Postgres secret (Postgres holds no data yet); every other line kept${copied ? `; its copy on the data disk too (${PATHS.dataEnvCopy})` : ''}`,
  );
}
