// What Immich's .env holds (the env.hbs template's context) and its mode: the env step writes it,
// per-boot replaces its secret, prepare-image hands compose every value but the secret.

import type { Config } from './config.js';
import { PATHS } from './paths.js';

/** .env's mode (root's, its group may read it): it holds the Postgres password. */
export const ENV_MODE = 0o640;

export interface EnvContext {
  uploadLocation: string;
  dbDataLocation: string;
  timezone: string;
  immichVersion: string;
  dbPassword: string;
  dbUsername: string;
  dbDatabaseName: string;
}

/** Everything .env holds but the secret (prepare-image hands these to compose without a .env). */
export function wantedValues(config: Config): Omit<EnvContext, 'dbPassword'> {
  return {
    uploadLocation: PATHS.uploadDir,
    dbDataLocation: PATHS.postgresDir,
    timezone: config.timezone,
    immichVersion: config.immichVersion,
    dbUsername: 'postgres',
    dbDatabaseName: 'immich',
  };
}
