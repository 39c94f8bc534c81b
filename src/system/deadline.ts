// One timer for a whole network exchange (connect, TLS handshake, headers, body). The `timeout` options of
// node:net, node:tls and node:http are idle timeouts: a peer that sends a byte a second never trips them.

export interface Deadline {
  /** Aborted when the time is up (or by `abort`); its `reason` is the error to report. */
  signal: AbortSignal;
  /** Ends the exchange early with `error` (a size cap, say): one way out for every bound. */
  abort(error: Error): void;
  /** The exchange is over: the timer must not keep the process alive or fire later. */
  clear(): void;
}

/** `what` says what did not happen in time ("no complete answer from URL"); the error adds the bound. */
export function deadline(timeoutMs: number, what: string): Deadline {
  const controller = new AbortController();
  const timer = setTimeout(
    () => controller.abort(Object.assign(new Error(`${what} within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })),
    timeoutMs,
  );
  return {
    signal: controller.signal,
    abort: (error) => controller.abort(error),
    clear: () => clearTimeout(timer),
  };
}

/**
 * The error an exchange ended with: the bound's own when the signal ended it (node reports an abort as a
 * bare AbortError, or as the "aborted" reset it causes on the response), else the error itself.
 */
export function endedBy(signal: AbortSignal, error: Error): Error {
  // Every reason we abort with is an Error: the deadline's, or the one given to `abort`.
  return signal.aborted ? (signal.reason as Error) : error;
}
