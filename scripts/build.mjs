// Builds what the .deb ships: dist/immich-firstboot.mjs and the chunks it imports, with source maps.
// Plain esbuild code splitting: `status` and the login's MOTD are in the entry; every other command is
// one chunk (src/commands/index.ts, with yaml and pino) imported when chosen, and Handlebars and execa
// are chunks imported at their first use. So `status` and the MOTD load the entry and two small chunks
// (what it shares with the rest, and esbuild's helpers), none of yaml, Handlebars, execa or pino. A
// logged stack trace names the real file and line, in src/ or in a dependency: src/system/stack-trace.ts
// reads the source maps when a stack is printed (Node's --enable-source-maps would read every loaded
// chunk's map at every start).
import { build } from 'esbuild';
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const dist = 'dist';
const entry = 'immich-firstboot.mjs';
const shipped = (name) => /\.mjs(\.map)?$/.test(name);

// Built for dist/ (so each source map names src/ and node_modules/ where they are), written to a private
// directory, then renamed into dist/ file by file, the entry last: a test running the bundle meanwhile
// never reads half a file, and never an entry whose chunks are not there yet.
mkdirSync(dist, { recursive: true });
const out = mkdtempSync(path.join(dist, '.build-'));
try {
  const { outputFiles } = await build({
    // src/bin.ts starts with `#!/usr/bin/env node`, which esbuild keeps as the entry's first line (and
    // counts in its map): package.json's "bin" (npm link, npx) runs the entry itself; the .deb's wrapper
    // runs node on it.
    entryPoints: { 'immich-firstboot': 'src/bin.ts' },
    outdir: dist,
    write: false,
    outExtension: { '.js': '.mjs' },
    chunkNames: 'chunk-[hash]',
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    // Ubuntu 24.04's nodejs: esbuild refuses syntax newer than this target.
    target: 'node18.19',
    sourcemap: true,
    legalComments: 'eof',
    define: { __IMMICH_FIRSTBOOT_VERSION__: JSON.stringify(version) },
    // The CommonJS dependencies (pino, handlebars, dotenv) call require() for Node's built-ins, which an
    // ES module does not have: each chunk gets one of its own.
    banner: {
      js: "import { createRequire as __ifbCreateRequire } from 'node:module';\nconst require = __ifbCreateRequire(import.meta.url);",
    },
    logLevel: 'warning',
  });
  for (const file of outputFiles) writeFileSync(path.join(out, path.basename(file.path)), file.contents);
  const built = readdirSync(out).filter(shipped);
  chmodSync(path.join(out, entry), 0o755);
  for (const name of built.filter((n) => n !== entry)) renameSync(path.join(out, name), path.join(dist, name));
  renameSync(path.join(out, entry), path.join(dist, entry));
  // What an earlier build left and this one no longer has (chunk names carry a content hash).
  for (const name of readdirSync(dist).filter((n) => shipped(n) && !built.includes(n))) rmSync(path.join(dist, name));
} finally {
  rmSync(out, { recursive: true, force: true });
}
