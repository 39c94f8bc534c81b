// The one renderer: Handlebars with `strict` on (a missing value is an error, not an empty string)
// and HTML escaping off (we render config files, not HTML), each template with a typed context.
// Templates are shipped data files, read through the System.

import Handlebars from 'handlebars';
import type { System } from './system/index.js';

const hbs = Handlebars.create();
const cache = new Map<string, HandlebarsTemplateDelegate>();

export function render<Context extends object>(
  sys: Pick<System, 'dataFile'>,
  relative: string,
  context: Context,
): string {
  let template = cache.get(relative);
  if (!template) {
    template = hbs.compile(sys.dataFile(relative), { strict: true, noEscape: true });
    cache.set(relative, template);
  }
  return template(context);
}
