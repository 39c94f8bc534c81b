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

/** The certificate the site serves (ours, or certbot's), as cert-expiry and cert-names both read it. */
interface Served {
  path: string;
  ours: boolean;
  cert: CertInfo | 'missing' | FirstbootError;
}

async function servedCertificate({ sys, site }: Audit): Promise<Served> {
  const path = (site === undefined ? [] : servedCertificates(site))[0] ?? PATHS.tlsCert;
  const ours = path === PATHS.tlsCert;
  if (!(await sys.fs.exists(path))) return { path, ours, cert: 'missing' };
  try {
    return { path, ours, cert: await inspectCert(sys, path) };
  } catch (error) {
    return { path, ours, cert: asFirstbootError(error) };
  }
}

export const certExpiryCheck: DoctorCheck = {
  id: 'cert-expiry',
  needsHost: false,
  async run(audit) {
    const { path: served, ours, cert } = await audit.once(servedCertificate);
    if (cert === 'missing') return skip(`${served} does not exist`);
    if (cert instanceof FirstbootError) return bad('fail', cert.message, 'immich-firstboot regenerate-cert');
    const left = cert.notAfter.getTime() - audit.sys.now().getTime();
    const fix = ours ? 'immich-firstboot regenerate-cert' : 'certbot renew';
    const until = cert.notAfter.toISOString();
    if (left <= 0) return bad('fail', `${served} expired ${until}`, fix);
    if (left < 30 * DAY_MS) return bad('warn', `${served} expires ${until} (< 30 days)`, fix);
    return pass(`${served} expires ${until}`);
  },
};

/** Our certificate names every address: the current ones on the host, else those first boot recorded. */
export const certNamesCheck: DoctorCheck = {
  id: 'cert-names',
  needsHost: false,
  async run(audit) {
    const { sys, config, log, live } = audit;
    const { path: served, ours, cert } = await audit.once(servedCertificate);
    if (cert === 'missing') return skip(`${served} does not exist`);
    if (cert instanceof FirstbootError) return skip(`${served} could not be read`);
    if (!ours)
      return skip(`the site serves ${served}, not our self-signed certificate; its names are its issuer's business`);
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
