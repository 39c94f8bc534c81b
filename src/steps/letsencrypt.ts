// Let's Encrypt for config.domain, after the self-signed site serves: the domain must point here (else no
// request reaches the CA), then certbot's webroot, then our site on the new certificate. It never fails the
// first boot: every failure is a warning with the reason and the fix, and per-boot tries again.

import { asFirstbootError } from '../errors.js';
import {
  bootId,
  checkDns,
  failedFacts,
  KEEP_DAYS,
  letsencryptWanted,
  runCertbot,
  type CertbotOutcome,
} from '../letsencrypt.js';
import { PATHS } from '../paths.js';
import type { LetsEncryptFacts } from '../state.js';
import { inspectCert } from '../tls.js';
import { credentials } from './credentials.js';
import { nginxSite } from './nginx-site.js';
import type { Step, StepContext, StepResult } from './step.js';

export const letsencrypt: Step = {
  id: 'letsencrypt',
  description: "Let's Encrypt certificate for the configured domain",
  async apply(ctx) {
    const { config, journal, sys } = ctx;
    const before = journal.facts.letsencrypt;
    // This step's warnings describe the last attempt only.
    journal.warnings = journal.warnings.filter((w) => w.step !== 'letsencrypt');
    if (!letsencryptWanted(config)) {
      journal.facts.letsencrypt = { state: 'off', domain: config.domain };
      return {
        changed: before?.state !== 'off',
        summary: 'off (set domain and letsencrypt.email in config.yaml, or run `immich-firstboot enable-https`)',
      };
    }
    const domain = config.domain;
    const now = sys.now();
    const boot = await bootId(sys);
    const say = (line: string): void => ctx.log.info(line);

    // A valid certificate for this domain: nothing is asked of the CA (certbot's timer renews it).
    const held = await heldCertificate(ctx, domain);
    if (held && held.notAfter.getTime() - now.getTime() > KEEP_DAYS * 86_400_000) {
      say(
        `the Let's Encrypt certificate for ${domain} is valid until ${held.notAfter.toISOString()}: nothing to renew`,
      );
      return issued(ctx, domain, held.notAfter, before, 'kept');
    }
    const limited = before?.domain === domain ? Date.parse(before.rateLimitedUntil ?? '') : NaN;
    if (limited > now.getTime()) {
      const reason = `the CA rate-limited ${domain} until ${before!.rateLimitedUntil}; not asked again before then`;
      return failure(
        ctx,
        { ...before!, lastAttemptAt: now.toISOString(), ...(boot ? { lastAttemptBoot: boot } : {}) },
        reason,
        before?.hint,
      );
    }

    say(
      `checking that ${domain} resolves to this VM${config.letsencrypt.resolver ? ` (asking ${config.letsencrypt.resolver})` : ''}`,
    );
    const dns = await checkDns(sys, config, journal.facts.host);
    if (!dns.pointsHere) {
      const facts: LetsEncryptFacts = {
        state: 'pending-dns',
        domain,
        reason: dns.reason,
        hint: dns.hint,
        lastAttemptAt: now.toISOString(),
        ...(boot ? { lastAttemptBoot: boot } : {}),
      };
      return failure(ctx, facts, dns.reason, dns.hint);
    }
    say(
      `${domain} resolves to ${dns.resolved.join(', ')}: asking ${config.letsencrypt.staging ? "Let's Encrypt's staging server" : config.letsencrypt.server} with certbot (webroot ${PATHS.acmeWebroot})`,
    );
    await sys.fs.mkdir(PATHS.acmeWebroot, 0o755);
    let outcome: CertbotOutcome;
    try {
      outcome = await runCertbot(sys, config);
    } catch (error) {
      outcome = { ok: false, reason: `certbot could not run: ${asFirstbootError(error).message}` };
    }
    const got = outcome.ok ? await heldCertificate(ctx, domain) : undefined;
    if (!got) {
      const why = outcome.ok
        ? { ok: false, reason: `certbot succeeded but ${PATHS.letsencryptCert} does not name ${domain}` }
        : outcome;
      return failure(ctx, failedFacts(before, domain, why, now, boot), why.reason ?? 'certbot failed', why.hint);
    }
    say(`certbot: a certificate for ${domain}, valid until ${got.notAfter.toISOString()}`);
    return issued(ctx, domain, got.notAfter, before, 'new');
  },
};

/** Our lineage's certificate when it names `domain` (undefined: none, unreadable, or for another name). */
async function heldCertificate(ctx: StepContext, domain: string): Promise<{ notAfter: Date } | undefined> {
  if (!(await ctx.sys.fs.exists(PATHS.letsencryptCert)) || !(await ctx.sys.fs.exists(PATHS.letsencryptKey)))
    return undefined;
  const cert = await inspectCert(ctx.sys, PATHS.letsencryptCert).catch(() => undefined);
  return cert && cert.names.includes(domain.toLowerCase()) ? { notAfter: cert.notAfter } : undefined;
}

/** Issued: our site on the Let's Encrypt certificate (nginx -t, reload), and the credentials name the domain. */
async function issued(
  ctx: StepContext,
  domain: string,
  notAfter: Date,
  before: LetsEncryptFacts | undefined,
  how: 'new' | 'kept',
): Promise<StepResult> {
  const { journal } = ctx;
  journal.facts.letsencrypt = {
    state: 'issued',
    domain,
    notAfter: notAfter.toISOString(),
    lastAttemptAt: ctx.sys.now().toISOString(),
  };
  try {
    const site = await nginxSite.apply(ctx);
    const notes = (await ctx.sys.fs.exists(PATHS.envFile)) ? await credentials.apply(ctx) : undefined;
    const changed = how === 'new' || before?.state !== 'issued' || site.changed || !!notes?.changed;
    return {
      changed,
      summary: `${how === 'new' ? 'new' : 'kept the'} Let's Encrypt certificate for ${domain} (until ${notAfter.toISOString()}); site: ${site.summary}`,
    };
  } catch (error) {
    // nginx -t refused the site on the new certificate: nginx-site put the previous one back.
    const failed = asFirstbootError(error);
    journal.facts.letsencrypt = {
      state: 'failed',
      domain,
      reason: `the site on the Let's Encrypt certificate was refused: ${failed.message}`,
      hint: failed.hint,
      lastAttemptAt: ctx.sys.now().toISOString(),
      failures: 1,
    };
    await nginxSite.apply(ctx).catch(() => undefined); // back to the self-signed pair
    ctx.warn(journal.facts.letsencrypt.reason!, failed.hint);
    return { changed: true, summary: `kept the self-signed certificate: ${journal.facts.letsencrypt.reason}` };
  }
}

/** Not issued: a warning with the reason and the fix; the self-signed certificate stays; never a failed step. */
async function failure(
  ctx: StepContext,
  facts: LetsEncryptFacts,
  reason: string,
  hint: string | undefined,
): Promise<StepResult> {
  ctx.journal.facts.letsencrypt = { ...facts, reason };
  // The credentials say why the mobile app still sees the self-signed certificate.
  if (await ctx.sys.fs.exists(PATHS.envFile)) await credentials.apply(ctx).catch(() => undefined);
  const when = facts.nextAttemptAfter ? `not before ${facts.nextAttemptAfter}` : 'at the next boot';
  ctx.warn(
    `Let's Encrypt: ${reason}; the self-signed certificate stays`,
    `${hint ?? 'fix the cause'} (per-boot tries again ${when})`,
  );
  return { changed: true, summary: `${facts.state}: ${reason}` };
}
