// What the build ships: plain esbuild output (an entry, chunks, source maps), no loader of our own; what
// `status` and the login load (three small files of our own code, no source map); and logged stack traces
// that name the real file and line — in src/ and in a dependency — under plain node, as the .deb's wrapper
// runs it (the maps are read when a stack is printed), and under --enable-source-maps.
import { spawnSync } from 'node:child_process';
import {
  closeSync,
  cpSync,
  existsSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BUNDLE, REPO, runCli } from '../support/cli.js';
import { makeRoot } from '../support/root.js';
import { expectStrace } from '../support/strace.js';

const DIST = path.join(REPO, 'dist');
const shipped = (): string[] => readdirSync(DIST).filter((n) => n.endsWith('.mjs'));

/** A built file and every chunk it imports statically: what loads before its code runs. */
function statically(name: string, seen = new Set<string>()): Set<string> {
  if (seen.has(name)) return seen;
  seen.add(name);
  const text = readFileSync(path.join(DIST, name), 'utf8');
  for (const [, chunk] of text.matchAll(/^(?:import|\} from) "\.\/(chunk-\w+\.mjs)";$/gm)) statically(chunk, seen);
  return seen;
}
/** What `status` and the MOTD load: the entry and its static imports (main.ts imports nothing more for them). */
const statusFiles = (): string[] => [...statically('immich-firstboot.mjs')].sort();

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

  // status and the MOTD print the journal, which was redacted when it was written: they do not read .env
  // again, so dotenv (and the node:crypto it loads as it starts) stays out of every login.
  it('gives `status` and the login the entry and three small chunks to load, and no dependency', () => {
    expect(statusFiles()).toHaveLength(4);
    for (const name of statusFiles()) {
      const { sources } = JSON.parse(readFileSync(path.join(DIST, `${name}.map`), 'utf8')) as { sources: string[] };
      expect(
        sources.filter((s) => s.includes('node_modules/')),
        name,
      ).toEqual([]);
    }
  });

  it('opens only those files for `status` and `motd`, and no source map (strace)', () => {
    expectStrace();
    const root = makeRoot();
    for (const command of ['status', 'motd']) {
      const trace = path.join(mkdtempSync(path.join(os.tmpdir(), 'ifb-strace-')), 'openat.log');
      // status exits 5 here (first boot not started): what it opens is the point, not its verdict.
      const args = ['-f', '-qq', '-e', 'trace=openat', '-o', trace, process.execPath, BUNDLE, '--root', root, command];
      expect(spawnSync('strace', args).error).toBeUndefined();
      const opened = [...readFileSync(trace, 'utf8').matchAll(/openat\(AT_FDCWD, "([^"]+)"/g)].map(([, file]) => file);
      const ours = opened.filter((f) => path.dirname(f) === DIST).map((f) => path.basename(f));
      expect([...new Set(ours)].sort(), command).toEqual(statusFiles());
    }
  });

  // per-boot runs at every boot: on a VM where nothing changed its check runs on the config the journal
  // recorded, so it loads neither the YAML parser (config.ts) nor pino (log.ts), no other dependency, and
  // neither node:crypto nor node:net (stdout a file here: on a pipe or a socket, Node's own process.stdout
  // loads node:net).
  it("loads no dependency, no config.ts or log.ts, no node:crypto or node:net for per-boot's check when nothing changed", async () => {
    expectStrace();
    const root = makeRoot();
    expect((await runCli(['--root', root, 'run', '--skip-stack'])).code).toBe(0);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ifb-strace-'));
    const [trace, preload, modules, out] = ['openat.log', 'modules.cjs', 'modules.json', 'stdout'].map((f) =>
      path.join(dir, f),
    );
    writeFileSync(
      preload,
      `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(modules)}, JSON.stringify(process.moduleLoadList)));`,
    );
    const args = ['-f', '-qq', '-e', 'trace=openat', '-o', trace, process.execPath, '-r', preload, BUNDLE];
    const stdout = openSync(out, 'w');
    const run = spawnSync('strace', [...args, '--root', root, 'per-boot'], { stdio: ['ignore', stdout, stdout] });
    closeSync(stdout);
    expect(run.status, readFileSync(out, 'utf8')).toBe(0);
    expect(readFileSync(out, 'utf8')).toContain('per-boot check: same instance, same addresses; nothing to do');
    const opened = [...readFileSync(trace, 'utf8').matchAll(/openat\(AT_FDCWD, "([^"]+)"/g)].map(([, file]) => file);
    const ours = [...new Set(opened.filter((f) => path.dirname(f) === DIST).map((f) => path.basename(f)))];
    // The entry's files and the check's, which the entry imports when per-boot is chosen.
    expect(ours.length).toBeLessThanOrEqual(statusFiles().length + 2);
    for (const name of ours) {
      const { sources } = JSON.parse(readFileSync(path.join(DIST, `${name}.map`), 'utf8')) as { sources: string[] };
      expect(
        sources.filter((s) => s.includes('node_modules/') || /src\/(config|log)\.ts$/.test(s)),
        name,
      ).toEqual([]);
    }
    const builtins = JSON.parse(readFileSync(modules, 'utf8')) as string[];
    for (const name of ['crypto', 'net', 'zlib', 'worker_threads'])
      expect(builtins).not.toContain(`NativeModule ${name}`);
  });

  // run --data-disk-only is the unit's full-privilege pre-start, on every first boot's critical path: with no data
  // disk configured (the shipped config.yaml, every key commented out, plus IMDS off) it answers from the text
  // alone, loading no dependency (no YAML parser, no pino), neither config.ts nor log.ts, and writes no journal.
  it('loads no dependency, no config.ts or log.ts for run --data-disk-only without a data disk, and writes nothing', () => {
    expectStrace();
    const root = makeRoot(
      `${readFileSync(path.join(REPO, 'templates/config.yaml'), 'utf8')}\nimds:\n  enabled: false\n`,
    );
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ifb-strace-'));
    const [trace, out] = ['openat.log', 'stdout'].map((f) => path.join(dir, f));
    const args = ['-f', '-qq', '-e', 'trace=openat', '-o', trace, process.execPath, BUNDLE];
    const stdout = openSync(out, 'w');
    const run = spawnSync('strace', [...args, '--root', root, 'run', '--data-disk-only'], {
      stdio: ['ignore', stdout, stdout],
    });
    closeSync(stdout);
    expect(run.status, readFileSync(out, 'utf8')).toBe(0);
    const lines = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toEqual([
      {
        level: 30,
        time: expect.any(String),
        msg: 'no data disk configured (dataDisk: none); nothing to do before the rest of the first boot',
      },
    ]);
    const opened = [...readFileSync(trace, 'utf8').matchAll(/openat\(AT_FDCWD, "([^"]+)"/g)].map(([, file]) => file);
    expect(opened.filter((f) => f.includes('node_modules/'))).toEqual([]);
    const ours = [...new Set(opened.filter((f) => path.dirname(f) === DIST).map((f) => path.basename(f)))];
    for (const name of ours) {
      const { sources } = JSON.parse(readFileSync(path.join(DIST, `${name}.map`), 'utf8')) as { sources: string[] };
      expect(
        sources.filter((s) => s.includes('node_modules/') || /src\/(config|log|runner|steps\/index)\.ts$/.test(s)),
        name,
      ).toEqual([]);
    }
    expect(existsSync(path.join(root, 'var/lib/immich-firstboot/state.json'))).toBe(false);
  });

  // The first boot's way to `up -d` is paid in built-in modules too (Node 18 compiles each at its first
  // import): what only other commands use stays out of a first boot (prepare-image's gzip search: node:zlib).
  it('loads no node:zlib for a first boot', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ifb-modules-'));
    const [preload, modules] = ['modules.cjs', 'modules.json'].map((f) => path.join(dir, f));
    writeFileSync(
      preload,
      `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(modules)}, JSON.stringify(process.moduleLoadList)));`,
    );
    const run = spawnSync(process.execPath, ['-r', preload, BUNDLE, '--root', makeRoot(), 'run', '--skip-stack'], {
      encoding: 'utf8',
    });
    expect(run.status, run.stdout + run.stderr).toBe(0);
    const builtins = JSON.parse(readFileSync(modules, 'utf8')) as string[];
    expect(builtins).toContain('NativeModule child_process');
    expect(builtins).not.toContain('NativeModule zlib');
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
