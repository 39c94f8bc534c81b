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

/**
 * Where the data is: the library and Postgres's data directory, on the data disk when one is configured
 * (mounted on /srv/immich), else under /opt/immich. The one answer for every user of those paths.
 */
export function dataDirs(config: Pick<Config, 'dataDisk'>): { upload: string; postgres: string } {
  return config.dataDisk === 'none'
    ? { upload: PATHS.uploadDir, postgres: PATHS.postgresDir }
    : { upload: PATHS.dataUploadDir, postgres: PATHS.dataPostgresDir };
}

/** Everything .env holds but the secret (prepare-image hands these to compose without a .env). */
export function wantedValues(config: Config): Omit<EnvContext, 'dbPassword'> {
  return {
    uploadLocation: dataDirs(config).upload,
    dbDataLocation: dataDirs(config).postgres,
    timezone: config.timezone,
    immichVersion: config.immichVersion,
    dbUsername: 'postgres',
    dbDatabaseName: 'immich',
  };
}
