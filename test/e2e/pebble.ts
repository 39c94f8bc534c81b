// Test scaffolding for the e2e's Let's Encrypt deployment, never part of the product: Debian's pebble
// (the ACME test CA) and pebble-challtestsrv (the DNS that pebble and our domain check both ask, answering
// every name with 127.0.0.1) as systemd services inside the machine, on its loopback, ordered before our
// units; pebble's own HTTPS certificate made here with openssl; and a drop-in per unit of ours that sets
// REQUESTS_CA_BUNDLE to pebble's CA, the only thing certbot needs to trust it. Everything is written into
// the tree before its first boot, under names beginning with ifb-e2e.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Machine } from './machine.js';

/** What the deployment's custom data says, and where the scaffolding answers inside the machine. */
export const LE = {
  domain: 'photos.ifb-e2e.test',
  email: 'owner@ifb-e2e.test',
  /** pebble's ACME directory (its HTTPS certificate is signed by CA below). */
  server: 'https://127.0.0.1:14000/dir',
  /** pebble's management API: /roots/0 and /intermediates/0, the chain it issues under. */
  management: 'https://127.0.0.1:15000',
  /** pebble-challtestsrv's DNS. */
  resolver: '127.0.0.1:8053',
  /** The CA of pebble's own HTTPS listener: what REQUESTS_CA_BUNDLE names. */
  ca: '/etc/ifb-e2e-pebble/tls-ca.pem',
  webroot: '/var/www/immich-acme',
} as const;

const DIR = '/etc/ifb-e2e-pebble';
const UNITS = ['immich-firstboot.service', 'immich-firstboot-perboot.service'];
const HEADER = '# Test scaffolding written by test/e2e/pebble.ts: not part of immich-firstboot.';

/** cloud-init user data whose write_files gives config.yaml a domain, an e-mail and pebble as the CA. */
export function leUserData(): string {
  return [
    '#cloud-config',
    'write_files:',
    '  - path: /etc/immich-firstboot/config.yaml',
    "    permissions: '0644'",
    '    content: |',
    "      # written by cloud-init from the deployment's user data: Let's Encrypt at first boot",
    '      imds:',
    '        enabled: false',
    `      domain: ${LE.domain}`,
    '      letsencrypt:',
    `        email: ${LE.email}`,
    '        staging: false',
    `        server: ${LE.server}`,
    `        resolver: "${LE.resolver}"`,
    // The domain resolves to 127.0.0.1 (challtestsrv): the domain check accepts it as one of this VM's.
    '      extraNames:',
    '        - 127.0.0.1',
    '',
  ].join('\n');
}

/** pebble's HTTPS listener certificate for 127.0.0.1, signed by a CA made for it (host openssl). */
function tlsFiles(): Record<string, string> {
  const work = mkdtempSync(path.join(os.tmpdir(), 'ifb-e2e-pebble-'));
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: work, stdio: 'pipe' });
  try {
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-noenc'];
    ssl(
      'req',
      '-x509',
      ...ec,
      '-days',
      '7',
      '-subj',
      '/CN=ifb-e2e pebble TLS CA',
      '-keyout',
      'ca-key.pem',
      '-out',
      'ca.pem',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    );
    ssl('req', ...ec, '-subj', '/CN=127.0.0.1', '-keyout', 'key.pem', '-out', 'req.pem');
    writeFileSync(
      path.join(work, 'ext.cnf'),
      [
        'subjectAltName=IP:127.0.0.1,DNS:localhost',
        'basicConstraints=critical,CA:FALSE',
        'keyUsage=critical,digitalSignature',
        'extendedKeyUsage=serverAuth',
        'subjectKeyIdentifier=hash',
        'authorityKeyIdentifier=keyid',
        '',
      ].join('\n'),
    );
    ssl(
      'x509',
      '-req',
      '-in',
      'req.pem',
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca-key.pem',
      '-set_serial',
      '2',
      '-days',
      '7',
      '-extfile',
      'ext.cnf',
      '-out',
      'cert.pem',
    );
    const read = (f: string) => readFileSync(path.join(work, f), 'utf8');
    return { 'tls-ca.pem': read('ca.pem'), 'tls-cert.pem': read('cert.pem'), 'tls-key.pem': read('key.pem') };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** Until `cmd` (a curl) succeeds, 10 s at most: the service is "started" only once it answers. */
const waitFor = (cmd: string) =>
  `ExecStartPost=/bin/sh -c 'for i in $$(seq 100); do ${cmd} && exit 0; sleep 0.1; done; exit 1'`;

/** Writes pebble, challtestsrv and the REQUESTS_CA_BUNDLE drop-ins into the (not booted) machine's tree. */
export function writePebbleScaffolding(m: Machine): void {
  mkdirSync(m.host(DIR), { recursive: true });
  for (const [name, text] of Object.entries(tlsFiles())) writeFileSync(m.host(`${DIR}/${name}`), text, { mode: 0o600 });
  writeFileSync(
    m.host(`${DIR}/pebble.json`),
    JSON.stringify(
      {
        pebble: {
          listenAddress: '127.0.0.1:14000',
          managementListenAddress: '127.0.0.1:15000',
          certificate: `${DIR}/tls-cert.pem`,
          privateKey: `${DIR}/tls-key.pem`,
          // HTTP-01 goes to port 80 of the address challtestsrv gives: 127.0.0.1, our nginx site.
          httpPort: 80,
          tlsPort: 443,
          ocspResponderURL: '',
          externalAccountBindingRequired: false,
        },
      },
      null,
      2,
    ),
  );
  // Debian 13's challtestsrv (pebble 2.6) also serves DNS-over-HTTPS, which wants a certificate: off, as
  // every challenge server is; only the DNS server and the management API listen, on loopback.
  writeFileSync(
    m.host(`${DIR}/challtestsrv.sh`),
    [
      '#!/bin/sh',
      HEADER,
      'doh=; pebble-challtestsrv -h 2>&1 | grep -q "^  -doh " && doh=-doh=',
      `exec pebble-challtestsrv -dns01 ${LE.resolver} -management 127.0.0.1:8055 -http01= -https01= -tlsalpn01= \\`,
      '  -defaultIPv4 127.0.0.1 -defaultIPv6= $doh',
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
  const before = `Before=${UNITS.join(' ')}`;
  const units: Record<string, string[]> = {
    'ifb-e2e-challtestsrv.service': [
      '[Unit]',
      'Description=e2e test scaffolding: pebble-challtestsrv, a DNS answering every name with 127.0.0.1',
      before,
      '[Service]',
      `ExecStart=${DIR}/challtestsrv.sh`,
      waitFor('curl -s -o /dev/null --max-time 1 http://127.0.0.1:8055/'),
    ],
    'ifb-e2e-pebble.service': [
      '[Unit]',
      'Description=e2e test scaffolding: pebble, the ACME test CA on 127.0.0.1:14000',
      'Requires=ifb-e2e-challtestsrv.service',
      'After=ifb-e2e-challtestsrv.service',
      before,
      '[Service]',
      // Real HTTP-01 validation (PEBBLE_VA_ALWAYS_VALID unset), without pebble's random sleeps and bad nonces.
      'Environment=PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0',
      `ExecStart=/usr/bin/pebble -config ${DIR}/pebble.json -dnsserver ${LE.resolver}`,
      waitFor(`curl -s -o /dev/null --max-time 1 --cacert ${LE.ca} ${LE.server}`),
    ],
  };
  const wants = m.host('/etc/systemd/system/multi-user.target.wants');
  mkdirSync(wants, { recursive: true });
  for (const [unit, lines] of Object.entries(units)) {
    writeFileSync(
      m.host(`/etc/systemd/system/${unit}`),
      [HEADER, ...lines, '[Install]', 'WantedBy=multi-user.target', ''].join('\n'),
    );
    symlinkSync(`/etc/systemd/system/${unit}`, path.join(wants, unit));
  }
  // certbot (run by our units) trusts pebble's listener through requests' REQUESTS_CA_BUNDLE.
  for (const unit of UNITS) {
    mkdirSync(m.host(`/etc/systemd/system/${unit}.d`), { recursive: true });
    writeFileSync(
      m.host(`/etc/systemd/system/${unit}.d/ifb-e2e-pebble-ca.conf`),
      [HEADER, '[Service]', `Environment=REQUESTS_CA_BUNDLE=${LE.ca}`, ''].join('\n'),
    );
  }
}
