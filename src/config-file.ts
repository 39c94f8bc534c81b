// Where config.yaml comes from: the root's /etc/immich-firstboot/config.yaml, or an explicit --config
// FILE, a path on the host (not inside the root) that must exist.

import { parseConfig, type Config } from './config.js';
import { EXIT, FirstbootError } from './errors.js';
import { PATHS } from './paths.js';
import type { ConfigRecord } from './state.js';
import type { System } from './system/index.js';
import { VERSION } from './version.js';

export async function loadConfig(sys: System, explicit: string | undefined, env: NodeJS.ProcessEnv): Promise<Config> {
  return (await loadConfigRecord(sys, explicit, env)).config;
}

/** loadConfig, and what the journal may record of it (see ConfigRecord): the root's file, no IMDS URL from the environment. */
export async function loadConfigRecord(
  sys: System,
  explicit: string | undefined,
  env: NodeJS.ProcessEnv,
): Promise<{ config: Config; record?: ConfigRecord }> {
  if (explicit === undefined) {
    const text = await sys.fs.read(PATHS.config);
    const config = parseConfig(text, { displayPath: sys.fs.path(PATHS.config), env });
    if (env.IMMICH_FIRSTBOOT_IMDS_URL) return { config };
    // A copy: the record must stay what this text means whatever a command later does to its Config.
    return { config, record: { version: VERSION, text: text ?? null, config: structuredClone(config) } };
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
  return { config: parseConfig(text, { displayPath: explicit, env }) };
}
