// /root/immich-credentials.txt (0600): what the operator needs on the first visit.

import net from 'node:net';
import { claimLink, readClaimToken } from '../claim-token.js';
import { readDbPassword } from '../env-file-format.js';
import { PATHS } from '../paths.js';
import { FirstbootError } from '../errors.js';
import { writeManaged } from './lib-managed.js';
import { render } from '../render.js';
import type { Step, StepContext } from './step.js';

export interface CredentialsContext {
  webUrls: string[];
  mobileUrl: string;
  fingerprint: string;
  /** The certificate nginx serves when it is not ours (certbot's), else null. */
  servedCertificate: string | null;
  dbPassword: string;
  adminState: string;
  /** Immich said an admin exists: the sign-up advice would be wrong. */
  adminRegistered: boolean;
  /** The claim link on each web URL (the token from PATHS.claimToken, which the claim-token step made). */
  claimLinks: string[];
  /** nginx serves our Let's Encrypt certificate for the domain (the mobile app accepts it). */
  letsencrypt: { domain: string; notAfter: string } | null;
  /** Let's Encrypt is configured but not issued yet: why, and when it is tried again. */
  letsencryptPending: { domain: string; reason: string; next: string } | null;
}

export const credentials: Step = {
  id: 'credentials',
  description: `operator notes in ${PATHS.credentials}`,
  async apply(ctx) {
    const dbPassword = await readDbPassword(ctx.sys);
    if (!dbPassword) {
      throw new FirstbootError('env-missing', `${PATHS.envFile} has no DB_PASSWORD`, {
        hint: 'run `immich-firstboot` again: the env step restores it',
      });
    }
    const token = await readClaimToken(ctx.sys, ctx.secrets);
    if (!token) {
      throw new FirstbootError('claim-token-invalid', `${PATHS.claimToken} holds no claim token of ours`, {
        hint: `run \`immich-firstboot --regenerate-cert\` (its claim-token step makes one), or remove the file first if it is not ours`,
      });
    }
    const text = await render<CredentialsContext>(
      ctx.sys,
      'templates/credentials.txt.hbs',
      credentialsContext(ctx, dbPassword, token),
    );
    // Root's alone, whoever owned it before: nothing in it is run, so an edited copy is kept, made root's.
    const outcome = await writeManaged(ctx, PATHS.credentials, text, 0o600, 0o700, true);
    return { changed: outcome !== 'unchanged', summary: `${PATHS.credentials} ${outcome} (mode 0600)` };
  },
};

export function urlHost(name: string): string {
  return net.isIPv6(name) ? `[${name}]` : name;
}

function credentialsContext(ctx: StepContext, dbPassword: string, token: string): CredentialsContext {
  const { facts } = ctx.journal;
  const host = facts.host;
  const names = [ctx.config.domain, ...(host?.addresses ?? [])].filter((n): n is string => !!n);
  if (names.length === 0) names.push(host?.hostname ?? 'localhost');
  const adminState =
    facts.stack !== 'started'
      ? 'unknown (the containers were not started by this run)'
      : facts.adminRegistered === true
        ? 'an admin is registered'
        : facts.adminRegistered === false
          ? 'no admin yet: sign-up is open to the claim link only'
          : 'unknown (Immich did not say)';
  const webUrls = names.map((n) => `https://${urlHost(n)}/`);
  const le = facts.letsencrypt;
  const issued = le?.state === 'issued' && le.domain === ctx.config.domain && le.domain !== null;
  const pending = !issued && le && le.domain && le.state !== 'off' && le.domain === ctx.config.domain;
  return {
    letsencrypt: issued ? { domain: le.domain!, notAfter: le.notAfter ?? 'unknown' } : null,
    letsencryptPending: pending
      ? {
          domain: le.domain!,
          reason: le.reason ?? le.state,
          next: le.nextAttemptAfter ? `not before ${le.nextAttemptAfter}` : 'at the next boot',
        }
      : null,
    webUrls,
    claimLinks: webUrls.map((url) => claimLink(url, token)),
    mobileUrl: `https://${urlHost(names[0])}/api`,
    fingerprint: facts.certFingerprint ? `SHA256 ${facts.certFingerprint}` : '(no certificate yet)',
    servedCertificate: facts.servedCertificate ?? null,
    dbPassword,
    adminState,
    adminRegistered: facts.stack === 'started' && facts.adminRegistered === true,
  };
}
