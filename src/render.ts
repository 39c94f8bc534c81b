// The one renderer: Handlebars with `strict` on (a missing value is an error, not an empty string)
// and HTML escaping off (we render config files, not HTML), each template with a typed context.

import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Handlebars from 'handlebars';

const hbs = Handlebars.create();
const cache = new Map<string, HandlebarsTemplateDelegate>();

/**
 * Where templates/, nginx/ and compose/ live: beside the bundle in the package
 * (/usr/lib/immich-firstboot/), or the repository root when run from dist/ or src/.
 */
export function dataDir(env: Readonly<Record<string, string | undefined>> = process.env): string {
  if (env.IMMICH_FIRSTBOOT_DATA_DIR) return env.IMMICH_FIRSTBOOT_DATA_DIR;
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const candidate of [here, path.dirname(here)]) {
    if (existsSync(path.join(candidate, 'templates'))) return candidate;
  }
  throw new Error(`internal: templates/ not found beside ${here}; set IMMICH_FIRSTBOOT_DATA_DIR`);
}

/** A shipped data file's text, e.g. dataFile('compose/docker-compose.yml'). */
export function dataFile(relative: string): string {
  return readFileSync(path.join(dataDir(), relative), 'utf8');
}

export function render<Context extends object>(relative: string, context: Context): string {
  let template = cache.get(relative);
  if (!template) {
    template = hbs.compile(dataFile(relative), { strict: true, noEscape: true });
    cache.set(relative, template);
  }
  return template(context);
}
