// Builds the one shipped file: dist/immich-firstboot.mjs, every dependency bundled, for Node 18.19.
import { build } from 'esbuild';
import { readFileSync, chmodSync, renameSync } from 'node:fs';
import { isBuiltin } from 'node:module';

const { version, dependencies } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const target = 'dist/immich-firstboot.mjs';
// Built beside the target and renamed over it: a test running the bundle never reads half a file.
const outfile = `dist/.immich-firstboot.${process.pid}.tmp.mjs`;

// In one ESM file esbuild must hoist every `import ... from 'node:x'` to the top, so a module imported
// only on demand (a command, the steps) would still load its built-ins (node:crypto, node:net, ...) at
// every start: milliseconds of each `status` and each login's MOTD. As require() calls (through the
// banner's require) they run only when the module that imports them is first used.
const lazyBuiltins = {
  name: 'lazy-builtins',
  setup(b) {
    b.onResolve({ filter: /^[\w:/]+$/ }, (args) => {
      if (args.kind !== 'import-statement' || !isBuiltin(args.path)) return undefined;
      return { path: args.path, namespace: 'lazy-builtin' };
    });
    b.onLoad({ filter: /.*/, namespace: 'lazy-builtin' }, (args) => ({ contents: `module.exports = require(${JSON.stringify(args.path)});`, loader: 'js' }));
  },
};

// The npm packages are most of the file (yaml, Handlebars, execa, pino: ~950 KB of ~1.1 MB), and V8
// parses every function of a script before running any of it: ~15 ms of each `status` and of each
// login's MOTD, which use none of them. The .deb ships one file, so no code splitting: instead each
// runtime dependency is bundled on its own as CommonJS and carried as a string, compiled with
// vm.compileFunction (as Node's own loader compiles a CommonJS module) the first time it is required. Scanning a string costs a quarter of parsing the code, less once blanks and
// comments are gone (names are kept, for stack traces). "use strict": in an ESM bundle they all ran
// strict already, and execa is ESM.
const COMPILED_ON_FIRST_USE = Object.keys(dependencies);

async function packageText(name) {
  const { outputFiles } = await build({
    entryPoints: [name],
    write: false,
    outfile: `${name}.cjs`,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node18.19',
    minifyWhitespace: true,
    minifySyntax: true,
    legalComments: 'eof',
    logLevel: 'warning',
  });
  const text = outputFiles[0].text;
  return text.startsWith('"use strict";') ? text : `"use strict";\n${text}`;
}

const texts = Object.fromEntries(await Promise.all(COMPILED_ON_FIRST_USE.map(async (name) => [name, await packageText(name)])));
const compileOnFirstUse = {
  name: 'compile-on-first-use',
  setup(b) {
    b.onResolve({ filter: new RegExp(`^(${COMPILED_ON_FIRST_USE.join('|')})$`) }, (args) => ({ path: args.path, namespace: 'compile-on-first-use' }));
    b.onLoad({ filter: /.*/, namespace: 'compile-on-first-use' }, ({ path }) => ({
      loader: 'js',
      contents: `const { compileFunction } = require('node:vm');
compileFunction(${JSON.stringify(texts[path])}, ['exports', 'require', 'module'], { filename: ${JSON.stringify(`immich-firstboot.mjs#${path}`)} })(exports, require, module);`,
    }));
  },
};

await build({
  entryPoints: ['src/bin.ts'],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'esm',
  // Ubuntu 24.04's nodejs: esbuild refuses syntax newer than this target.
  target: 'node18.19',
  minify: false,
  legalComments: 'eof',
  define: { __IMMICH_FIRSTBOOT_VERSION__: JSON.stringify(version) },
  // The CommonJS dependencies (pino, handlebars, yaml, execa as bundled above) call require() for Node's built-ins.
  banner: { js: "#!/usr/bin/env node\nimport { createRequire as __ifbCreateRequire } from 'node:module';\nconst require = __ifbCreateRequire(import.meta.url);" },
  plugins: [compileOnFirstUse, lazyBuiltins],
  logLevel: 'warning',
});
chmodSync(outfile, 0o755);
renameSync(outfile, target);
