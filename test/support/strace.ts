// strace, for the tests that watch what a run opens or starts. test/env/install-deps.sh installs it; a
// machine without it fails these tests with that fix named, rather than skipping them in silence.
import { spawnSync } from 'node:child_process';
import { expect } from 'vitest';

export const STRACE_NEEDED = 'strace is needed (bash test/env/install-deps.sh)';

export function expectStrace(): void {
  expect(spawnSync('strace', ['-V']).error, STRACE_NEEDED).toBeUndefined();
}
