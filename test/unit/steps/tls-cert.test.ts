// Real openssl: the certificate is checked the way a browser or an auditor would read it.
import { execFileSync } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { tlsCert } from '../../../src/steps/tls-cert.js';
import { inspectCert } from '../../../src/tls.js';
import { execReal } from '../../../src/system/exec.js';
import { fakeSystem, hostFacts, stepContext } from '../../support/fake-system.js';
import { makeRoot, modeOf } from '../../support/root.js';

const host = hostFacts({
  addresses: ['203.0.113.9', '10.0.0.4', '2001:db8::4'],
  publicIp: '203.0.113.9',
  privateIp: '10.0.0.4',
});
const text = (root: string) =>
  execFileSync('openssl', ['x509', '-in', `${root}/etc/immich-firstboot/tls/current/cert.pem`, '-noout', '-text'], {
    encoding: 'utf8',
  });

function context(root: string, config = {}, newCert = false) {
  const { ctx } = stepContext(
    fakeSystem(root, { exec: execReal }),
    { domain: 'photos.example.com', ...config },
    { newCert },
  );
  ctx.journal.facts.host = structuredClone(host);
  return ctx;
}

describe('the tls-cert step', () => {
  it('makes an ECDSA P-256 leaf certificate naming every address and name, valid 397 days', async () => {
    const root = makeRoot();
    const ctx = context(root);
    await tlsCert.apply(ctx);
    const cert = text(root);
    expect(cert).toContain('ASN1 OID: prime256v1');
    expect(cert).toContain('Signature Algorithm: ecdsa-with-SHA256');
    expect(cert).toMatch(
      /Subject Alternative Name:\s*\n\s*DNS:photos.example.com, DNS:immich-vm, IP Address:203.0.113.9, IP Address:10.0.0.4, IP Address:2001:DB8:0:0:0:0:0:4/,
    );
    expect(cert).toMatch(/Basic Constraints: critical\s*\n\s*CA:FALSE/);
    expect(cert).toMatch(/Extended Key Usage:\s*\n\s*TLS Web Server Authentication/);
    expect(cert).not.toContain('CA:TRUE');
    const days =
      (Date.parse(/Not After : (.+)/.exec(cert)![1]) - Date.parse(/Not Before: (.+)/.exec(cert)![1])) / 86_400_000;
    expect(days).toBe(397);
    expect(modeOf(root, '/etc/immich-firstboot/tls/current/key.pem')).toBe('0600');
    expect(modeOf(root, '/etc/immich-firstboot/tls/current/cert.pem')).toBe('0644');
    expect(ctx.journal.facts.certFingerprint).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  });

  it('keeps a certificate that still names everything', async () => {
    const root = makeRoot();
    await tlsCert.apply(context(root));
    const before = text(root);
    expect((await tlsCert.apply(context(root))).changed).toBe(false);
    expect(text(root)).toBe(before);
  });

  it('reads back the fingerprint, names and expiry that `openssl x509` prints, IPv6 names compressed', async () => {
    const root = makeRoot();
    const ctx = context(root);
    await tlsCert.apply(ctx);
    const cert = '/etc/immich-firstboot/tls/current/cert.pem';
    const printed = execFileSync(
      'openssl',
      ['x509', '-in', `${root}${cert}`, '-noout', '-fingerprint', '-sha256', '-enddate'],
      { encoding: 'utf8' },
    );
    const info = await inspectCert(ctx.sys, cert);
    expect(info.fingerprint).toBe(/Fingerprint=([0-9A-F:]+)/.exec(printed)![1]);
    expect(ctx.journal.facts.certFingerprint).toBe(info.fingerprint);
    expect(info.notAfter).toEqual(new Date(/notAfter=(.+)/.exec(printed)![1]));
    expect(info.names).toEqual(['photos.example.com', 'immich-vm', '203.0.113.9', '10.0.0.4', '2001:db8::4']);
  });

  it('keeps a certificate without running a program', async () => {
    const root = makeRoot();
    await tlsCert.apply(context(root));
    const { ctx } = stepContext(fakeSystem(root), { domain: 'photos.example.com' }); // any exec fails the test
    ctx.journal.facts.host = structuredClone(host);
    expect((await tlsCert.apply(ctx)).changed).toBe(false);
  });

  it('fails with a hint when cert.pem is not a certificate', async () => {
    const root = makeRoot();
    await tlsCert.apply(context(root));
    writeFileSync(`${root}/etc/immich-firstboot/tls/current/cert.pem`, 'not a certificate\n');
    await expect(tlsCert.apply(context(root))).rejects.toMatchObject({
      code: 'cert-unreadable',
      message: expect.stringContaining('/etc/immich-firstboot/tls/current/cert.pem is not a PEM certificate'),
      hint: expect.stringContaining('immich-firstboot regenerate-cert'),
    });
  });

  it('makes a new pair when an address is new, and leaves no old pair or temp directory behind', async () => {
    const root = makeRoot();
    await tlsCert.apply(context(root));
    const ctx = context(root);
    ctx.journal.facts.host!.addresses.push('198.51.100.7');
    const result = await tlsCert.apply(ctx);
    expect(result.summary).toContain('it does not name 198.51.100.7');
    expect(text(root)).toContain('IP Address:198.51.100.7');
    expect(readdirSync(`${root}/etc/immich-firstboot/tls`).sort()).toEqual([
      'current',
      expect.stringMatching(/^pair-/),
    ]);
  });

  it('makes RSA when asked, and a new serial and fingerprint on --regenerate-cert', async () => {
    const root = makeRoot();
    const first = context(root, { tls: { keyType: 'rsa', rsaBits: 2048, days: 30 } });
    await tlsCert.apply(first);
    expect(text(root)).toContain('Public-Key: (2048 bit)');
    const again = context(root, { tls: { keyType: 'rsa', rsaBits: 2048, days: 30 } }, true);
    await tlsCert.apply(again);
    expect(again.journal.facts.certFingerprint).not.toBe(first.journal.facts.certFingerprint);
  });

  it('leaves out a recorded address no certificate can hold (a journal from before the check), rather than failing', async () => {
    const root = makeRoot();
    const ctx = context(root);
    ctx.journal.facts.host!.addresses.push('fe80::4%eth0');
    await tlsCert.apply(ctx);
    const cert = text(root);
    expect(cert).toContain('IP Address:10.0.0.4');
    expect(cert).not.toMatch(/FE80/i);
  });

  it('says openssl is missing when it is', async () => {
    const root = makeRoot();
    const { ctx } = stepContext(fakeSystem(root, { exec: (f, a, o) => execReal(`/nonexistent/${f}`, a, o) }));
    ctx.journal.facts.host = structuredClone(host);
    await expect(tlsCert.apply(ctx)).rejects.toMatchObject({
      code: 'openssl-missing',
      hint: expect.stringContaining('apt install openssl'),
    });
  });
});
