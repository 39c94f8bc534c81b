// One redaction for every channel that reaches a person or another process (log lines, STATUS=,
// state.json, status, the MOTD, doctor): a registered secret, and any run of 8 or more of its
// characters, becomes [REDACTED]. Beside it, the one neutering of control characters for the same
// channels (`printable`). Kept free of dependencies so `status` and the MOTD load nothing.

export const REDACTED = '[REDACTED]';
/** The shortest piece of a secret that is redacted on its own (shorter pieces are everywhere by chance). */
export const MIN_SECRET_RUN = 8;

/** Secrets registered here are redacted by `scrub`, whole or in part, wherever they appear. */
export class SecretRegistry {
  // Every 8-character window of every secret (and of its JSON-escaped form, as a JSON line carries it):
  // any run of >= 8 characters of a secret is covered by such windows, so marking them finds it all.
  private readonly windows = new Set<string>();
  add(secret: string): void {
    if (secret.length < MIN_SECRET_RUN) return;
    for (const form of [secret, JSON.stringify(secret).slice(1, -1)])
      for (let i = 0; i + MIN_SECRET_RUN <= form.length; i++) this.windows.add(form.slice(i, i + MIN_SECRET_RUN));
  }
  scrub(text: string): string {
    if (this.windows.size === 0 || text.length < MIN_SECRET_RUN) return text;
    let out = '';
    let kept = 0; // text before this index is already in `out`
    let coveredTo = -1; // the end of the run being redacted
    for (let i = 0; i + MIN_SECRET_RUN <= text.length; i++) {
      if (!this.windows.has(text.slice(i, i + MIN_SECRET_RUN))) continue;
      if (i > coveredTo) {
        out += text.slice(kept, i) + REDACTED;
      }
      coveredTo = i + MIN_SECRET_RUN;
      kept = coveredTo;
    }
    return out + text.slice(kept);
  }
}

// C0 but tab and newline (ESC, BEL, CR, backspace...), DEL, and C1 (U+0080-U+009F: U+009B is a CSI that
// some terminals obey as ESC [ does).
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;

/**
 * Text for a person's terminal: every control character but tab and newline is written as its escape
 * (`\u001b`), so what another program said (a process name in `ss`, Docker's messages) cannot retitle the
 * window, move the cursor or clear the screen. JSON text keeps its meaning: a raw control character can
 * only stand inside a JSON string, where the escape decodes back to it.
 */
export function printable(text: string): string {
  return text.replace(CONTROL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
