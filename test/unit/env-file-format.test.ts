// The one reader of .env: every form the run accepts gives the same DB_PASSWORD to every command
// (the run, per-boot's replacement, prepare-image's scan, credentials), and a bad line is named, not quoted.
import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG } from '../../src/config.js';
import { dbPasswordOf, refuseMalformedEnv, replaceDbPassword } from '../../src/env-file-format.js';
import { FirstbootError } from '../../src/errors.js';
import { prepareImage } from '../../src/commands/prepare-image.js';
import { credentials } from '../../src/steps/credentials.js';
import { envFile } from '../../src/steps/env-file.js';
import { fakeSystem, stepContext } from '../support/fake-system.js';
import { makeRoot, readFile, writeClaimToken, writeFile } from '../support/root.js';

const S = 'Form5ecretAbCdEfGh0123456789wXyZ';
const FRESH = 'FreshSecret0123456789abcdefABCDE';
const FORMS: Record<string, string> = {
  bare: `DB_PASSWORD=${S}`,
  'double-quoted': `DB_PASSWORD="${S}"`,
  'single-quoted': `DB_PASSWORD='${S}'`,
  export: `export DB_PASSWORD=${S}`,
  spaced: `DB_PASSWORD = ${S}`,
};

describe('the .env format', () => {
  for (const [form, line] of Object.entries(FORMS)) {
    describe(`a ${form} DB_PASSWORD line (${line.replace(S, '<secret>')})`, () => {
      const text = `TZ=UTC\n${line}\nDB_USERNAME=postgres\n`;

      it('is read as the secret itself', () => {
        expect(dbPasswordOf(text)).toBe(S);
      });

      it('is accepted by the run, which keeps it and knows it as the secret', async () => {
        const root = makeRoot();
        writeFile(root, '/opt/immich/.env', text, 0o640);
        const { ctx } = stepContext(fakeSystem(root));
        await envFile.apply(ctx);
        expect(dbPasswordOf(readFile(root, '/opt/immich/.env'))).toBe(S);
        expect(ctx.secrets.scrub(`<${S}>`)).toBe('<[REDACTED]>');
      });

      it('is replaced by per-boot with every other line kept, and the old secret gone', () => {
        const out = replaceDbPassword(text, FRESH);
        expect(dbPasswordOf(out)).toBe(FRESH);
        expect(out).not.toContain(S);
        expect(out.startsWith('TZ=UTC\n')).toBe(true);
        expect(out.endsWith('\nDB_USERNAME=postgres\n')).toBe(true);
      });

      it('gives the credentials file the secret itself', async () => {
        const root = makeRoot();
        writeFile(root, '/opt/immich/.env', text, 0o640);
        writeClaimToken(root);
        const { ctx } = stepContext(fakeSystem(root));
        await credentials.apply(ctx);
        expect(readFile(root, '/root/immich-credentials.txt')).toContain(S);
      });

      it('makes prepare-image search for the secret itself, so planted copies are found', async () => {
        const root = makeRoot();
        writeFile(root, '/opt/immich/.env', text, 0o640);
        writeFile(root, '/home/op/notes.txt', `the db password is ${S}\n`);
        writeFile(root, '/etc/leak.txt', `${S}\n`);
        const report = await prepareImage(fakeSystem(root), DEFAULT_CONFIG, {
          force: false,
          pull: false,
          hostDocker: false,
        });
        expect(report.leftovers.sort()).toEqual(['/etc/leak.txt', '/home/op/notes.txt']);
      });
    });
  }

  it('takes the last DB_PASSWORD, as dotenv and docker compose do, and per-boot replaces every one', () => {
    const text = `DB_PASSWORD=${FRESH}\nDB_PASSWORD="${S}"\n`;
    expect(dbPasswordOf(text)).toBe(S);
    const out = replaceDbPassword(text, FRESH);
    expect(out).toBe(`DB_PASSWORD=${FRESH}\nDB_PASSWORD=${FRESH}\n`);
  });

  it('refuses to replace a DB_PASSWORD it cannot rewrite (a `KEY: value` line), rather than leave the old one', () => {
    expect(() => replaceDbPassword(`DB_PASSWORD: ${S}\n`, FRESH)).toThrow(FirstbootError);
  });

  describe('a malformed line', () => {
    const refusal = (text: string): FirstbootError => {
      try {
        refuseMalformedEnv(text);
      } catch (e) {
        return e as FirstbootError;
      }
      throw new Error('not refused');
    };

    it('is named by file, line number and key, and nothing of its content is quoted', () => {
      const e = refusal(`DB_PASSWORD=${S}\n# old:\nDB_PASSWORD: ${S}\n`);
      expect(e.code).toBe('env-malformed');
      expect(e.message).toBe('/opt/immich/.env line 3 is not KEY=VALUE (key DB_PASSWORD); left untouched');
      expect(`${e.message} ${e.hint}`).not.toContain(S.slice(0, 8));
    });

    it('with no key (the secret alone on a line) says so, and quotes nothing', () => {
      const e = refusal(`DB_PASSWORD=${S}\n# old:\n${S}\n`);
      expect(e.message).toBe('/opt/immich/.env line 3 is not KEY=VALUE (no key); left untouched');
    });

    it('does not stop the forms the run accepts, comments or blank lines', () => {
      expect(() => refuseMalformedEnv(`${Object.values(FORMS).join('\n')}\n# note: x\n\n  \n`)).not.toThrow();
    });
  });
});
