// The Postgres secret and /opt/immich/.env (0640): generated once, in the same atomic write that
// keeps it; never regenerated once .env holds one or Postgres has initialised its data directory.

import { parseEnv, refuseMalformedEnv } from '../env-file-format.js';
import { PATHS } from '../paths.js';
import { FirstbootError } from '../errors.js';
import { ENV_MODE, wantedValues, type EnvContext } from '../immich-env.js';
import { render } from '../render.js';
import { generateSecret, SECRET_CHARSET } from '../secret.js';
import type { Step, StepContext } from './step.js';

export const envFile: Step = {
  id: 'env',
  description: `Postgres secret and ${PATHS.envFile}`,
  async apply(ctx) {
    const { fs } = ctx.sys;
    const existing = await fs.read(PATHS.envFile);
    const wanted = wantedValues(ctx.config);

    if (existing === undefined) {
      await refuseIfPostgresInitialised(ctx);
      const dbPassword = generateSecret(ctx.sys.randomBytes);
      ctx.secrets.add(dbPassword);
      await fs.write(PATHS.envFile, render<EnvContext>(ctx.sys, 'templates/env.hbs', { ...wanted, dbPassword }), {
        mode: ENV_MODE,
      });
      return { changed: true, summary: `${PATHS.envFile} written with a new Postgres secret (mode 0640)` };
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
    } else {
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
      missing.DB_PASSWORD = generateSecret(ctx.sys.randomBytes);
      ctx.secrets.add(missing.DB_PASSWORD);
    }

    const info = await fs.info(PATHS.envFile);
    if (Object.keys(missing).length === 0) {
      if (info && info.mode !== ENV_MODE) {
        await fs.chmod(PATHS.envFile, ENV_MODE);
        ctx.warn(
          `${PATHS.envFile} had mode ${info.mode.toString(8).padStart(4, '0')}; set it to 0640 (it holds the Postgres password)`,
        );
        return { changed: true, summary: `${PATHS.envFile} kept, mode fixed to 0640` };
      }
      return { changed: false, summary: `${PATHS.envFile} already complete; kept as it is` };
    }
    const eol = existing.includes('\r\n') ? '\r\n' : '\n';
    const added = Object.entries(missing)
      .map(([k, v]) => `${k}=${v}`)
      .join(eol);
    const text = `${existing}${existing === '' || existing.endsWith('\n') ? '' : eol}# Added by immich-firstboot${eol}${added}${eol}`;
    await fs.write(PATHS.envFile, text, { mode: ENV_MODE });
    const names = Object.keys(missing).join(', ');
    return { changed: true, summary: `${PATHS.envFile} kept; added the missing ${names} (mode 0640)` };
  },
};

/** Postgres takes the password only when it initialises its data directory; after that it is fixed. */
async function refuseIfPostgresInitialised(ctx: StepContext): Promise<void> {
  const entries = await ctx.sys.fs.list(PATHS.postgresDir);
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
