// run --data-disk-only's quick look at config.yaml's text: it may answer "no data disk" without the YAML
// parser only when the parser could not find one. Every spelling below is checked against parseConfig itself.
// The same spellings hold debian/data-disk-wanted (the unit's ExecCondition=, which skips the unit before Node
// starts) to the parser's answer.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { mayConfigure } from '../../../src/commands/data-disk-only.js';
import { parseConfig } from '../../../src/config.js';

const parsed = (text: string) => parseConfig(text, { displayPath: 'config.yaml' });

const CONFIGURED: Array<[string, string]> = [
  ['block', 'imds:\n  enabled: false\ndataDisk:\n  lun: 0\n'],
  ['flow', 'dataDisk: {lun: 0}\n'],
  ['flow, spaced', 'dataDisk: { lun: 3 }\n'],
  ['auto', 'dataDisk: auto\n'],
  ['double-quoted key', '"dataDisk": auto\n'],
  ['single-quoted key', "'dataDisk': {lun: 1}\n"],
  ['inside a flow mapping', '{imds: {enabled: false}, dataDisk: auto}\n'],
  ['explicit key', '? dataDisk\n: auto\n'],
  ['after a comment on its line', 'logLevel: info # dataDisk\ndataDisk: auto\n'],
  ['escaped key', '"data\\x44isk": auto\n'],
  ['escaped line break in a key', '? "data\\\n  Disk"\n: auto\n'],
  ['CRLF line ends', 'imds:\r\n  enabled: false\r\ndataDisk: auto\r\n'],
];
const NONE: Array<[string, string]> = [
  ['the shipped config.yaml (every key commented out)', readFileSync('templates/config.yaml', 'utf8')],
  ['IMDS off', 'imds:\n  enabled: false\n'],
  ['a commented-out data disk', 'imds:\n  enabled: false\n# dataDisk: { lun: 0 }\n   #dataDisk: auto\n'],
  ['an empty file', ''],
];
const UNSURE: Array<[string, string]> = [
  ['dataDisk: none, written out', 'dataDisk: none\n'],
  ['a tag', 'domain: !!str photos.example.org\n'],
  ['an escape', 'domain: "photos\\x2eexample.org"\n'],
];
const LOG_LEVEL: [string, string] = ['logLevel (which decides whether the line is logged)', 'logLevel: warn\n'];

describe('mayConfigure (run --data-disk-only without the YAML parser)', () => {
  it.each(CONFIGURED)('sees a data disk configured in YAML spelled %s', (_, text) => {
    expect(parsed(text).dataDisk).not.toBe('none');
    expect(mayConfigure(text)).toBe(true);
  });

  it.each(NONE)('answers "none" at once for %s, as the parser does', (_, text) => {
    expect(parsed(text).dataDisk).toBe('none');
    expect(mayConfigure(text)).toBe(false);
  });

  it.each([...UNSURE, LOG_LEVEL])('leaves %s to the parser', (_, text) => {
    expect(mayConfigure(text)).toBe(true);
  });
});

describe("debian/data-disk-wanted (the data-disk unit's ExecCondition=: exit 1 skips the unit)", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ifb-wanted-'));
  let n = 0;
  /** The script's exit code for config.yaml at `file` (made by `make`). */
  const wanted = (make: (file: string) => void): number | null => {
    const file = path.join(dir, `config-${++n}.yaml`);
    make(file);
    return spawnSync('sh', ['debian/data-disk-wanted', file]).status;
  };
  const forText = (text: string | Buffer) => wanted((f) => writeFileSync(f, text));

  it.each([...CONFIGURED, ...UNSURE])('runs the unit for YAML spelled %s', (_, text) => {
    expect(forText(text)).toBe(0);
  });

  // logLevel matters to the program's own line only: with no possible dataDisk key there is no disk to handle.
  it.each([...NONE, LOG_LEVEL])('skips the unit for %s, where the parser finds no data disk', (_, text) => {
    expect(parsed(text).dataDisk).toBe('none');
    expect(forText(text)).toBe(1);
  });

  it('skips the unit when config.yaml does not exist (the defaults: no data disk), as the program does', () => {
    expect(wanted(() => undefined)).toBe(1);
  });

  it('runs the unit for what it cannot read as text, for the program to report: a directory, a dangling link, a NUL byte', () => {
    expect(wanted((f) => symlinkSync(path.join(dir, 'nowhere'), f))).toBe(0);
    expect(spawnSync('sh', ['debian/data-disk-wanted', dir]).status).toBe(0);
    expect(forText(Buffer.from('imds: {enabled: false}\n\0\ndataDisk: auto\n'))).toBe(0);
  });

  it('is executable, as the unit runs it', () => {
    expect(statSync('debian/data-disk-wanted').mode & 0o777).toBe(0o755);
  });
});
