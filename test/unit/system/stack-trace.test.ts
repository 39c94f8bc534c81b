// A stack printed from built files names the file and line each frame was built from, read from the
// source map beside it only then; a frame without a map (a built-in, a file built without one) stays as
// V8 wrote it. Built with esbuild as scripts/build.mjs builds (splitting, ESM, source maps) and run by
// plain Node in a child process: vitest maps stacks itself, which would hide what this module does.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO } from '../../support/cli.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'ifb-stack-'));
const out = path.join(dir, 'out');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

beforeAll(async () => {
  writeFileSync(
    path.join(dir, 'thrower.ts'),
    "// line 1\nexport function thrower(): never {\n  throw new Error('from a chunk');\n}\n",
  );
  writeFileSync(
    path.join(dir, 'main.ts'),
    [
      `import { withSourcePositions } from ${JSON.stringify(path.join(REPO, 'src/system/stack-trace.ts'))};`,
      "const { thrower } = await import('./thrower.ts');",
      'try {',
      '  [1].map(() => thrower());',
      '} catch (error) {',
      '  process.stdout.write(withSourcePositions((error as Error).stack ?? ""));',
      '}',
      '',
    ].join('\n'),
  );
  await build({
    entryPoints: [path.join(dir, 'main.ts')],
    outdir: out,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    sourcemap: true,
    logLevel: 'warning',
  });
});

const printed = (): string => execFileSync(process.execPath, [path.join(out, 'main.mjs')], { encoding: 'utf8' });

describe('withSourcePositions', () => {
  it('names the source file, line and column of each frame in a built file', () => {
    const stack = printed();
    expect(stack).toMatch(/^Error: from a chunk\n/);
    expect(stack).toContain(`at thrower (${path.join(dir, 'thrower.ts')}:3:9)`);
    expect(stack).toContain(`${path.join(dir, 'main.ts')}:4:17`);
    expect(stack).not.toMatch(/\.mjs:\d+/);
    // Not a built file: as V8 wrote it.
    expect(stack).toContain('at Array.map (<anonymous>)');
  });

  it('leaves a frame in a built file without a map as it is', () => {
    const chunk = readdirSync(out).find((n) => n.startsWith('thrower-') && n.endsWith('.mjs'));
    rmSync(path.join(out, `${chunk}.map`));
    const stack = printed();
    expect(stack).toMatch(new RegExp(`at thrower \\(file://${out}/${chunk}:\\d+:\\d+\\)`));
    expect(stack).toContain(`${path.join(dir, 'main.ts')}:4:17`);
  });
});
