// sd_notify(3) for Node: there are no AF_UNIX datagram sockets in Node, so the messages go through
// the `systemd-notify` binary (the unit needs NotifyAccess=all). Without NOTIFY_SOCKET: a no-op.

import { printable, type SecretRegistry } from './redact.js';
import type { System } from './system/index.js';

export interface Notifier {
  /** One line for `systemctl status` (STATUS=). */
  status(text: string): Promise<void>;
  /** Asks systemd for more start time (EXTEND_TIMEOUT_USEC=), so a slow but healthy start is not killed. */
  extendTimeout(seconds: number): Promise<void>;
}

/** STATUS= is in systemd-notify's argv and `systemctl status`, both readable by every user: redacted first. */
export function createNotifier(sys: System, secrets: SecretRegistry): Notifier {
  const enabled = Boolean(sys.env.NOTIFY_SOCKET);
  const send = async (...assignments: string[]): Promise<void> => {
    if (!enabled) return;
    // Best effort by design: a lost status line must never fail a first boot.
    await sys.exec('systemd-notify', assignments, { timeoutMs: 5000 }).catch(() => undefined);
  };
  return {
    status: (text) => send(`STATUS=${printable(secrets.scrub(text)).replace(/\n/g, ' ')}`),
    extendTimeout: (seconds) => send(`EXTEND_TIMEOUT_USEC=${Math.round(seconds * 1e6)}`),
  };
}
