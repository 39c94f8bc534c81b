// ESLint (flat config) with typescript-eslint's type-aware rules, and the house's architecture as
// import rules per folder: floors that only go down, and one door (src/system/) to files, processes,
// the network and randomness. Formatting is Prettier's (.prettierrc.json), not ESLint's.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Modules that reach the OS: only src/system/ may import them. */
const IO_MODULES = [
  'fs',
  'fs/promises',
  'child_process',
  'os',
  'http',
  'https',
  'net',
  'tls',
  'dgram',
  'execa',
].flatMap((m) => (m === 'execa' ? [m] : [m, `node:${m}`]));
/** Pure helpers of node:net and node:crypto stay allowed (isIP, X509Certificate, createHash); randomness is System's. */
const io = (why) => [
  ...IO_MODULES.filter((m) => !/^(node:)?net$/.test(m)).map((name) => ({ name, message: why })),
  ...['net', 'node:net'].map((name) => ({
    name,
    importNames: ['connect', 'createConnection', 'createServer', 'Socket', 'Server'],
    message: why,
  })),
  ...['crypto', 'node:crypto'].map((name) => ({
    name,
    importNames: ['randomBytes', 'randomInt', 'randomUUID', 'getRandomValues'],
    message: why,
  })),
];
const THROUGH_SYSTEM = 'files, processes, the network and randomness go through the System (src/system/)';

/** Floors, lowest first: a module may import its own floor and the ones below, never one above. */
const FLOORS = [
  { name: 'ground', files: ['src/system/**', 'src/errors.ts', 'src/error-codes.ts', 'src/paths.ts', 'src/version.ts'] },
  { name: 'below the steps', files: ['src/*.ts'] },
  { name: 'steps', files: ['src/steps/**'] },
  { name: 'commands and the runner', files: ['src/commands/**', 'src/runner.ts'] },
  { name: 'the entry', files: ['src/main.ts', 'src/cli.ts', 'src/bin.ts', 'src/stdio.ts'] },
];
/** Import patterns (relative to a file of each floor) that would reach a floor above. */
const ABOVE = {
  ground: [
    '../*',
    '!../errors.js',
    '!../error-codes.js',
    '!../paths.js',
    '!../version.js',
    './steps/*',
    './commands/*',
    './runner.js',
    './main.js',
    './cli.js',
  ],
  'below the steps': ['./steps/*', './commands/*', './runner.js', './main.js', './cli.js', './bin.js', './stdio.js'],
  steps: ['../commands/*', '../runner.js', '../main.js', '../cli.js', '../bin.js', '../stdio.js'],
  'commands and the runner': [
    '../main.js',
    '../cli.js',
    '../bin.js',
    '../stdio.js',
    './main.js',
    './cli.js',
    './bin.js',
    './stdio.js',
  ],
  'the entry': [],
};

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'bench/out/', 'demo-root/', 'debian/', 'test/fixtures/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ['vitest.config.ts'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      // The forgotten await that leaves a first boot half done.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // An async method that needs no await is fine where the contract is async (System, the command
      // table, the fakes that stand in for it).
      '@typescript-eslint/require-await': 'off',
    },
  },
  // Tests: vitest's asymmetric matchers (expect.any, expect.objectContaining) are typed `any`, and JSON
  // read back from the program under test is untyped by nature; the type-aware safety rules stay for src/.
  {
    files: ['test/**'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  // Scripts and benches are plain JavaScript, outside tsconfig: no type information for them.
  { files: ['**/*.mjs', '**/*.js'], ...tseslint.configs.disableTypeChecked },
  {
    files: ['**/*.mjs', '**/*.js'],
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        URL: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        Buffer: 'readonly',
      },
    },
  },
  ...FLOORS.map((floor) => ({
    files: floor.files,
    ignores: floor.name === 'below the steps' ? FLOORS[0].files : [],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: floor.name === 'ground' ? [] : io(THROUGH_SYSTEM),
          patterns: ABOVE[floor.name].length
            ? [
                {
                  group: ABOVE[floor.name],
                  message: `a module on the floor "${floor.name}" imports only its own floor and those below it`,
                },
              ]
            : [],
        },
      ],
      // `await import('node:fs')` is an import too.
      'no-restricted-syntax':
        floor.name === 'ground'
          ? 'off'
          : [
              'error',
              {
                selector: `ImportExpression > Literal[value=/^(node:)?(${IO_MODULES.map((m) => m.replace(/^node:/, '').replace('/', '\\/')).join('|')})$/]`,
                message: THROUGH_SYSTEM,
              },
              {
                // Absolute paths are spelled once, in src/paths.ts.
                selector:
                  'Literal[value=/^\\/(etc|opt|var|root|run|usr|srv|home|proc|sys|dev|tmp)\\//], TemplateElement[value.raw=/^\\/(etc|opt|var|root|run|usr|srv|home|proc|sys|dev|tmp)\\//]',
                message: 'absolute paths live in src/paths.ts',
              },
            ],
    },
  })),
);
