// The one renderer: Handlebars with `strict` on (a missing value is an error, not an empty string)
// and HTML escaping off (we render config files, not HTML), each template with a typed context.
// Templates are shipped data files, read through the System. Handlebars is imported at the first
// render: per-boot loads the steps (for a clone or a move) but its check, every boot, renders nothing.

import type HandlebarsModule from 'handlebars';
import type { System } from './system/index.js';

let hbs: typeof HandlebarsModule | undefined;
const cache = new Map<string, HandlebarsTemplateDelegate>();

export async function render<Context extends object>(
  sys: Pick<System, 'dataFile'>,
  relative: string,
  context: Context,
): Promise<string> {
  let template = cache.get(relative);
  if (!template) {
    hbs ??= (await import('handlebars')).default.create();
    template = hbs.compile(sys.dataFile(relative), { strict: true, noEscape: true });
    cache.set(relative, template);
  }
  return template(context);
}
