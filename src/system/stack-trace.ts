// A stack trace as a person needs it: each frame in a built file (dist/*.mjs) named by the file and line
// it was built from (src/*.ts, node_modules/...), read from the source map beside it. Node's
// --enable-source-maps does the same, but it reads and parses the map of every module while loading it,
// and Node cannot do that later (process.setSourceMapsEnabled(true) maps only modules loaded after it):
// milliseconds of every `status`, login and per-boot check, none of which prints a stack. Here a map is
// read only when a stack is printed, with Node's own SourceMap.

import { readFileSync } from 'node:fs';
import { SourceMap, type SourceMapPayload } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** A frame's place in a built file: `file:///usr/lib/immich-firstboot/chunk-X.mjs:12:34`. */
const BUILT_POSITION = /(file:\/\/[^\s()]+\.mjs):(\d+):(\d+)/g;

interface Built {
  map: SourceMap;
  /** What a source is resolved against: the map's own URL, its sourceRoot before each source (as Node does). */
  mapUrl: URL;
  sourceRoot: string;
}

const maps = new Map<string, Built | null>();

/** `stack` with every frame that has a source map in its original file, line and column; others as they are. */
export function withSourcePositions(stack: string): string {
  return stack.replace(BUILT_POSITION, (position, url: string, line: string, column: string) => {
    const built = mapOf(url);
    // Zero-based here, one-based in a stack trace, as Node's own mapping does.
    const entry = built?.map.findEntry(Number(line) - 1, Number(column) - 1);
    if (!built || !entry || !('originalSource' in entry) || entry.originalSource === undefined) return position;
    const source = new URL(built.sourceRoot + entry.originalSource, built.mapUrl);
    const name = source.protocol === 'file:' ? fileURLToPath(source) : source.href;
    return `${name}:${entry.originalLine + 1}:${entry.originalColumn + 1}`;
  });
}

/** The map beside a built file (`chunk-X.mjs.map`), read once; null if there is none. */
function mapOf(url: string): Built | null {
  if (!maps.has(url)) {
    let built: Built | null = null;
    try {
      const mapFile = `${fileURLToPath(url)}.map`;
      const payload = JSON.parse(readFileSync(mapFile, 'utf8')) as SourceMapPayload;
      built = { map: new SourceMap(payload), mapUrl: pathToFileURL(mapFile), sourceRoot: payload.sourceRoot ?? '' };
    } catch {
      // No map, or none we can read: the frame stays as V8 wrote it.
    }
    maps.set(url, built);
  }
  return maps.get(url) ?? null;
}
