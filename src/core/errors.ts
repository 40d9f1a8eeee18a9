/**
 * The error codes of SPEC §6 and the HTTP status each one maps to. A command
 * the reducer refuses carries one of these; so does every 4xx/5xx the server sends.
 */
import type { JsonValue } from "./json.ts";

export const ERROR_STATUS = {
  bad_request: 400,
  unknown_command: 400,
  clock_drift: 400,
  unauthorized: 401,
  not_found: 404,
  unknown_agent: 404,
  unknown_task: 404,
  task_exists: 409,
  stale_lease: 409,
  invalid_transition: 409,
  already_initialized: 409,
  history_pruned: 410,
  payload_too_large: 413,
  genesis_hash_mismatch: 422,
  unavailable: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

/** The body of every error: `{"error": {"code", "message", "details"?}}`. */
export interface ErrorBody {
  code: ErrorCode;
  message: string;
  details?: JsonValue;
}

/** An operating error with a SPEC error code; safe to show to a client. */
export class SwooshError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: JsonValue,
  ) {
    super(message);
    this.name = "SwooshError";
  }

  get status(): number {
    return ERROR_STATUS[this.code];
  }

  toBody(): ErrorBody {
    return this.details === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, details: this.details };
  }
}

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === "string" && Object.prototype.hasOwnProperty.call(ERROR_STATUS, code);
}
