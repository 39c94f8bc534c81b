import { describe, expect, it } from 'vitest';
import { credentials } from '../../../src/steps/credentials.js';
import { envFile } from '../../../src/steps/env-file.js';
import { fakeSystem, hostFacts, stepContext } from '../../support/fake-system.js';
import { makeRoot, modeOf, readFile, writeClaimToken, writeFile } from '../../support/root.js';

const PASSWORD = 'Abcdefghijklmnopqrstuvwxyz012345';

function context(root: string, domain: string | null = null) {
  const { ctx } = stepContext(fakeSystem(root), { domain });
  writeClaimToken(root);
  ctx.journal.facts = {
    host: hostFacts({ addresses: ['203.0.113.9', '2001:db8::4'], publicIp: '203.0.113.9', privateIp: '10.0.0.4' }),
    certFingerprint: 'AA:BB',
    stack: 'started',
    adminRegistered: false,
  };
  return ctx;
}

describe('the credentials step', () => {
  it('writes everything the operator needs at 0600', async () => {
    const root = makeRoot();
    writeFile(root, '/opt/immich/.env', `DB_PASSWORD=${PASSWORD}\n`, 0o640);
    await credentials.apply(context(root));
    const text = readFile(root, '/root/immich-credentials.txt');
    expect(modeOf(root, '/root/immich-credentials.txt')).toBe('0600');
    expect(modeOf(root, '/root')).toBe('0700');
    expect(text).toMatchSnapshot();
    expect(text).toContain('https://[2001:db8::4]/');
    expect(text).toContain('Server URL: https://203.0.113.9/api');
    expect(text).toContain(`Password: ${PASSWORD}`);
    expect(text).toContain('SHA256 AA:BB');
    expect(text).toContain('no admin yet: sign-up is open');
    expect(text).toContain('does not accept self-signed certificates');
    expect(text).toContain('certbot --nginx -d');
  });

  it('puts the domain first when there is one', async () => {
    const root = makeRoot();
    writeFile(root, '/opt/immich/.env', `DB_PASSWORD=${PASSWORD}\n`, 0o640);
    await credentials.apply(context(root, 'photos.example.com'));
    expect(readFile(root, '/root/immich-credentials.txt')).toContain('Server URL: https://photos.example.com/api');
  });

  it('carries the same password as .env', async () => {
    const root = makeRoot();
    const ctx = context(root);
    await envFile.apply(ctx);
    await credentials.apply(ctx);
    const password = /DB_PASSWORD=(\w+)/.exec(readFile(root, '/opt/immich/.env'))![1];
    expect(readFile(root, '/root/immich-credentials.txt')).toContain(`Password: ${password}`);
  });
});
