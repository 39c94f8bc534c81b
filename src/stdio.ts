// stdout and stderr as main() writes to them. A reader that goes away (`status --json | head -1`, a
// closed pipe) is an ordinary end of the conversation, as it is for `cloud-init status | head`: the
// output stops, silently, and the command still finishes with its own exit code. Without a listener
// the EPIPE would surface as an unhandled 'error' event: a stack trace and exit 1, and a first boot
// whose log reader died would stop halfway through a step.

import type { Io } from './main.js';

type Stream = NodeJS.WritableStream & { isTTY?: boolean; destroyed?: boolean };

export function quietWhenClosed(stream: Stream): Io['stdout'] {
  let closed = false;
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error; // anything else is a real fault: let it surface as before
    closed = true;
  });
  return {
    isTTY: stream.isTTY === true,
    write(text) {
      // Once the pipe broke every later write would fail the same way: drop them.
      if (!closed && !stream.destroyed) stream.write(text);
    },
  };
}
