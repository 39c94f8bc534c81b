// sd_notify(3) for Node: there are no AF_UNIX datagram sockets in Node, so the messages go through
// the `systemd-notify` binary (the unit needs NotifyAccess=all). Without NOTIFY_SOCKET: a no-op.
// A message never waits for the program: a step hands it over and goes on (each systemd-notify is a
// process start, and six of them stood between a first boot and its `up -d`). They go out one at a
// time, in order; what a newer message replaces before it could be sent (a step's STATUS= after the
// next step's) is dropped, as `systemctl status` would show only the newer one. `flush` waits for the
// last one, before the process exits.

import { printable, type SecretRegistry } from './redact.js';
import type { System } from './system/index.js';

export interface Notifier {
  /** One line for `systemctl status` (STATUS=). */
  status(text: string): Promise<void>;
  /** Asks systemd for more start time (EXTEND_TIMEOUT_USEC=), so a slow but healthy start is not killed. */
  extendTimeout(seconds: number): Promise<void>;
  /** Resolves once every message handed over has been sent (or given up on). */
  flush(): Promise<void>;
}

/** STATUS= is in systemd-notify's argv and `systemctl status`, both readable by every user: redacted first. */
export function createNotifier(sys: System, secrets: SecretRegistry): Notifier {
  const enabled = Boolean(sys.env.NOTIFY_SOCKET);
  /** The newest message of each kind (STATUS, EXTEND_TIMEOUT_USEC) not sent yet, in the order first handed over. */
  const waiting = new Map<string, string>();
  let sending: Promise<void> | undefined;
  const pump = async (): Promise<void> => {
    while (waiting.size > 0) {
      const assignments = [...waiting.values()];
      waiting.clear();
      // Best effort by design: a lost status line must never fail a first boot.
      await sys.exec('systemd-notify', assignments, { timeoutMs: 5000 }).catch(() => undefined);
    }
    sending = undefined;
  };
  const send = async (assignment: string): Promise<void> => {
    if (!enabled) return;
    const kind = assignment.slice(0, assignment.indexOf('='));
    waiting.delete(kind);
    waiting.set(kind, assignment);
    sending ??= pump();
  };
  return {
    status: (text) => send(`STATUS=${printable(secrets.scrub(text)).replace(/\n/g, ' ')}`),
    extendTimeout: (seconds) => send(`EXTEND_TIMEOUT_USEC=${Math.round(seconds * 1e6)}`),
    flush: async () => {
      while (sending) await sending;
    },
  };
}
