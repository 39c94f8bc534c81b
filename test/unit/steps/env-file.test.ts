import { describe, expect, it } from 'vitest';
import { parse } from 'dotenv';
import { envFile } from '../../../src/steps/env-file.js';
import { fakeSystem, stepContext } from '../../support/fake-system.js';
import { makeRoot, modeOf, readFile, writeFile } from '../../support/root.js';

const KEPT = 'KeptSecret0123456789abcdefABCDEF';

describe('the env step', () => {
  it('writes .env at 0640 with a fresh 32-character secret and every key Immich needs', async () => {
    const root = makeRoot();
    const { ctx } = stepContext(fakeSystem(root), { timezone: 'Europe/Berlin' });
    const result = await envFile.apply(ctx);
    expect(result.changed).toBe(true);
    expect(modeOf(root, '/opt/immich/.env')).toBe('0640');
    const env = parse(readFile(root, '/opt/immich/.env'));
    expect(env).toEqual({
      UPLOAD_LOCATION: '/opt/immich/library',
      DB_DATA_LOCATION: '/opt/immich/postgres',
      TZ: 'Europe/Berlin',
      IMMICH_VERSION: 'v3.2.4',
      DB_PASSWORD: expect.stringMatching(/^[A-Za-z0-9]{32}$/),
      DB_USERNAME: 'postgres',
      DB_DATABASE_NAME: 'immich',
    });
    expect(ctx.secrets.scrub(`x ${env.DB_PASSWORD} y`)).toBe('x [REDACTED] y');
  });

  it('keeps the secret already in .env, and the file byte for byte', async () => {
    const root = makeRoot();
    const text = `UPLOAD_LOCATION=/data\nDB_DATA_LOCATION=/opt/immich/postgres\nTZ=UTC\nIMMICH_VERSION=v3.2.4\nDB_PASSWORD=${KEPT}\nDB_USERNAME=postgres\nDB_DATABASE_NAME=immich\nIMMICH_LOG_LEVEL=verbose\n`;
    writeFile(root, '/opt/immich/.env', text, 0o640);
    const { ctx } = stepContext(fakeSystem(root));
    expect((await envFile.apply(ctx)).changed).toBe(false);
    expect(readFile(root, '/opt/immich/.env')).toBe(text);
  });

  it("adds only the missing keys to an operator's .env, keeping CRLF line ends", async () => {
    const root = makeRoot();
    writeFile(root, '/opt/immich/.env', `DB_PASSWORD=${KEPT}\r\nUPLOAD_LOCATION=/mnt/photos\r\n`, 0o600);
    const { ctx } = stepContext(fakeSystem(root));
    await envFile.apply(ctx);
    const text = readFile(root, '/opt/immich/.env');
    expect(
      text.startsWith(`DB_PASSWORD=${KEPT}\r\nUPLOAD_LOCATION=/mnt/photos\r\n# Added by immich-firstboot\r\n`),
    ).toBe(true);
    expect(parse(text)).toMatchObject({
      DB_PASSWORD: KEPT,
      UPLOAD_LOCATION: '/mnt/photos',
      DB_DATA_LOCATION: '/opt/immich/postgres',
      TZ: 'Etc/UTC',
    });
    expect(modeOf(root, '/opt/immich/.env')).toBe('0640');
  });

  it('narrows a world-readable .env to 0640 and says so', async () => {
    const root = makeRoot();
    const { ctx: first } = stepContext(fakeSystem(root));
    await envFile.apply(first);
    const { chmodSync } = await import('node:fs');
    chmodSync(`${root}/opt/immich/.env`, 0o644);
    const { ctx } = stepContext(fakeSystem(root));
    expect((await envFile.apply(ctx)).changed).toBe(true);
    expect(modeOf(root, '/opt/immich/.env')).toBe('0640');
    expect(ctx.journal.warnings[0]?.message).toContain('had mode 0644');
  });

  it('refuses to make a secret when Postgres already has data and .env is gone', async () => {
    const root = makeRoot();
    writeFile(root, '/opt/immich/postgres/PG_VERSION', '14\n');
    const { ctx } = stepContext(fakeSystem(root));
    await expect(envFile.apply(ctx)).rejects.toMatchObject({
      code: 'env-secret-lost',
      message: expect.stringContaining('a new secret would lock Immich out'),
      hint: expect.stringContaining('restore /opt/immich/.env'),
    });
    expect(readFile(root, '/opt/immich/postgres/PG_VERSION')).toBe('14\n');
    await expect(import('node:fs').then((fs) => fs.existsSync(`${root}/opt/immich/.env`))).resolves.toBe(false);
  });

  it('refuses a DB_PASSWORD with characters that break Immich, leaving .env as it was', async () => {
    const root = makeRoot();
    writeFile(root, '/opt/immich/.env', 'DB_PASSWORD=pa$$word"with;stuff\n', 0o640);
    const { ctx } = stepContext(fakeSystem(root));
    await expect(envFile.apply(ctx)).rejects.toMatchObject({ code: 'env-bad-password' });
    expect(readFile(root, '/opt/immich/.env')).toBe('DB_PASSWORD=pa$$word"with;stuff\n');
  });
});
