// What the build ships: plain esbuild output (an entry, chunks, source maps), no loader of our own, and
// logged stack traces that name the real file and line — in src/ and in a dependency — under plain node,
// as the .deb's wrapper runs it (the maps are read when a stack is printed), and under --enable-source-maps.
import { cpSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO, runCli } from '../support/cli.js';
import { makeRoot } from '../support/root.js';

const DIST = path.join(REPO, 'dist');
const shipped = (): string[] => readdirSync(DIST).filter((n) => n.endsWith('.mjs'));

describe('the build', () => {
  it('is the entry and its chunks, each with a source map, and carries no code as strings', () => {
    const files = shipped();
    expect(files).toContain('immich-firstboot.mjs');
    expect(files.filter((n) => n.startsWith('chunk-')).length).toBeGreaterThan(1);
    for (const name of files) {
      const text = readFileSync(path.join(DIST, name), 'utf8');
      expect(text, name).not.toContain('compileFunction');
      expect(text, name).toMatch(new RegExp(`//# sourceMappingURL=${name.replace('.', '\\.')}\\.map\\s*$`));
      expect(JSON.parse(readFileSync(path.join(DIST, `${name}.map`), 'utf8')), name).toMatchObject({
        version: 3,
        sources: expect.any(Array),
      });
    }
    // No line a reader cannot read: the longest line of our own code stays short.
    const entry = readFileSync(path.join(DIST, 'immich-firstboot.mjs'), 'utf8');
    expect(Math.max(...entry.split('\n').map((l) => l.length))).toBeLessThan(400);
  });

  for (const [how, env] of [
    ['as the .deb runs it (plain node)', {}],
    ['under --enable-source-maps', { NODE_OPTIONS: '--enable-source-maps' }],
  ] as const)
    it(`shows a dependency's real file and line in a stack trace, ${how} (Handlebars refusing a broken template)`, async () => {
      // A release whose credentials template does not parse: Handlebars' parser throws inside the step,
      // which logs the error with its stack (code internal).
      const data = mkdtempSync(path.join(os.tmpdir(), 'ifb-data-'));
      for (const dir of ['templates', 'nginx', 'compose'])
        cpSync(path.join(REPO, dir), path.join(data, dir), { recursive: true });
      writeFileSync(path.join(data, 'templates/credentials.txt.hbs'), 'Hello {{#if}}\n');
      const run = await runCli(['--root', makeRoot(), '--skip-stack'], { IMMICH_FIRSTBOOT_DATA_DIR: data, ...env });
      expect(run.code).toBe(1);
      const failed = run.lines.find((l) => l.step === 'credentials' && l.level >= 50) as
        { err?: { stack?: string } } | undefined;
      const stack = failed?.err?.stack ?? '';
      expect(stack).toMatch(/node_modules\/handlebars\/[\w/.-]+\.js:\d+:\d+/);
      expect(stack).toMatch(/src\/render\.ts:\d+:\d+/);
      expect(stack).not.toMatch(/chunk-[A-Z0-9]+\.mjs|immich-firstboot\.mjs/);
    });
});
