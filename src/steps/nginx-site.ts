// The nginx site: rendered, enabled, the distro default disabled, checked by `nginx -t` before nginx
// loads it (what was there comes back if it fails), reloaded only when something changed.

import { CLAIM_COOKIE_PATH } from '../claim-token.js';
import { PATHS } from '../paths.js';
import { writeManaged } from './lib-managed.js';
import { reloadServing, tlsDoor } from '../door.js';
import { nginxBuild, servedCertificates, testNginxConfig } from '../nginx.js';
import { render } from '../render.js';
import { inspectCert } from '../tls.js';
import type { Step, StepContext } from './step.js';

export interface SiteContext {
  serverNames: string;
  certPath: string;
  keyPath: string;
  acmeWebroot: string;
  upstream: string;
  /** nginx < 1.25.1 has no `http2 on;` (Ubuntu 24.04 ships 1.24). */
  legacyHttp2: boolean;
  /** X25519MLKEM768 first in ssl_ecdh_curve: nginx runs with OpenSSL 3.5 or newer. */
  hybridKeyExchange: boolean;
  /** The root-only include holding the claim token (the site holds only the gate's logic). */
  claimTokenPath: string;
  claimCookiePath: string;
  credentialsPath: string;
}

export const nginxSite: Step = {
  id: 'nginx-site',
  description: `nginx site ${PATHS.nginxSite} (443, 80 redirecting to it)`,
  async apply(ctx) {
    const { fs } = ctx.sys;
    const { facts, managed } = ctx.journal;
    const names = [ctx.config.domain, facts.host?.hostname].filter((n): n is string => !!n && n !== 'localhost');
    const served = await ourServedPair(ctx);
    const site = await render<SiteContext>(ctx.sys, 'nginx/immich.conf.hbs', {
      serverNames: names.length > 0 ? [...new Set(names)].join(' ') : '_',
      certPath: served.cert,
      keyPath: served.key,
      acmeWebroot: PATHS.acmeWebroot,
      upstream: new URL(ctx.config.stack.serverUrl).host,
      claimTokenPath: PATHS.claimToken,
      claimCookiePath: CLAIM_COOKIE_PATH,
      credentialsPath: PATHS.credentials,
      ...(await nginxBuild(ctx.sys)),
    });

    const before = {
      site: await fs.read(PATHS.nginxSite),
      hash: managed[PATHS.nginxSite],
      enabled: await fs.readlink(PATHS.nginxSiteEnabled),
      defaultLink: await fs.readlink(PATHS.nginxDefaultEnabled),
    };
    await fs.mkdir(PATHS.acmeWebroot, 0o755);
    const outcome = await writeManaged(ctx, PATHS.nginxSite, site, 0o644);
    const changes = outcome === 'written' ? [`${PATHS.nginxSite} written`] : [];
    if (before.enabled === undefined && !(await fs.exists(PATHS.nginxSiteEnabled))) {
      await fs.symlink(PATHS.nginxSite, PATHS.nginxSiteEnabled);
      changes.push('enabled');
    }
    if (before.defaultLink !== undefined) {
      await fs.remove(PATHS.nginxDefaultEnabled); // Debian's default site also claims default_server on 80
      changes.push('the distro default site disabled');
    }

    // What nginx serves now: ours, or a certificate someone else installed (certbot).
    const live = (await fs.read(PATHS.nginxSite)) ?? site;
    const foreign = servedCertificates(live).filter((p) => p !== PATHS.tlsCert && p !== PATHS.letsencryptCert);
    const newCert = foreign.length === 0 && served.fingerprint !== facts.nginxCertFingerprint;
    if (newCert) changes.push('new certificate');
    // A new claim token (a clone's) takes effect when nginx loads the site again.
    if (facts.claimTokenAt !== facts.nginxClaimTokenAt) changes.push('new claim token');
    if (foreign.length > 0) notOurCertificate(ctx, foreign);
    facts.servedCertificate = foreign[0] ?? null;

    if (changes.length > 0 || ctx.options.newCert) {
      try {
        const tested = await testNginxConfig(ctx.sys, ctx.log);
        ctx.log.info(tested ? 'nginx -t: the configuration is valid' : 'nginx -t not run: nginx is not installed');
      } catch (error) {
        // Put back what was there, so a bad render never takes the door down.
        if (outcome === 'written') {
          if (before.site === undefined) await fs.remove(PATHS.nginxSite);
          else await fs.write(PATHS.nginxSite, before.site, { mode: 0o644 });
          if (before.hash === undefined) delete managed[PATHS.nginxSite];
          else managed[PATHS.nginxSite] = before.hash;
        }
        if (before.enabled === undefined) await fs.remove(PATHS.nginxSiteEnabled);
        if (before.defaultLink !== undefined) await fs.symlink(before.defaultLink, PATHS.nginxDefaultEnabled);
        throw error;
      }
    }
    if (changes.length > 0) await reload(ctx, foreign.length === 0 ? live : undefined, served.fingerprint);
    if (foreign.length === 0) facts.nginxCertFingerprint = served.fingerprint;
    facts.nginxClaimTokenAt = facts.claimTokenAt;
    const kept = outcome === 'kept-edited' ? `; kept the edited ${PATHS.nginxSite}, ours is beside it` : '';
    return {
      changed: changes.length > 0,
      summary: `${changes.length ? changes.join(', ') : 'nothing changed'}${kept}`,
    };
  },
};

/**
 * The pair our site serves: the Let's Encrypt certificate once the letsencrypt step got it for this domain
 * (and its files are there), else the self-signed one, which stays on disk as the fallback either way.
 */
async function ourServedPair(ctx: StepContext): Promise<{ cert: string; key: string; fingerprint?: string }> {
  const le = ctx.journal.facts.letsencrypt;
  const { fs } = ctx.sys;
  if (
    le?.state === 'issued' &&
    le.domain === ctx.config.domain &&
    (await fs.exists(PATHS.letsencryptCert)) &&
    (await fs.exists(PATHS.letsencryptKey))
  ) {
    const cert = await inspectCert(ctx.sys, PATHS.letsencryptCert).catch(() => undefined);
    if (cert) return { cert: PATHS.letsencryptCert, key: PATHS.letsencryptKey, fingerprint: cert.fingerprint };
  }
  return { cert: PATHS.tlsCert, key: PATHS.tlsKey, fingerprint: ctx.journal.facts.certFingerprint };
}

/** certbot installed its certificate: ours is still renewed, but nginx does not serve it. */
function notOurCertificate(ctx: StepContext, foreign: string[]): void {
  const message = `nginx serves ${foreign.join(', ')}, not the self-signed ${PATHS.tlsCert}; left as it is`;
  if (!ctx.options.newCert) return void ctx.log.info(message);
  ctx.warn(
    `${message}: the new self-signed certificate is not in use`,
    `nothing to do if that certificate is Let's Encrypt's (certbot renews it); to serve ours again, point ssl_certificate/ssl_certificate_key in ${PATHS.nginxSite} at ${PATHS.tlsCert} and ${PATHS.tlsKey}`,
  );
}

/**
 * Reloads nginx if it runs here. `site`: the live site, when it serves our certificate; then the reload
 * returns only once nginx serves the one we just made, whose fingerprint the credentials file will name.
 */
async function reload(ctx: StepContext, site: string | undefined, fingerprint: string | undefined): Promise<void> {
  const { facts } = ctx.journal;
  const door = site === undefined ? undefined : tlsDoor(site, ctx.config.domain, facts.host);
  const expected = door && fingerprint ? { door, fingerprint } : undefined;
  const outcome = await reloadServing(ctx.sys, expected);
  if (typeof outcome === 'object') ctx.warn(outcome.warning, outcome.hint);
  else if (outcome !== 'reloaded') ctx.log.info(`nginx: not reloaded (${outcome})`);
  else
    ctx.log.info(`nginx: reloaded${expected ? `; it serves our certificate (SHA-256 ${expected.fingerprint})` : ''}`);
}
