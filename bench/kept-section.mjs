// The hand-measured part of bench/RESULTS.md (instruction counts from valgrind's callgrind): no script
// measures it again, so bench/run.mjs, which rewrites the file, carries it over as it stands, last.
// Pure (no file access), so that test/unit/bench-kept-section.test.ts can import it.
export const KEPT_BEGIN = '<!-- bench:kept -->';
export const KEPT_END = '<!-- /bench:kept -->';

/**
 * The kept section of `md` (a whole RESULTS.md), from its begin marker to its end marker, both included:
 * `{ section }`, or `{ problem }` saying why there is none to keep (no begin marker, no end marker after
 * it, a marker twice: then where the section ends is a guess, and a guess could drop or duplicate text).
 */
export function keptSection(md) {
  const begin = md.indexOf(KEPT_BEGIN);
  const end = md.indexOf(KEPT_END);
  if (begin === -1) return { problem: `no ${KEPT_BEGIN} marker` };
  if (end < begin) return { problem: `no ${KEPT_END} marker after ${KEPT_BEGIN}` };
  if (md.includes(KEPT_BEGIN, begin + 1) || md.includes(KEPT_END, end + 1))
    return { problem: `${KEPT_BEGIN} or ${KEPT_END} more than once` };
  return { section: md.slice(begin, end + KEPT_END.length) };
}

/** `md` (what run.mjs writes) with `section` (from keptSection) after everything else, or `md` alone. */
export function withKeptSection(md, section) {
  return section ? `${md.trimEnd()}\n\n${section}\n` : md;
}
