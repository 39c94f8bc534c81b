// run --data-disk-only's quick look at config.yaml's text: it may answer "no data disk" without the YAML
// parser only when the parser could not find one. Every spelling below is checked against parseConfig itself.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { mayConfigure } from '../../../src/commands/data-disk-only.js';
import { parseConfig } from '../../../src/config.js';

const parsed = (text: string) => parseConfig(text, { displayPath: 'config.yaml' });

describe('mayConfigure (run --data-disk-only without the YAML parser)', () => {
  it.each([
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
  ])('sees a data disk configured in YAML spelled %s', (_, text) => {
    expect(parsed(text).dataDisk).not.toBe('none');
    expect(mayConfigure(text)).toBe(true);
  });

  it.each([
    ['the shipped config.yaml (every key commented out)', readFileSync('templates/config.yaml', 'utf8')],
    ['IMDS off', 'imds:\n  enabled: false\n'],
    ['a commented-out data disk', 'imds:\n  enabled: false\n# dataDisk: { lun: 0 }\n   #dataDisk: auto\n'],
    ['an empty file', ''],
  ])('answers "none" at once for %s, as the parser does', (_, text) => {
    expect(parsed(text).dataDisk).toBe('none');
    expect(mayConfigure(text)).toBe(false);
  });

  it.each([
    ['dataDisk: none, written out', 'dataDisk: none\n'],
    ['logLevel (which decides whether the line is logged)', 'logLevel: warn\n'],
    ['a tag', 'domain: !!str photos.example.org\n'],
    ['an escape', 'domain: "photos\\x2eexample.org"\n'],
  ])('leaves %s to the parser', (_, text) => {
    expect(mayConfigure(text)).toBe(true);
  });
});
