// Self-signed certificates made with openssl in a private directory and swapped in as a pair; read back
// in-process.

import { FirstbootError } from './errors.js';
import { PATHS } from './paths.js';
import type { Config } from './config.js';
import { isIP, isIPv6, nameProblem } from './names.js';
import type { System } from './system/index.js';

export interface CertInfo {
  /** "AB:CD:..." as `openssl x509 -fingerprint -sha256` prints it. */
  fingerprint: string;
  names: string[];
  notAfter: Date;
}

export async function openssl(sys: System, args: string[], what: string): Promise<string> {
  const result = await sys.exec('openssl', args, { timeoutMs: 60_000 });
  if (result.notFound) {
    throw new FirstbootError('openssl-missing', `openssl is not installed, so no certificate can be ${what}`, {
      hint: 'apt install openssl, then run `immich-firstboot` again',
    });
  }
  if (result.exitCode !== 0) {
    throw new FirstbootError(
      'openssl-failed',
      `openssl could not ${what}: ${result.stderr.trim().split('\n')[0] ?? ''}`,
      {
        hint: 'run the same openssl command by hand to see why; then run `immich-firstboot` again',
        detail: { stderr: result.stderr },
      },
    );
  }
  return result.stdout;
}

/**
 * Fingerprint, SANs and expiry of a PEM certificate file (inside the root; the first certificate of a
 * chain such as certbot's fullchain.pem). Parsed in-process: an `openssl x509` per look cost ~20 ms.
 */
export async function inspectCert(sys: System, inside: string): Promise<CertInfo> {
  const pem = await sys.fs.read(inside);
  // Imported here, not at the top: node:crypto costs every start that loads this module (per-boot's
  // every-boot check, for certNames) milliseconds, and only a look at a certificate needs it.
  const { X509Certificate } = await import('node:crypto');
  let cert: InstanceType<typeof X509Certificate>;
  try {
    cert = new X509Certificate(pem ?? '');
  } catch (cause) {
    throw new FirstbootError(
      'cert-unreadable',
      `${inside} ${pem === undefined ? 'does not exist' : `is not a PEM certificate (${(cause as Error).message})`}`,
      {
        cause,
        hint: 'make a new one with `immich-firstboot regenerate-cert` (or put back the one that was there)',
      },
    );
  }
  // Both read like `openssl x509 -fingerprint -sha256 -enddate`: "AB:CD:...", "Nov 28 12:00:00 2027 GMT".
  return { fingerprint: cert.fingerprint256, names: sanNames(cert.subjectAltName), notAfter: new Date(cert.validTo) };
}

/**
 * The DNS and IP names of Node's subjectAltName text ("DNS:a, IP Address:2001:DB8:0:0:0:0:0:1"), where a
 * name holding a comma, quote or control character is written as a JSON string (DNS:"a,b").
 */
function sanNames(text: string | undefined): string[] {
  const entries = [...(text ?? '').matchAll(/([^:,]+):("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/g)];
  return entries.map(([, kind, raw]) => {
    const value = raw.startsWith('"') ? (JSON.parse(raw) as string) : raw;
    return normaliseName(kind === 'DNS' || kind === 'IP Address' ? value : `${kind}:${value}`);
  });
}

/** IPv6 SANs come in full uncompressed form (2001:DB8:0:0:0:0:0:4); compare names in one canonical form. */
function normaliseName(name: string): string {
  if (isIPv6(name)) {
    const url = new URL(`http://[${name}]/`);
    return url.hostname.slice(1, -1);
  }
  return name.toLowerCase();
}

/**
 * The certificate's names. config.yaml's are checked at load and host facts when gathered (host-facts.ts
 * warns); what an older journal recorded is checked here too, so a name no certificate can hold is
 * left out rather than failing every run.
 */
export function certNames(config: Config, hostname: string, addresses: string[]): string[] {
  const names = [config.domain, hostname === 'localhost' ? null : hostname, ...config.extraNames, ...addresses]
    .filter((n): n is string => typeof n === 'string' && n !== '' && nameProblem(n) === undefined)
    .map(normaliseName);
  return [...new Set(names)];
}

/**
 * Makes a new key and certificate in a private directory, then points `current` at it. Returns the
 * new pair's directory (inside the root). Key 0600, cert 0644, the directory 0755 only once complete.
 */
export async function makeSelfSigned(sys: System, config: Config, names: string[]): Promise<string> {
  const { fs } = sys;
  await fs.mkdir(PATHS.tlsDir, 0o755);
  const work = await fs.privateDir(PATHS.tlsPairWork);
  try {
    const cnf = `${work}/openssl.cnf`;
    // Our own config, not the distro's: Debian's and Ubuntu's add v3_ca (CA:TRUE) to `req -x509`.
    await fs.write(cnf, opensslConfig(config, names), { mode: 0o600 });
    const key = config.tls.keyType === 'rsa' ? `rsa:${config.tls.rsaBits}` : 'ec';
    const serial = Buffer.from(sys.randomBytes(16));
    serial[0] &= 0x7f; // positive, as RFC 5280 requires
    await openssl(
      sys,
      [
        'req',
        '-x509',
        '-config',
        fs.path(cnf),
        '-newkey',
        key,
        ...(config.tls.keyType === 'ecdsa' ? ['-pkeyopt', 'ec_paramgen_curve:P-256'] : []),
        '-sha256',
        '-days',
        String(config.tls.days),
        '-noenc',
        '-set_serial',
        `0x${serial.toString('hex')}`,
        '-keyout',
        fs.path(`${work}/key.pem`),
        '-out',
        fs.path(`${work}/cert.pem`),
      ],
      'make the self-signed certificate',
    );
    await fs.remove(cnf);
    await fs.chown(`${work}/key.pem`, 0, 0); // root's, whatever group the directory would lend it
    await fs.chmod(`${work}/key.pem`, 0o600);
    await fs.chmod(`${work}/cert.pem`, 0o644);
    const pair = `${PATHS.tlsDir}/pair-${sys.now().toISOString().replace(/[-:.]/g, '').slice(0, 15)}-${serial.subarray(0, 3).toString('hex')}`;
    await fs.rename(work, pair);
    await fs.chmod(pair, 0o755, 'directory');
    const pairName = pair.split('/').pop()!;
    await fs.symlink(pairName, PATHS.tlsCurrent);
    // Only now is the old pair unused; a crash before this line leaves it in place, still complete.
    for (const name of await fs.list(PATHS.tlsDir)) {
      if (name.startsWith('pair-') && name !== pairName) await fs.remove(`${PATHS.tlsDir}/${name}`);
    }
    return pair;
  } catch (error) {
    await fs.remove(work);
    throw error;
  }
}

function opensslConfig(config: Config, names: string[]): string {
  const san = names.map((n) => (isIP(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
  const usage = config.tls.keyType === 'rsa' ? 'digitalSignature,keyEncipherment' : 'digitalSignature';
  return [
    '[req]',
    'prompt = no',
    'distinguished_name = dn',
    'x509_extensions = ext',
    '',
    // Browsers ignore the CN; it only helps people reading the certificate.
    '[dn]',
    `CN = ${(names[0] ?? 'immich').slice(0, 64)}`,
    'O = Immich (self-signed at first boot)',
    '',
    '[ext]',
    'basicConstraints = critical,CA:FALSE',
    `keyUsage = critical,${usage}`,
    'extendedKeyUsage = serverAuth',
    'subjectKeyIdentifier = hash',
    `subjectAltName = ${san || 'DNS:localhost'}`,
    '',
  ].join('\n');
}
