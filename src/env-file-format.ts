// Immich's .env as every command reads it: the one parser (dotenv's, as docker compose reads it too),
// the one check of its lines, and the one way DB_PASSWORD is found and replaced. An error about a line
// names the file, the line number and the key, never the line: it may hold the secret.

import { parse as parseDotenv } from 'dotenv';
import { readClaimToken } from './claim-token.js';
import { FirstbootError } from './errors.js';
import { PATHS } from './paths.js';
import { SecretRegistry } from './redact.js';
import type { System } from './system/index.js';

/** Every key dotenv finds (the last assignment of a key wins), as docker compose would see them. */
export function parseEnv(text: string): Record<string, string> {
  return parseDotenv(text);
}

/**
 * The Postgres password, whatever form its line takes: `DB_PASSWORD=x`, `"x"`, `'x'`, `export
 * DB_PASSWORD=x`, `DB_PASSWORD = x`. Undefined when there is none (or it is empty).
 */
export function dbPasswordOf(text: string): string | undefined {
  return parseEnv(text).DB_PASSWORD || undefined;
}

/** The password in the tree's .env, if any. */
export async function readDbPassword(sys: System): Promise<string | undefined> {
  const text = await sys.fs.read(PATHS.envFile);
  return text === undefined ? undefined : dbPasswordOf(text);
}

/**
 * A registry that knows the secrets on disk, the Postgres password and the claim token: for the commands
 * that print what they read (doctor, prepare-image, an error on stderr).
 */
export async function secretsOnDisk(sys: System): Promise<SecretRegistry> {
  const secrets = new SecretRegistry();
  // An unreadable .env holds nothing we could print either.
  const password = await readDbPassword(sys).catch(() => undefined);
  if (password) secrets.add(password);
  await readClaimToken(sys, secrets);
  return secrets;
}

const ASSIGNMENT = /^\s*(?:export\s+)?[A-Za-z_][A-Za-z0-9_]*\s*=/;
// What a line that tries to be an assignment starts with (`KEY: value`, `KEY value`): its key may be named.
const KEY_ATTEMPT = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)(?:\s*:|\s+\S)/;

/** docker compose rejects a line that is not KEY=VALUE: name the first one (file, line, key) before anything starts. */
export function refuseMalformedEnv(text: string, file: string = PATHS.envFile): void {
  const lines = text.split(/\r?\n/);
  const bad = lines.findIndex((line) => line.trim() !== '' && !/^\s*#/.test(line) && !ASSIGNMENT.test(line));
  if (bad === -1) return;
  const key = KEY_ATTEMPT.exec(lines[bad])?.[1];
  throw new FirstbootError(
    'env-malformed',
    `${file} line ${bad + 1} is not KEY=VALUE (${key ? `key ${key}` : 'no key'}); left untouched`,
    {
      hint: `fix or remove that line (docker compose would reject it too), then run \`immich-firstboot\` again`,
    },
  );
}

const DB_PASSWORD_LINE = /^(\s*(?:export\s+)?DB_PASSWORD\s*=)[^\r\n]*/gm;

/**
 * Every DB_PASSWORD line (dotenv takes the last), quoted or not, gets `fresh`; every other line stays
 * as it is. Throws if the result does not read back as `fresh`, so the old secret cannot survive.
 */
export function replaceDbPassword(text: string, fresh: string, file: string = PATHS.envFile): string {
  const out = text.replace(DB_PASSWORD_LINE, `$1${fresh}`);
  if (dbPasswordOf(out) !== fresh) {
    throw new FirstbootError('env-malformed', `${file}: a DB_PASSWORD line is not KEY=VALUE; left untouched`, {
      hint: `write it as DB_PASSWORD=<password> in ${file}, then run again`,
    });
  }
  return out;
}
