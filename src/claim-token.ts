// The claim token: who may create Immich's first admin through nginx. 32 bytes from the CSPRNG as
// lowercase hex, kept only in a root-only nginx include (PATHS.claimToken) and in the credentials file
// as the claim link. The site's maps include the file; this module is the one reader and writer of its
// format, and registers the token with the redaction wherever it is read.

import type { SecretRegistry } from './redact.js';
import { PATHS } from './paths.js';
import type { System } from './system/index.js';

/** 256 bits. Hex: nginx compares the token with a regex (`~^…$`), case-sensitively, so no entropy is lost. */
export const CLAIM_TOKEN_BYTES = 32;
export const CLAIM_TOKEN = /^[0-9a-f]{64}$/;
/** What the claim link's cookie is scoped to: Immich's admin sign-up, and nothing else. */
export const CLAIM_COOKIE_PATH = '/api/auth/admin-sign-up';

export function generateClaimToken(randomBytes: (size: number) => Buffer): string {
  return randomBytes(CLAIM_TOKEN_BYTES).toString('hex');
}

/**
 * The whole file: a comment, then one map entry. A regex entry, not a plain string: nginx's map compares
 * plain strings case-insensitively, and 64-character keys would also need map_hash_bucket_size raised.
 */
export function claimTokenFile(token: string): string {
  return [
    '# The claim token of this VM, written by immich-firstboot: only root may read this file.',
    `# Included by the maps of ${PATHS.nginxSite}; the claim link in ${PATHS.credentials} carries it.`,
    `~^${token}$ 1;`,
    '',
  ].join('\n');
}

/** The token in a file of ours (comments, and exactly the one entry claimTokenFile writes); else undefined. */
export function claimTokenOf(text: string): string | undefined {
  const entries = text.split('\n').filter((line) => line.trim() !== '' && !line.startsWith('#'));
  return entries.length === 1 ? /^~\^([0-9a-f]{64})\$ 1;$/.exec(entries[0])?.[1] : undefined;
}

/** The token on disk (registered with `secrets` when given), or undefined when there is none of ours. */
export async function readClaimToken(sys: System, secrets?: SecretRegistry): Promise<string | undefined> {
  const text = await sys.fs.read(PATHS.claimToken).catch(() => undefined);
  const token = text === undefined ? undefined : claimTokenOf(text);
  if (token) secrets?.add(token);
  return token;
}

/** The link that sets the claim cookie, for a base URL such as `https://203.0.113.9/`. */
export function claimLink(baseUrl: string, token: string): string {
  return `${baseUrl.replace(/\/$/, '')}/claim/${token}`;
}
