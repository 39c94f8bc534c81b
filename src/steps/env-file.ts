// The Postgres secret and /opt/immich/.env (0640): generated once, in the same atomic write that
// keeps it; never regenerated once .env holds one or Postgres has initialised its data directory.
// With a data disk, its copy of .env (written here, kept equal) gives the secret to the next VM it is
// attached to: a disk of ours from an earlier VM brings its secret with it.

import { parseEnv, refuseMalformedEnv } from '../env-file-format.js';
import { PATHS } from '../paths.js';
import { FirstbootError } from '../errors.js';
import { dataDirs, ENV_MODE, wantedValues, type EnvContext } from '../immich-env.js';
import { envCopySecret, requireDataDiskMounted, syncEnvCopy } from '../data-disk.js';
import { render } from '../render.js';
import { generateSecret, SECRET_CHARSET } from '../secret.js';
import { otherWriters, ownershipFaults, ownershipFix, requireRootDir } from './lib-ownership.js';
import type { Step, StepContext } from './step.js';

const COMPOSE_CHOOSES = 'whoever can write it chooses what `docker compose up` runs as root (images, bind mounts)';

export const envFile: Step = {
  id: 'env',
  description: `Postgres secret and ${PATHS.envFile}`,
  async apply(ctx) {
    const { fs } = ctx.sys;
    await requireRootDir(ctx, PATHS.immichDir, COMPOSE_CHOOSES, ' (.env, docker-compose.yml)');
    // Before reading a byte: content someone else may have written is not ours to act on.
    const info = await fs.info(PATHS.envFile, { follow: true });
    const writers = info ? otherWriters(info) : [];
    if (writers.length > 0) {
      throw new FirstbootError(
        'not-root-owned',
        `${PATHS.envFile} can be written by ${writers.join(' and ')}: ${COMPOSE_CHOOSES}, and it holds the Postgres password; left as it is`,
        {
          hint: `check its content (UPLOAD_LOCATION, DB_DATA_LOCATION and IMMICH_VERSION are what docker compose mounts and pulls), then \`${ownershipFix(PATHS.envFile, ENV_MODE)}\`, and run \`immich-firstboot\` again`,
        },
      );
    }
    // The library and Postgres go to the data disk, never to the OS disk underneath its mount point.
    await requireDataDiskMounted(ctx.sys, ctx.config);
    const existing = await fs.read(PATHS.envFile);
    const wanted = wantedValues(ctx.config);
    const diskSecret = await envCopySecret(ctx.sys, ctx.config);
    if (diskSecret !== undefined) ctx.secrets.add(diskSecret);
    const copyNote = async (text: string): Promise<string> =>
      (await syncEnvCopy(ctx.sys, ctx.config, text))
        ? `; its copy on the data disk updated (${PATHS.dataEnvCopy})`
        : '';

    if (existing === undefined) {
      if (diskSecret === undefined) await refuseIfPostgresInitialised(ctx);
      const dbPassword = diskSecret ?? generateSecret(ctx.sys.randomBytes);
      ctx.secrets.add(dbPassword);
      const text = await render<EnvContext>(ctx.sys, 'templates/env.hbs', { ...wanted, dbPassword });
      await fs.write(PATHS.envFile, text, { mode: ENV_MODE, rootOwned: true });
      const note = await copyNote(text);
      return {
        changed: true,
        summary:
          diskSecret === undefined
            ? `${PATHS.envFile} written with a new Postgres secret (mode 0640)${note}`
            : `${PATHS.envFile} written with the data disk's Postgres secret, from its copy of .env (mode 0640)${note}`,
      };
    }

    // An existing .env is the operator's as much as ours: keep every line, add only what is missing.
    const values = parseEnv(existing);
    const password = values.DB_PASSWORD;
    // Known before any line is judged, so whatever reports the judgement redacts it.
    if (password !== undefined) ctx.secrets.add(password);
    refuseMalformedEnv(existing);
    if (password !== undefined) {
      if (!SECRET_CHARSET.test(password)) {
        throw new FirstbootError(
          'env-bad-password',
          `${PATHS.envFile}: DB_PASSWORD has characters other than A-Za-z0-9, which break Immich's compose file`,
          {
            hint: `if Postgres has not started yet, delete the DB_PASSWORD line and run again to get a new one; otherwise set a new A-Za-z0-9 password both in ${PATHS.envFile} and in Postgres (ALTER USER postgres WITH PASSWORD '...')`,
          },
        );
      }
      if (diskSecret !== undefined && diskSecret !== password) {
        throw new FirstbootError(
          'data-disk-secret-conflict',
          `${PATHS.envFile} and the data disk's copy of it (${PATHS.dataEnvCopy}) hold different DB_PASSWORDs: one of them is not the password of the disk's Postgres; neither was changed`,
          {
            hint: `keep the one Postgres was initialised with: normally the disk's (\`cp ${PATHS.dataEnvCopy} ${PATHS.envFile}\`), then run \`immich-firstboot\` again`,
          },
        );
      }
    } else if (diskSecret === undefined) {
      await refuseIfPostgresInitialised(ctx);
    }
    const missing: Record<string, string> = {};
    const defaults: Record<string, string> = {
      UPLOAD_LOCATION: wanted.uploadLocation,
      DB_DATA_LOCATION: wanted.dbDataLocation,
      TZ: wanted.timezone,
      IMMICH_VERSION: wanted.immichVersion,
      DB_USERNAME: wanted.dbUsername,
      DB_DATABASE_NAME: wanted.dbDatabaseName,
    };
    for (const [key, value] of Object.entries(defaults)) if (values[key] === undefined) missing[key] = value;
    if (password === undefined) {
      missing.DB_PASSWORD = diskSecret ?? generateSecret(ctx.sys.randomBytes);
      ctx.secrets.add(missing.DB_PASSWORD);
    }

    if (Object.keys(missing).length === 0) {
      const faults = info ? ownershipFaults(info, ENV_MODE) : [];
      if (faults.length > 0) {
        // Only root could write it, so its content stands; a new inode (not chown/chmod in place) leaves
        // nothing behind for a reader that opened the old one, or for a hard link to it.
        await fs.write(PATHS.envFile, existing, { mode: ENV_MODE, rootOwned: true });
        ctx.warn(
          `${PATHS.envFile} had ${faults.join(', ')}; rewrote it root:root 0640 (it holds the Postgres password, which they could read)`,
        );
        return { changed: true, summary: `${PATHS.envFile} kept, made root:root 0640${await copyNote(existing)}` };
      }
      const note = await copyNote(existing);
      return note
        ? { changed: true, summary: `${PATHS.envFile} already complete; kept as it is${note}` }
        : { changed: false, summary: `${PATHS.envFile} already complete; kept as it is` };
    }
    const eol = existing.includes('\r\n') ? '\r\n' : '\n';
    const added = Object.entries(missing)
      .map(([k, v]) => `${k}=${v}`)
      .join(eol);
    const text = `${existing}${existing === '' || existing.endsWith('\n') ? '' : eol}# Added by immich-firstboot${eol}${added}${eol}`;
    await fs.write(PATHS.envFile, text, { mode: ENV_MODE, rootOwned: true });
    const names = Object.keys(missing).join(', ');
    return {
      changed: true,
      summary: `${PATHS.envFile} kept; added the missing ${names} (mode 0640)${await copyNote(text)}`,
    };
  },
};

/** Postgres takes the password only when it initialises its data directory; after that it is fixed. */
async function refuseIfPostgresInitialised(ctx: StepContext): Promise<void> {
  const postgres = dataDirs(ctx.config).postgres;
  const entries = await ctx.sys.fs.list(postgres);
  if (entries.length > 0 && ctx.config.dataDisk !== 'none') {
    throw new FirstbootError(
      'data-disk-secret-missing',
      `the data disk holds a Postgres database (${postgres}) from an earlier VM, but no copy of its .env (${PATHS.dataEnvCopy}): the password Postgres was initialised with is unknown, and a new one would lock Immich out; nothing was written to ${PATHS.envFile}`,
      {
        hint: `restore DB_PASSWORD: copy the old VM's ${PATHS.envFile} here (its DB_PASSWORD is also in the old VM's ${PATHS.credentials}); if it is lost, set a new A-Za-z0-9 password in Postgres (ALTER USER postgres WITH PASSWORD '...', in a postgres container started on ${postgres}) and write DB_PASSWORD=<it> to ${PATHS.envFile}; then run \`immich-firstboot\` again`,
      },
    );
  }
  if (entries.length > 0) {
    throw new FirstbootError(
      'env-secret-lost',
      `${PATHS.postgresDir} already holds a Postgres database, but ${PATHS.envFile} has no DB_PASSWORD: a new secret would lock Immich out`,
      {
        hint: `restore ${PATHS.envFile} from a backup (or add DB_PASSWORD=<the password Postgres was initialised with> to it), then run \`immich-firstboot\` again`,
      },
    );
  }
}
