// The self-signed TLS certificate: kept while it still names every address and is not near expiry.

import { PATHS } from '../paths.js';
import { FirstbootError } from '../errors.js';
import { certNames, inspectCert, makeSelfSigned } from '../tls.js';
import { otherWriters, ownershipFaults, requireRootDir } from './lib-ownership.js';
import type { Step } from './step.js';

const RENEW_BEFORE_DAYS = 30;

export const tlsCert: Step = {
  id: 'tls-cert',
  description: `self-signed TLS certificate in ${PATHS.tlsDir}`,
  async apply(ctx) {
    const { sys, config, journal } = ctx;
    const host = journal.facts.host;
    if (!host)
      throw new FirstbootError('internal', 'host facts missing before tls-cert', {
        hint: 'run `immich-firstboot` again',
      });
    const names = certNames(config, host.hostname, host.addresses);
    await requireRootDir(ctx, PATHS.tlsDir, 'whoever can write it can swap the key and certificate nginx serves');

    let reason = ctx.options.newCert ? 'asked for a new one' : '';
    if (!reason && !(await sys.fs.exists(PATHS.tlsCert))) reason = 'none yet';
    // A key someone other than root could read or replace is no secret any more: a new pair, not a chown.
    const key = reason ? undefined : await sys.fs.info(PATHS.tlsKey, { follow: true });
    const keyFaults = key ? ownershipFaults(key, 0o600) : [];
    if (keyFaults.length > 0) reason = `its key had ${keyFaults.join(', ')}`;
    const pair = reason ? undefined : await sys.fs.info(PATHS.tlsCurrent, { follow: true });
    const pairWriters = pair ? otherWriters(pair) : [];
    if (pairWriters.length > 0) reason = `its directory can be written by ${pairWriters.join(' and ')}`;
    if (!reason) {
      const current = await inspectCert(sys, PATHS.tlsCert);
      const missing = names.filter((n) => !current.names.includes(n));
      const renewBy = sys.now().getTime() + RENEW_BEFORE_DAYS * 86_400_000;
      if (missing.length > 0) reason = `it does not name ${missing.join(', ')}`;
      else if (current.notAfter.getTime() < renewBy) reason = `it expires ${current.notAfter.toISOString()}`;
      else {
        Object.assign(journal.facts, { certFingerprint: current.fingerprint, certNames: current.names });
        return {
          changed: false,
          summary: `kept the certificate for ${current.names.join(', ')} (SHA-256 ${current.fingerprint})`,
        };
      }
    }
    await makeSelfSigned(sys, config, names);
    const made = await inspectCert(sys, PATHS.tlsCert);
    Object.assign(journal.facts, { certFingerprint: made.fingerprint, certNames: made.names });
    return {
      changed: true,
      summary: `new ${config.tls.keyType.toUpperCase()} certificate (${reason}) for ${made.names.join(', ')}, SHA-256 ${made.fingerprint}`,
    };
  },
};
