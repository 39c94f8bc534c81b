// The stack around an attach-disk move: stopped before the copy, started on the disk after the switch (or on the
// old data after a revert), as first boot starts it.

import type { Config } from '../config.js';
import { FirstbootError } from '../errors.js';
import type { ErrorCode } from '../error-codes.js';
import { PATHS } from '../paths.js';
import { runOutOfSequence, type RunnerEnv } from '../runner.js';
import { composeArgs, composeCommand, PROJECT } from '../stack.js';
import { stackReady, stackStart } from '../steps/stack.js';
import type { Move } from './attach-disk-move.js';

export async function stop(move: Move): Promise<void> {
  move.current = 'stop';
  // Marked first: whatever fails from here on, the stack is started again on what .env names then.
  move.stopped = true;
  await composeStop(move);
  move.did('stop', `\`docker compose -p ${PROJECT} stop\`: Immich and Postgres stopped, their data at rest`);
}

async function composeStop(move: Move): Promise<void> {
  const [file, ...base] = await composeCommand(move.env);
  await move.exec(
    file,
    [...base, ...composeArgs(move.env, 'stop')],
    `${[file, ...base].join(' ')} -p ${PROJECT} stop`,
    {
      cwd: move.env.sys.fs.path(PATHS.immichDir),
      timeoutMs: 10 * 60_000,
    },
  );
}

/** `up -d` and the first boot's own wait for Immich's ping. */
export async function start(move: Move, config: Config): Promise<void> {
  move.current = 'start';
  // Containers that came up on the disk hold it: they stop before the disk can be unmounted.
  move.undo.push({
    step: 'start',
    run: async () => {
      await composeStop(move);
      return `the stack stopped (it had started on ${PATHS.dataMount})`;
    },
  });
  const error = await startStack({ ...move.env, config });
  if (error) throw error;
  move.stopped = false;
  move.did(
    'start',
    `the stack runs on ${PATHS.dataMount} and Immich answers ${config.stack.serverUrl}/api/server/ping`,
  );
}

/** stack-start and stack-ready, as first boot runs them; the error, or undefined once Immich answers. */
export async function startStack(env: RunnerEnv): Promise<FirstbootError | undefined> {
  const errors = await runOutOfSequence(env, 'attach-disk', [stackStart, stackReady], {
    skipStack: false,
    newCert: false,
  });
  const last = errors.at(-1);
  return last ? new FirstbootError(last.code as ErrorCode, last.message, { hint: last.hint }) : undefined;
}
