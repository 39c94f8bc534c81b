// The files shipped with the program (templates/, nginx/, compose/), read where the package put them.

import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Where templates/, nginx/ and compose/ live: IMMICH_FIRSTBOOT_DATA_DIR if set, else beside the bundle
 * in the package (/usr/lib/immich-firstboot/), or the repository root when run from dist/ or src/system/.
 */
export function dataDir(env: Readonly<Record<string, string | undefined>>): string {
  if (env.IMMICH_FIRSTBOOT_DATA_DIR) return env.IMMICH_FIRSTBOOT_DATA_DIR;
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const candidate of [here, path.dirname(here), path.dirname(path.dirname(here))]) {
    if (existsSync(path.join(candidate, 'templates'))) return candidate;
  }
  throw new Error(`internal: templates/ not found beside ${here}; set IMMICH_FIRSTBOOT_DATA_DIR`);
}

/** The host path of a shipped file, e.g. dataPath(env, 'compose/docker-compose.yml'). */
export function dataPath(env: Readonly<Record<string, string | undefined>>, relative: string): string {
  return path.join(dataDir(env), relative);
}

/** A shipped file's text. */
export function dataFile(env: Readonly<Record<string, string | undefined>>, relative: string): string {
  return readFileSync(dataPath(env, relative), 'utf8');
}
