// Builds the one shipped file: dist/immich-firstboot.mjs, every dependency bundled, for Node 18.19.
import { build } from 'esbuild';
import { readFileSync, chmodSync, renameSync } from 'node:fs';

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const target = 'dist/immich-firstboot.mjs';
// Built beside the target and renamed over it: a test running the bundle never reads half a file.
const outfile = `dist/.immich-firstboot.${process.pid}.tmp.mjs`;

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
  logLevel: 'warning',
});
chmodSync(outfile, 0o755);
renameSync(outfile, target);
