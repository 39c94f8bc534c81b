// Builds the one shipped file: dist/immich-firstboot.mjs, every dependency bundled, for Node 18.19.
import { build } from 'esbuild';
import { readFileSync, chmodSync, renameSync } from 'node:fs';
import { isBuiltin } from 'node:module';

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const target = 'dist/immich-firstboot.mjs';
// Built beside the target and renamed over it: a test running the bundle never reads half a file.
const outfile = `dist/.immich-firstboot.${process.pid}.tmp.mjs`;

// In one ESM file esbuild must hoist every `import ... from 'node:x'` to the top, so a module imported
// only on demand (execa, pino, the steps) would still load its built-ins (child_process, stream, tty,
// crypto, ...) at every start: several milliseconds of `status` and of each login's MOTD. As require()
// calls (through the banner's require) they run only when the module that imports them is first used.
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
  // The CommonJS dependencies (pino, handlebars, yaml) call require() for Node's built-ins.
  banner: { js: "#!/usr/bin/env node\nimport { createRequire as __ifbCreateRequire } from 'node:module';\nconst require = __ifbCreateRequire(import.meta.url);" },
  plugins: [lazyBuiltins],
  logLevel: 'warning',
});
chmodSync(outfile, 0o755);
renameSync(outfile, target);
