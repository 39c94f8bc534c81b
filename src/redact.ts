// One redaction for every channel that reaches a person or another process (log lines, STATUS=,
// state.json, status, the MOTD, doctor): a registered secret, and any run of 8 or more of its
// characters, becomes [REDACTED]. Kept free of dependencies so `status` and the MOTD load nothing.

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
