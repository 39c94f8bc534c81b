// The error-code catalog (src/error-codes.ts) is complete, every row is produced somewhere, and the man
// page's ERROR CODES section shows it. After changing the catalog, rewrite that section with
//   UPDATE_MAN_PAGE=1 npx vitest run test/unit/error-codes.test.ts

import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, IO_ERRNOS, ioErrorCode, type ErrorCode, type ErrorCodeEntry } from '../../src/error-codes.js';
import { REPO } from '../support/cli.js';
import { roffText, sections } from '../support/roff.js';

const MAN_PAGE = path.join(REPO, 'debian/immich-firstboot.8');
const entries = Object.entries(ERROR_CODES) as Array<[ErrorCode, ErrorCodeEntry]>;

/** The man page's rows for the catalog: the code as the tag, the meaning, then the usual fix. */
const manRows = (): string[] =>
  entries.flatMap(([code, entry]) => [
    '.TP',
    `.B ${roffText(code)}`,
    roffText(entry.meaning),
    '.br',
    roffText(`Usual fix: ${entry.fix}`),
  ]);

const sourceFiles = (dir: string): string[] =>
  readdirSync(dir).flatMap((name) => {
    const file = path.join(dir, name);
    return statSync(file).isDirectory() ? sourceFiles(file) : file.endsWith('.ts') ? [file] : [];
  });

describe('the error codes', () => {
  it('each have a meaning and a usual fix, each a sentence', () => {
    for (const [code, entry] of entries) {
      expect(entry.meaning.trim(), code).toMatch(/^\S.*[.)]$/);
      expect(entry.fix.trim(), code).toMatch(/^\S.*\.$/);
      expect(code).toMatch(/^[a-z][a-z0-9-]*$/);
    }
  });

  it('are each produced by the program: every row but the io-* family is spelled in src/', () => {
    const src = sourceFiles(path.join(REPO, 'src'))
      .filter((f) => !f.endsWith('error-codes.ts'))
      .map((f) => readFileSync(f, 'utf8'))
      .join('\n');
    const unused = entries
      .map(([code]) => code)
      .filter((code) => !code.startsWith('io-') && !src.includes(`'${code}'`));
    expect(unused).toEqual([]);
    // Codes that reach the journal without a FirstbootError (tsc checks those), such as status's `interrupted`.
    const literal = [...src.matchAll(/\bcode: '([a-z][a-z0-9-]*)'/g)].map((m) => m[1]);
    expect(literal.filter((code) => !(code in ERROR_CODES))).toEqual([]);
  });

  it('name a failed file operation by its errno, and any errno not in the catalog io-other', () => {
    for (const errno of IO_ERRNOS) expect(ERROR_CODES[ioErrorCode(errno)], errno).toBeDefined();
    expect(ioErrorCode('ENOSPC')).toBe('io-enospc');
    expect(ioErrorCode('EOVERFLOW')).toBe('io-other');
  });

  it("are the man page's ERROR CODES section, row for row", () => {
    let page = readFileSync(MAN_PAGE, 'utf8');
    if (process.env.UPDATE_MAN_PAGE) {
      const start = page.indexOf('\n.TP\n', page.indexOf('\n.SH ERROR CODES\n'));
      const end = page.indexOf('\n.SH ', start + 1);
      if (start < 0 || end < 0)
        throw new Error(`${MAN_PAGE}: no .SH ERROR CODES with a .TP list, followed by another section`);
      page = `${page.slice(0, start + 1)}${manRows().join('\n')}${page.slice(end)}`;
      writeFileSync(MAN_PAGE, page);
    }
    const lines = sections(page).get('ERROR CODES') ?? [];
    const rows = lines.slice(lines.indexOf('.TP'));
    expect(rows, 'rewrite the section: UPDATE_MAN_PAGE=1 npx vitest run test/unit/error-codes.test.ts').toEqual(
      manRows(),
    );
  });
});
