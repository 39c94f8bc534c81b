// Just enough of roff (man(7)) to read our man page back (its sections, the tags of its .TP lists,
// plain text with the font macros and escapes taken out) and to write plain text into it.

/** The lines of each `.SH` section, by title ("OPTIONS", "ERROR CODES"). */
export function sections(page: string): Map<string, string[]> {
  const found = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of page.split('\n')) {
    const title = /^\.SH\s+(.*)$/.exec(line);
    if (title) found.set(unquote(title[1]), (current = []));
    else current?.push(line);
  }
  return found;
}

/** The text a macro line shows: `.BR \-h ", " \-\-help` is "-h, --help"; a text line is unescaped. */
export function plain(line: string): string {
  const macro = /^\.(B|I|BI|BR|IB|IR|RB|RI)\s+(.*)$/.exec(line);
  if (!macro) return unescape(line);
  const args = [...macro[2].matchAll(/"((?:[^"]|"")*)"|(\S+)/g)].map((m) => m[1] ?? m[2]);
  // .B and .I join their words with spaces; the alternating ones (.BR, .BI, ...) join them with none.
  return unescape(macro[1].length === 1 ? args.join(' ') : args.join(''));
}

/** The tag line of each item of a `.TP` list, as plain text. */
export function tags(lines: readonly string[]): string[] {
  return lines.flatMap((line, i) => (line === '.TP' && lines[i + 1] !== undefined ? [plain(lines[i + 1])] : []));
}

function unquote(text: string): string {
  return text.replace(/^"(.*)"$/, '$1');
}

function unescape(text: string): string {
  return text
    .replace(/\\f[BIRP]/g, '')
    .replace(/\\[&%]/g, '')
    .replace(/\\\(em/g, '—')
    .replace(/\\-/g, '-')
    .replace(/\\e/g, '\\');
}

/** Plain text as a roff text line: hyphens and backslashes escaped, `code` in bold, no leading control character. */
export function roffText(text: string): string {
  const escaped = text
    .split('`')
    .map((part, i) => {
      const safe = part.replace(/\\/g, '\\e').replace(/-/g, '\\-');
      return i % 2 === 1 ? `\\fB${safe}\\fR` : safe;
    })
    .join('');
  // \% before a word keeps groff from hyphenating it: a command broken as "im-/mich-firstboot" misleads.
  let bold = false;
  const words = escaped.split(' ').map((word) => {
    const code = bold || word.includes('\\fB');
    const fonts = word.match(/\\f[BR]/g);
    if (fonts) bold = fonts[fonts.length - 1] === '\\fB';
    return code ? `\\%${word}` : word;
  });
  const line = words.join(' ');
  return /^[.']/.test(line) ? `\\&${line}` : line;
}
