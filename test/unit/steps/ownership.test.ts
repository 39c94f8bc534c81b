// Ownership is part of the contract: what someone else may have written is refused with the fix; what only
// root could write is made root's by a new inode. Each case is set up as root with chown (the tests run as root).
import { chmodSync, chownSync, linkSync, lstatSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { composeFile } from '../../../src/steps/compose-file.js';
import { credentials } from '../../../src/steps/credentials.js';
import { envFile } from '../../../src/steps/env-file.js';
import { tlsCert } from '../../../src/steps/tls-cert.js';
import { execReal } from '../../../src/system/exec.js';
import { REPO } from '../../support/cli.js';
import { fakeSystem, hostFacts, stepContext } from '../../support/fake-system.js';
import { makeRoot, readFile, writeClaimToken, writeFile } from '../../support/root.js';

const KEPT = 'KeptSecret0123456789abcdefABCDEF';
const ENV = `UPLOAD_LOCATION=/opt/immich/library\nDB_DATA_LOCATION=/opt/immich/postgres\nTZ=UTC\nIMMICH_VERSION=v3.2.4\nDB_PASSWORD=${KEPT}\nDB_USERNAME=postgres\nDB_DATABASE_NAME=immich\n`;
const OURS = readFileSync(path.join(REPO, 'compose/docker-compose.yml'), 'utf8');
const host = hostFacts({ publicIp: '203.0.113.9', privateIp: '10.0.0.4' });

/** "0640 0:0": mode and owner, as a test reads them. */
function owner(root: string, inside: string): string {
  const st = lstatSync(path.join(root, inside));
  return `${(st.mode & 0o7777).toString(8).padStart(4, '0')} ${st.uid}:${st.gid}`;
}
const inode = (root: string, inside: string) => lstatSync(path.join(root, inside)).ino;

function context(root: string, options: { newCert?: boolean } = {}) {
  const { ctx } = stepContext(fakeSystem(root, { exec: execReal }), {}, options);
  ctx.journal.facts = { host: structuredClone(host), certFingerprint: 'AA:BB', stack: 'started' };
  writeClaimToken(root);
  return ctx;
}

/** A file at `inside` with `text`, then given to uid:gid with `mode`. */
function planted(root: string, inside: string, text: string, mode: number, uid: number, gid: number): void {
  writeFile(root, inside, text, mode);
  chownSync(path.join(root, inside), uid, gid);
  chmodSync(path.join(root, inside), mode);
}

describe('/opt/immich', () => {
  it('is refused when owned by uid 1000, naming the chown that fixes it; nothing is written', async () => {
    const root = makeRoot();
    writeFile(root, '/opt/immich/.keep', '');
    chownSync(path.join(root, '/opt/immich'), 1000, 1000);
    for (const step of [envFile, composeFile]) {
      await expect(step.apply(context(root))).rejects.toMatchObject({
        code: 'not-root-owned',
        message: expect.stringContaining('/opt/immich can be written by uid 1000 (its owner)'),
        hint: expect.stringContaining('`chown root:root /opt/immich && chmod go-w /opt/immich`'),
      });
    }
    expect(owner(root, '/opt/immich').endsWith(' 1000:1000')).toBe(true);
    expect(() => lstatSync(path.join(root, '/opt/immich/.env'))).toThrow();
  });

  it('is refused when group 100 may write it (0775), and when every user may (0757)', async () => {
    for (const [mode, gid, who] of [
      [0o775, 100, 'group 100'],
      [0o757, 0, 'every user'],
    ] as const) {
      const root = makeRoot();
      writeFile(root, '/opt/immich/.keep', '');
      chownSync(path.join(root, '/opt/immich'), 0, gid);
      chmodSync(path.join(root, '/opt/immich'), mode);
      await expect(envFile.apply(context(root))).rejects.toMatchObject({
        code: 'not-root-owned',
        message: expect.stringContaining(`/opt/immich can be written by ${who}`),
        hint: expect.stringContaining('chown root:root /opt/immich && chmod go-w /opt/immich'),
      });
    }
  });

  it('is made root:root in place when its group (100) may only read it, with a warning', async () => {
    const root = makeRoot();
    writeFile(root, '/opt/immich/.keep', '');
    chownSync(path.join(root, '/opt/immich'), 0, 100);
    chmodSync(path.join(root, '/opt/immich'), 0o750);
    const ctx = context(root);
    await envFile.apply(ctx);
    expect(owner(root, '/opt/immich')).toBe('0750 0:0');
    expect(ctx.journal.warnings[0]?.message).toContain('/opt/immich had group 100 and mode 0750');
  });
});

describe('.env', () => {
  it('owned by uid 1000 (complete, 0640) is refused with the chown and chmod, and left as it is', async () => {
    const root = makeRoot();
    planted(root, '/opt/immich/.env', ENV, 0o640, 1000, 0);
    await expect(envFile.apply(context(root))).rejects.toMatchObject({
      code: 'not-root-owned',
      message: expect.stringContaining('/opt/immich/.env can be written by uid 1000 (its owner)'),
      hint: expect.stringContaining('`chown root:root /opt/immich/.env && chmod 0640 /opt/immich/.env`'),
    });
    expect(owner(root, '/opt/immich/.env')).toBe('0640 1000:0');
    expect(readFile(root, '/opt/immich/.env')).toBe(ENV);
  });

  it('writable by group 100 (0660) is refused the same way', async () => {
    const root = makeRoot();
    planted(root, '/opt/immich/.env', ENV, 0o660, 0, 100);
    await expect(envFile.apply(context(root))).rejects.toMatchObject({
      code: 'not-root-owned',
      message: expect.stringContaining('can be written by group 100'),
    });
  });

  it('0640 with group 100 (readable, not writable by it) is rewritten root:root 0640 as a new inode, content kept', async () => {
    const root = makeRoot();
    planted(root, '/opt/immich/.env', ENV, 0o640, 0, 100);
    const before = inode(root, '/opt/immich/.env');
    const ctx = context(root);
    expect(await envFile.apply(ctx)).toMatchObject({ changed: true });
    expect(owner(root, '/opt/immich/.env')).toBe('0640 0:0');
    expect(readFile(root, '/opt/immich/.env')).toBe(ENV);
    expect(inode(root, '/opt/immich/.env')).not.toBe(before);
    expect(ctx.journal.warnings[0]?.message).toContain('had group 100');
  });
});

describe('the compose file', () => {
  it('owned by uid 1000 and edited is refused, naming the diff and the chown/chmod; left as it is', async () => {
    const root = makeRoot();
    const edited = OURS.replace('127.0.0.1:2283:2283', '0.0.0.0:2283:2283');
    planted(root, '/opt/immich/docker-compose.yml', edited, 0o644, 1000, 1000);
    await expect(composeFile.apply(context(root))).rejects.toMatchObject({
      code: 'not-root-owned',
      message: expect.stringContaining('/opt/immich/docker-compose.yml can be written by uid 1000 (its owner)'),
      hint: expect.stringContaining(
        '`chown root:root /opt/immich/docker-compose.yml && chmod 0644 /opt/immich/docker-compose.yml`',
      ),
    });
    expect(readFile(root, '/opt/immich/docker-compose.yml')).toBe(edited);
    expect(owner(root, '/opt/immich/docker-compose.yml')).toBe('0644 1000:1000');
  });

  it('owned by uid 1000 but exactly ours is replaced by a root:root 0644 file (a new inode; a hard link keeps the old)', async () => {
    const root = makeRoot();
    planted(root, '/opt/immich/docker-compose.yml', OURS, 0o644, 1000, 1000);
    linkSync(path.join(root, '/opt/immich/docker-compose.yml'), path.join(root, '/opt/immich/held-by-1000'));
    const ctx = context(root);
    expect(await composeFile.apply(ctx)).toMatchObject({ changed: true });
    expect(owner(root, '/opt/immich/docker-compose.yml')).toBe('0644 0:0');
    expect(owner(root, '/opt/immich/held-by-1000')).toBe('0644 1000:1000');
    expect(readFile(root, '/opt/immich/docker-compose.yml')).toBe(OURS);
    expect(ctx.journal.warnings[0]?.message).toContain('had owner uid 1000, group 1000');
  });

  it('edited by root with group 100 (not group-writable) is kept, made root:root 0644, ours beside it', async () => {
    const root = makeRoot();
    const edited = `${OURS}# an operator's note\n`;
    planted(root, '/opt/immich/docker-compose.yml', edited, 0o644, 0, 100);
    await composeFile.apply(context(root));
    expect(readFile(root, '/opt/immich/docker-compose.yml')).toBe(edited);
    expect(owner(root, '/opt/immich/docker-compose.yml')).toBe('0644 0:0');
    expect(owner(root, '/opt/immich/docker-compose.yml.firstboot-new')).toBe('0644 0:0');
  });
});

describe('the credentials file', () => {
  it.each([
    ['uid 1000', 1000, 0],
    ['group 100', 0, 100],
  ])('owned by %s is rewritten root:root 0600', async (_, uid, gid) => {
    const root = makeRoot();
    writeFile(root, '/opt/immich/.env', ENV, 0o640);
    const ctx = context(root);
    await credentials.apply(ctx);
    const text = readFile(root, '/root/immich-credentials.txt');
    chownSync(path.join(root, '/root/immich-credentials.txt'), uid, gid);
    const again = context(root);
    again.journal.managed = ctx.journal.managed;
    expect(await credentials.apply(again)).toMatchObject({ changed: true });
    expect(owner(root, '/root/immich-credentials.txt')).toBe('0600 0:0');
    expect(readFile(root, '/root/immich-credentials.txt')).toBe(text);
  });
});

describe('the TLS key', () => {
  it.each([
    ['uid 1000', 1000, 0],
    ['group 100', 0, 100],
  ])('owned by %s is replaced by a new root:root 0600 pair (it may have been read)', async (_, uid, gid) => {
    const root = makeRoot();
    const ctx = context(root);
    await tlsCert.apply(ctx);
    const first = ctx.journal.facts.certFingerprint;
    chownSync(path.join(root, '/etc/immich-firstboot/tls/current/key.pem'), uid, gid);
    const again = context(root);
    const result = await tlsCert.apply(again);
    expect(result).toMatchObject({ changed: true, summary: expect.stringContaining('its key had') });
    expect(again.journal.facts.certFingerprint).not.toBe(first);
    expect(owner(root, '/etc/immich-firstboot/tls/current/key.pem')).toBe('0600 0:0');
  });

  it('in a pair directory group 100 may write (0775) is replaced by a new pair', async () => {
    const root = makeRoot();
    await tlsCert.apply(context(root));
    const pair = path.join(root, '/etc/immich-firstboot/tls/current/');
    chownSync(pair, 0, 100);
    chmodSync(pair, 0o775);
    const again = context(root);
    const result = await tlsCert.apply(again);
    expect(result).toMatchObject({
      changed: true,
      summary: expect.stringContaining('its directory can be written by group 100'),
    });
    expect(owner(root, '/etc/immich-firstboot/tls/current/key.pem')).toBe('0600 0:0');
  });

  it('is refused, with the chown, when /etc/immich-firstboot/tls is owned by uid 1000', async () => {
    const root = makeRoot();
    await tlsCert.apply(context(root));
    chownSync(path.join(root, '/etc/immich-firstboot/tls'), 1000, 1000);
    await expect(tlsCert.apply(context(root, { newCert: true }))).rejects.toMatchObject({
      code: 'not-root-owned',
      message: expect.stringContaining('/etc/immich-firstboot/tls can be written by uid 1000 (its owner)'),
      hint: expect.stringContaining(
        '`chown root:root /etc/immich-firstboot/tls && chmod go-w /etc/immich-firstboot/tls`',
      ),
    });
  });
});
