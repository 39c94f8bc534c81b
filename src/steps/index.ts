// The first boot, in order. The stack starts as soon as .env and the compose file exist, so the
// certificate and nginx work overlaps the containers' own start; the wait for Immich comes last.

import { PATHS } from '../paths.js';
import type { System } from '../system/index.js';
import { claimToken } from './claim-token.js';
import { composeFile } from './compose-file.js';
import { credentials } from './credentials.js';
import { dataDisk } from './data-disk.js';
import { dockerLogs } from './docker-logs.js';
import { envFile } from './env-file.js';
import { hostFacts } from './host-facts.js';
import { nginxSite } from './nginx-site.js';
import { stackReady, stackStart } from './stack.js';
import type { Step } from './step.js';
import { tlsCert } from './tls-cert.js';

export const FIRST_BOOT: readonly Step[] = [
  dataDisk,
  envFile,
  composeFile,
  dockerLogs,
  stackStart,
  hostFacts,
  tlsCert,
  claimToken,
  nginxSite,
  stackReady,
  credentials,
];

/**
 * `--regenerate-cert`: fresh addresses, a new pair, the site and the fingerprint in the credentials. The
 * claim token is kept (made if missing: the site includes it); per-boot asks a clone for a new one.
 */
export const REGENERATE_CERT: readonly Step[] = [hostFacts, tlsCert, claimToken, nginxSite, credentials];

/** REGENERATE_CERT, less the credentials when there is no .env yet to take the password from. */
export async function regenerateCertSteps(sys: System): Promise<readonly Step[]> {
  return (await sys.fs.exists(PATHS.envFile)) ? REGENERATE_CERT : REGENERATE_CERT.filter((s) => s.id !== 'credentials');
}
