// How an attach-disk move ends when it does not finish: refused before anything changed, or failed, with what this
// run did undone in reverse and the stack started on the old data.

import { asFirstbootError } from '../errors.js';
import { PATHS } from '../paths.js';
import { ping } from '../stack.js';
import type { AttachDiskReport, Move } from './attach-disk-move.js';
import { startStack } from './attach-disk-stack.js';

export function refusal(move: Move, thrown: unknown): AttachDiskReport {
  const error = asFirstbootError(thrown);
  move.record(error);
  move.report.now.immichAnswers = null;
  return move.report;
}

/** Undoes this run's changes in reverse, then starts the stack on the old data; says where the VM is. */
export async function failure(move: Move, thrown: unknown): Promise<AttachDiskReport> {
  const error = asFirstbootError(thrown);
  move.record(error);
  const { log } = move.env;
  log.error(
    { step: move.current, code: error.code, hint: error.hint },
    `attach-disk: ${move.current} failed: ${error.message}`,
  );
  for (const action of move.undo.reverse()) {
    try {
      const summary = await action.run();
      move.report.reverted.push({ step: action.step, summary });
      log.info({ step: action.step }, `undone: ${summary}`);
    } catch (undoError) {
      const e = asFirstbootError(undoError);
      move.report.reverted.push({ step: action.step, summary: e.message, failed: true });
      log.error({ step: action.step, code: e.code }, `could not undo ${action.step}: ${e.message}`);
    }
  }
  if (move.stopped) {
    const startError = await startStack(move.env);
    const summary = startError
      ? `the stack did not come back on the old data: ${startError.message}`
      : `the stack runs on ${PATHS.uploadDir} and ${PATHS.postgresDir} again and Immich answers`;
    move.report.reverted.push({ step: 'start', summary, ...(startError ? { failed: true } : {}) });
    if (startError) log.error({ hint: startError.hint }, summary);
    else log.info({ step: 'start' }, summary);
  }
  move.report.now.immichAnswers = await ping(move.env);
  const undoFailed = move.report.reverted.filter((r) => r.failed);
  move.report.next = undoFailed.length
    ? `not everything could be undone (${undoFailed.map((r) => r.step).join(', ')}): see each line above; the data is still at ${PATHS.uploadDir} and ${PATHS.postgresDir}`
    : `the VM is on its old data (${PATHS.uploadDir}, ${PATHS.postgresDir})${move.report.now.immichAnswers ? ', Immich answering' : ''}; fix the cause, then run attach-disk again`;
  log.error(`attach-disk: ${move.report.next}`);
  return move.report;
}
