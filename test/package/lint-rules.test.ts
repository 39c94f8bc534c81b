// The architecture rules in eslint.config.mjs catch what they promise: code planted at a path (never
// written to disk) is linted as if it lived there. Type information is switched off for these snippets
// (they are outside tsconfig); the import and syntax rules need none.
import { ESLint } from 'eslint';
import tseslint from 'typescript-eslint';
import { describe, expect, it } from 'vitest';
import { REPO } from '../support/cli.js';

const eslint = new ESLint({
  cwd: REPO,
  overrideConfig: [
    { ...tseslint.configs.disableTypeChecked, languageOptions: { parserOptions: { projectService: false } } },
  ],
});

async function findings(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: `${REPO}/${file}` });
  return (result?.messages ?? []).map((m) => `${m.ruleId ?? 'parse'}: ${m.message}`);
}

describe('the architecture rules', () => {
  it.each([
    [
      'src/steps/planted.ts',
      "import { readFileSync } from 'node:fs';\nexport const x = readFileSync;\n",
      /no-restricted-imports: 'node:fs' import is restricted.*System/,
    ],
    [
      'src/commands/planted.ts',
      "import { execa } from 'execa';\nexport const x = execa;\n",
      /no-restricted-imports: 'execa' import is restricted/,
    ],
    [
      'src/planted.ts',
      "import { randomBytes } from 'node:crypto';\nexport const x = randomBytes;\n",
      /no-restricted-imports: 'randomBytes' import from 'node:crypto' is restricted/,
    ],
    [
      'src/commands/planted.ts',
      "export const x = async () => import('node:child_process');\n",
      /no-restricted-syntax: files, processes/,
    ],
    [
      'src/planted.ts',
      "import type { StepContext } from './steps/step.js';\nexport type X = StepContext;\n",
      /no-restricted-imports: .* floor "below the steps"/,
    ],
    [
      'src/steps/planted.ts',
      "import { doctor } from '../commands/doctor.js';\nexport const x = doctor;\n",
      /no-restricted-imports: .* floor "steps"/,
    ],
    [
      'src/commands/planted.ts',
      "import { main } from '../main.js';\nexport const x = main;\n",
      /no-restricted-imports: .* floor "commands and the runner"/,
    ],
    [
      'src/system/planted.ts',
      "import { main } from '../main.js';\nexport const x = main;\n",
      /no-restricted-imports: .* floor "ground"/,
    ],
    [
      'src/stack.ts',
      "export const where = '/etc/immich-firstboot/x';\n",
      /no-restricted-syntax: absolute paths live in src\/paths\.ts/,
    ],
    [
      'src/steps/planted.ts',
      'export const where = `/proc/${process.pid}/stat`;\n',
      /no-restricted-syntax: absolute paths live in src\/paths\.ts/,
    ],
  ])('refuses, in %s: %j', async (file, code, expected) => {
    expect((await findings(file, code)).join('\n')).toMatch(expected);
  });

  it.each([
    ['src/system/planted.ts', "import { readFileSync } from 'node:fs';\nexport const x = readFileSync;\n"],
    ['src/paths.ts', "export const where = '/etc/immich-firstboot/x';\n"],
    [
      'src/steps/planted.ts',
      "import { isIP } from 'node:net';\nimport { createHash } from 'node:crypto';\nimport { PATHS } from '../paths.js';\nexport const x = [isIP, createHash, PATHS];\n",
    ],
    ['src/commands/planted.ts', "import { FIRST_BOOT } from '../steps/index.js';\nexport const x = FIRST_BOOT;\n"],
  ])('allows, in %s: %j', async (file, code) => {
    expect(await findings(file, code)).toEqual([]);
  });
});
