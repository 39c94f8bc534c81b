// doctor's checks of the tree, wherever --root points: modes, log rotation, the certificate, `nginx -t`.

import { unrotated } from '../docker.js';
import { asFirstbootError, FirstbootError } from '../errors.js';
import { gatherHostFacts } from '../host-facts.js';
import { servedCertificates, testNginxConfig } from '../nginx.js';
import { PATHS } from '../paths.js';
import { readJournal } from '../state.js';
import { inspectCert, type CertInfo } from '../tls.js';
import { bad, COMPOSE, pass, skip, type Audit, type DoctorCheck } from './doctor-audit.js';

const DAY_MS = 86_400_000;

/**
 * The file (or directory) belongs to root:root and has mode `want`, or, with `want` undefined, is not
 * group/other-writable: whoever else owns or may write it controls what root runs or reads.
 */
function ownerCheck(id: string, inside: string, want?: number): DoctorCheck {
  return {
    id,
    needsHost: false,
    async run({ sys }) {
      const info = await sys.fs.info(inside, { follow: true });
      if (!info) return skip(`${inside} does not exist (first boot not done?)`);
      const got = info.mode.toString(8).padStart(4, '0');
      const modeOk = want === undefined ? (info.mode & 0o022) === 0 : info.mode === want;
      const ok = modeOk && info.uid === 0 && info.gid === 0;
      const detail = `${inside} is ${got} owned by uid ${info.uid}, gid ${info.gid}`;
      const fix = `chown root:root ${inside} && chmod ${want === undefined ? 'go-w' : want.toString(8).padStart(4, '0')} ${inside}`;
      return ok ? pass(detail) : bad('fail', detail, fix);
    },
  };
}

export const envModeCheck = ownerCheck('env-mode', PATHS.envFile, 0o640);
export const credentialsModeCheck = ownerCheck('credentials-mode', PATHS.credentials, 0o600);
export const keyModeCheck = ownerCheck('key-mode', PATHS.tlsKey, 0o600);
export const immichDirModeCheck = ownerCheck('immich-dir-mode', PATHS.immichDir);
export const composeModeCheck = ownerCheck('compose-mode', PATHS.composeFile);

export const logRotationCheck: DoctorCheck = {
  id: 'log-rotation',
  needsHost: false,
  async run({ sys, containers }) {
    const text = await sys.fs.read(PATHS.dockerDaemonJson);
    const fix = 'run `immich-firstboot run` (it merges json-file rotation into daemon.json) and restart Docker';
    let json: { 'log-driver'?: string; 'log-opts'?: Record<string, string> } | undefined;
    try {
      json = text === undefined ? undefined : (JSON.parse(text) as typeof json);
    } catch {
      return bad('fail', `${PATHS.dockerDaemonJson} is not valid JSON`, fix);
    }
    const opts = json?.['log-opts'];
    const ok = (json?.['log-driver'] ?? 'json-file') === 'json-file' && !!opts?.['max-size'] && !!opts['max-file'];
    if (!ok) return bad('fail', `${PATHS.dockerDaemonJson} sets no max-size/max-file`, fix);
    const detail = `max-size ${opts['max-size']}, max-file ${opts['max-file']}`;
    // Rotation applies only to containers created after Docker loaded it.
    const names = Array.isArray(containers) ? unrotated(containers) : [];
    return names.length
      ? bad(
          'warn',
          `${detail}, but ${names.join(', ')} ${names.length === 1 ? 'was' : 'were'} created without it`,
          `systemctl restart docker && ${COMPOSE} up -d --force-recreate`,
        )
      : pass(detail);
  },
};

/**
 * Where the certificate the site serves comes from: our self-signed pair; our Let's Encrypt certificate
 * (certbot's webroot, our site untouched); or a site certbot (`certbot --nginx`) or its operator edited.
 */
type Source = 'self-signed' | 'letsencrypt' | 'certbot';

const SOURCE: Record<Source, string> = {
  'self-signed': 'our self-signed certificate',
  letsencrypt: "our Let's Encrypt certificate (certbot's webroot; certbot's timer renews it)",
  certbot: 'a certificate certbot (certbot --nginx) or an operator put in the site',
};

/** The certificate the site serves and its source, as cert-expiry and cert-names both read it. */
interface Served {
  path: string;
  source: Source;
  cert: CertInfo | 'missing' | FirstbootError;
}

function sourceOf(path: string, site: string | undefined): Source {
  if (path === PATHS.tlsCert) return 'self-signed';
  return path === PATHS.letsencryptCert && !/# managed by Certbot/.test(site ?? '') ? 'letsencrypt' : 'certbot';
}

async function servedCertificate({ sys, site }: Audit): Promise<Served> {
  const path = (site === undefined ? [] : servedCertificates(site))[0] ?? PATHS.tlsCert;
  const source = sourceOf(path, site);
  if (!(await sys.fs.exists(path))) return { path, source, cert: 'missing' };
  try {
    return { path, source, cert: await inspectCert(sys, path) };
  } catch (error) {
    return { path, source, cert: asFirstbootError(error) };
  }
}

/** How to renew each source's certificate, and how long before expiry a warning is due. */
const RENEW: Record<Source, { fix: string; warnDays: number }> = {
  'self-signed': { fix: 'immich-firstboot regenerate-cert', warnDays: 30 },
  // certbot renews 30 days before expiry: under 20 left, its renewals have been failing for 10 days.
  letsencrypt: {
    fix: 'certbot renew --cert-name immich-firstboot (and see why the timer did not: systemctl status certbot.timer)',
    warnDays: 20,
  },
  certbot: { fix: 'certbot renew', warnDays: 20 },
};

export const certExpiryCheck: DoctorCheck = {
  id: 'cert-expiry',
  needsHost: false,
  async run(audit) {
    const { path: served, source, cert } = await audit.once(servedCertificate);
    const { fix, warnDays } = RENEW[source];
    if (cert === 'missing') return skip(`${served} does not exist`);
    if (cert instanceof FirstbootError) return bad('fail', cert.message, fix);
    const left = cert.notAfter.getTime() - audit.sys.now().getTime();
    const until = cert.notAfter.toISOString();
    if (left <= 0) return bad('fail', `${served} (${SOURCE[source]}) expired ${until}`, fix);
    if (left < warnDays * DAY_MS)
      return bad('warn', `${served} (${SOURCE[source]}) expires ${until} (< ${warnDays} days)`, fix);
    return pass(`${served} (${SOURCE[source]}) expires ${until}`);
  },
};

/**
 * The served certificate's names: our self-signed one names every address (the current ones on the host,
 * else those first boot recorded); a Let's Encrypt or certbot one names config.yaml's domain.
 */
export const certNamesCheck: DoctorCheck = {
  id: 'cert-names',
  needsHost: false,
  async run(audit) {
    const { sys, config, log, live } = audit;
    const { path: served, source, cert } = await audit.once(servedCertificate);
    if (cert === 'missing') return skip(`${served} does not exist`);
    if (cert instanceof FirstbootError) return skip(`${served} could not be read`);
    if (source !== 'self-signed') {
      const names = cert.names.join(', ');
      if (config.domain === null)
        return pass(`${SOURCE[source]} names ${names}; config.yaml names no domain to compare with`);
      if (cert.names.includes(config.domain)) return pass(`${SOURCE[source]} names ${names}, the domain among them`);
      const email = config.letsencrypt.email ?? 'YOU@example.org';
      return bad(
        'fail',
        `${SOURCE[source]} names ${names}, not the domain ${config.domain} of config.yaml`,
        source === 'letsencrypt'
          ? `immich-firstboot enable-https --domain ${config.domain} --email ${email}`
          : `certbot --nginx -d ${config.domain}`,
      );
    }
    // On the host: the addresses it has now (a resized or moved VM); offline: what first boot recorded.
    const addresses = live
      ? (await gatherHostFacts({ sys, log, config: { ...config, imds: { ...config.imds, retrySeconds: 0 } } }))
          .addresses
      : ((await readJournal(sys))?.facts.host?.addresses ?? []);
    const missing = addresses.filter((a) => !cert.names.includes(a));
    const which = live ? 'current' : 'recorded';
    return missing.length
      ? bad(
          'fail',
          `the certificate does not name the ${which} address${missing.length > 1 ? 'es' : ''} ${missing.join(', ')}`,
          'immich-firstboot regenerate-cert',
        )
      : pass(`names ${cert.names.join(', ')}; covers the ${which} addresses`);
  },
};

export const nginxConfigCheck: DoctorCheck = {
  id: 'nginx-config',
  needsHost: false,
  async run({ sys, log }) {
    try {
      const ran = await testNginxConfig(sys, log);
      return ran
        ? pass('nginx -t accepts the configuration')
        : skip(`nginx is not installed here, or ${PATHS.nginxConf} is missing`);
    } catch (error) {
      const e = asFirstbootError(error);
      return bad(
        'fail',
        e.message,
        `fix what nginx names (or compare with ${PATHS.nginxSite}.firstboot-new), then: nginx -t && systemctl reload nginx`,
      );
    }
  },
};
