// Where config.yaml comes from: the root's /etc/immich-firstboot/config.yaml, or an explicit --config
// FILE, a path on the host (not inside the root) that must exist.

import { parseConfig, type Config } from './config.js';
import { EXIT, FirstbootError } from './errors.js';
import { PATHS } from './paths.js';
import type { System } from './system/index.js';

export async function loadConfig(sys: System, explicit: string | undefined, env: NodeJS.ProcessEnv): Promise<Config> {
  if (explicit === undefined) {
    return parseConfig(await sys.fs.read(PATHS.config), { displayPath: sys.fs.path(PATHS.config), env });
  }
  let text: string;
  try {
    text = await sys.readHostFile(explicit);
  } catch (cause) {
    throw new FirstbootError('config-unreadable', `cannot read --config ${explicit}: ${(cause as Error).message}`, {
      exitCode: EXIT.config,
      hint: 'give the path of an existing config.yaml, or leave --config out to use the default',
    });
  }
  return parseConfig(text, { displayPath: explicit, env });
}
