// The claim token's file: made once (0600 root in a 0700 directory), kept on a rerun so the claim link
// already written stays good, made anew for a clone or when others may have read it; a file that is not
// ours is refused with the fix, never overwritten.
import { chmodSync, chownSync, lstatSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { claimToken } from '../../../src/steps/claim-token.js';
import { fakeSystem, stepContext } from '../../support/fake-system.js';
import { makeRoot, modeOf, readFile, writeClaimToken, writeFile, TEST_CLAIM_TOKEN } from '../../support/root.js';

const FILE = '/etc/immich-firstboot/nginx/claim-token.map';
const tokenIn = (root: string) => /^~\^([0-9a-f]{64})\$ 1;$/m.exec(readFile(root, FILE))?.[1];
const context = (root: string, newClaimToken = false) => stepContext(fakeSystem(root), {}, { newClaimToken }).ctx;

describe('the claim-token step', () => {
  it('makes 32 random bytes as lowercase hex, root-only, and registers the token for redaction', async () => {
    const root = makeRoot();
    const ctx = context(root);
    const result = await claimToken.apply(ctx);
    const token = tokenIn(root)!;
    expect(token).toMatch(/^[0-9a-f]{64}$/);
    expect(result).toMatchObject({ changed: true });
    expect(result.summary).not.toContain(token.slice(0, 8));
    expect(modeOf(root, FILE)).toBe('0600');
    expect(modeOf(root, '/etc/immich-firstboot/nginx')).toBe('0700');
    expect(lstatSync(path.join(root, FILE)).uid).toBe(0);
    expect(ctx.secrets.scrub(`link /claim/${token}`)).toBe('link /claim/[REDACTED]');
    expect(ctx.journal.facts.claimTokenAt).toBe('2026-11-28T12:00:00.000Z');
    expect(JSON.stringify(ctx.journal)).not.toContain(token.slice(0, 8));
  });

  it('keeps the token on a rerun (a crash between steps never invalidates the link), changing nothing', async () => {
    const root = makeRoot();
    await claimToken.apply(context(root));
    const before = readFile(root, FILE);
    const again = context(root);
    expect(await claimToken.apply(again)).toEqual({
      changed: false,
      summary: `kept the claim token in ${FILE}`,
    });
    expect(readFile(root, FILE)).toBe(before);
    expect(again.secrets.scrub(tokenIn(root)!)).toBe('[REDACTED]');
    expect(again.journal.facts.claimTokenAt).toBeUndefined(); // nothing new for nginx to load
  });

  it('makes a new token for a clone (per-boot), whose image token its builder knew', async () => {
    const root = makeRoot();
    writeClaimToken(root);
    const result = await claimToken.apply(context(root, true));
    expect(tokenIn(root)).not.toBe(TEST_CLAIM_TOKEN);
    expect(result.summary).toContain("a clone: the image's token was known to whoever built it");
  });

  it('makes a new token, with a warning, when its file was readable by others (root-owned, 0644)', async () => {
    const root = makeRoot();
    writeClaimToken(root);
    chmodSync(path.join(root, FILE), 0o644);
    const ctx = context(root);
    await claimToken.apply(ctx);
    expect(tokenIn(root)).not.toBe(TEST_CLAIM_TOKEN);
    expect(modeOf(root, FILE)).toBe('0600');
    expect(ctx.journal.warnings).toEqual([
      expect.objectContaining({
        message: `${FILE} had mode 0644; made a new claim token (the old one may have been read)`,
      }),
    ]);
  });

  it('makes the directory 0700 when it was wider', async () => {
    const root = makeRoot();
    mkdirSync(path.join(root, '/etc/immich-firstboot/nginx'), { recursive: true, mode: 0o755 });
    chmodSync(path.join(root, '/etc/immich-firstboot/nginx'), 0o755);
    await claimToken.apply(context(root));
    expect(modeOf(root, '/etc/immich-firstboot/nginx')).toBe('0700');
  });

  it('refuses a file that is not a token of ours, naming it and the fix, and leaves it as it is', async () => {
    for (const text of [
      '',
      `${TEST_CLAIM_TOKEN} 1;\n`,
      `~^${TEST_CLAIM_TOKEN.toUpperCase()}$ 1;\n`,
      `~^${TEST_CLAIM_TOKEN}$ 1;\n~^x$ 1;\n`,
    ]) {
      const root = makeRoot();
      writeFile(root, FILE, text, 0o600);
      await expect(claimToken.apply(context(root))).rejects.toMatchObject({
        code: 'claim-token-invalid',
        message: `${FILE} is not a claim token file of ours (comments, then one line \`~^<64 hex digits>$ 1;\`); left as it is`,
        hint: expect.stringContaining(`\`rm ${FILE}\`, then run \`immich-firstboot\` again`),
      });
      expect(readFile(root, FILE)).toBe(text);
    }
  });

  it('refuses a file someone else can write (uid 1000), since it decides who may create the first admin', async () => {
    const root = makeRoot();
    writeClaimToken(root);
    chownSync(path.join(root, FILE), 1000, 1000);
    await expect(claimToken.apply(context(root))).rejects.toMatchObject({
      code: 'not-root-owned',
      message: `${FILE} can be written by uid 1000 (its owner): whoever can write it chooses who may create Immich's first admin; left as it is`,
      hint: expect.stringContaining(`rm ${FILE}`),
    });
    expect(tokenIn(root)).toBe(TEST_CLAIM_TOKEN);
  });
});
