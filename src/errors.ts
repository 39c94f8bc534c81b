// The one error type: what happened, what the operator should do about it, and why (the cause).

import type { ErrorCode } from './error-codes.js';

/** Exit codes, documented in the README and the man page. */
export const EXIT = {
  ok: 0,
  /** A step failed; `status` shows which and the hint. */
  failed: 1,
  usage: 2,
  /** config.yaml is not valid; nothing was written. */
  config: 3,
  /** Another run holds the lock. */
  locked: 4,
  /** `status`: first boot has not finished (not started, or running). */
  notDone: 5,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export interface FirstbootErrorOptions {
  hint?: string;
  cause?: unknown;
  exitCode?: ExitCode;
  /** Extra detail for the log (never shown as the message; must hold no secret). */
  detail?: Record<string, unknown>;
}

export class FirstbootError extends Error {
  /** One of the catalog in error-codes.ts: what it means and the usual fix. */
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly exitCode: ExitCode;
  readonly detail: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: FirstbootErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'FirstbootError';
    this.code = code;
    this.hint = options.hint;
    this.exitCode = options.exitCode ?? EXIT.failed;
    this.detail = options.detail;
  }
}

/** Wraps anything thrown into a FirstbootError, keeping one that already is. */
export function asFirstbootError(error: unknown, code: ErrorCode = 'internal', hint?: string): FirstbootError {
  if (error instanceof FirstbootError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new FirstbootError(code, message, { cause: error, hint });
}

/** The errno code of a Node system error (ENOENT, EACCES, ...), if there is one. */
export function errnoCode(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string'
    ? error.code
    : undefined;
}
