// bench/RESULTS.md's hand-measured section (callgrind's instruction counts), which `npm run bench` rewrites
// the file around: bench/run.mjs carries it over with bench/kept-section.mjs.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { KEPT_BEGIN, KEPT_END, keptSection, withKeptSection } from '../../bench/kept-section.mjs';
import { REPO } from '../support/cli.js';

const RUN = '# Benchmark results\n\nWritten by `npm run bench` today.\n\n| # | measure |\n\nhyperfine is not used.\n';
const SECTION = `${KEPT_BEGIN}\n\nMeasured by hand.\n\n## Instructions\n\n| command | M |\n| --- | --- |\n| \`status\` | 565 |\n${KEPT_END}`;
const CURRENT = `# Benchmark results\n\nWritten by \`npm run bench\` yesterday.\n\n${SECTION}\n`;

describe("bench/RESULTS.md's kept section", () => {
  it('is carried from the current file to the end of the new one, unchanged, and found there again', () => {
    const { section } = keptSection(CURRENT);
    const written = withKeptSection(RUN, section);
    expect(written).toBe(`${RUN}\n${SECTION}\n`);
    expect(keptSection(written)).toEqual({ section: SECTION });
  });

  it("holds, in the committed file, both callgrind tables and nothing of run.mjs's own sections", () => {
    const { section, problem } = keptSection(readFileSync(path.join(REPO, 'bench', 'RESULTS.md'), 'utf8'));
    expect(problem).toBeUndefined();
    expect(section).toContain('## Start time against the loader build (issue 14), in instructions');
    expect(section).toContain("## per-boot's every-boot check (issue 20), in instructions");
    expect(section).toContain('valgrind');
    expect(section).not.toContain('## How each number is made');
    expect(section).not.toContain('bench:boot');
  });

  it.each([
    ['no begin marker', `${RUN}## Instructions\n${KEPT_END}\n`, `no ${KEPT_BEGIN} marker`],
    ['no end marker', `${RUN}${KEPT_BEGIN}\n## Instructions\n`, `no ${KEPT_END} marker after ${KEPT_BEGIN}`],
    ['the end marker first', `${RUN}${KEPT_END}\n## Instructions\n${KEPT_BEGIN}\n`, `no ${KEPT_END} marker after`],
    ['a marker twice', `${RUN}${SECTION}\n${SECTION}\n`, 'more than once'],
  ])('finds none to keep when the file has %s, says why, and the new file is written without one', (_, md, why) => {
    const kept = keptSection(md);
    expect(kept.section).toBeUndefined();
    expect(kept.problem).toContain(why);
    expect(withKeptSection(RUN, kept.section)).toBe(RUN);
  });
});
