/**
 * The errors the client throws and the one a task handler throws.
 *
 * `SwooshApiError` is every failure of a call: an error answer of the server
 * (`code` is the SPEC §6 error code, `status` the HTTP status, `details` its
 * JSON facts), or a failure on the way there (`network_error`, `timeout`,
 * `bad_response`; `status` 0). `retryable` says whether the same request may
 * succeed later — the retry loop (retry.ts) asks it.
 *
 * `NonRetryableError` is for handlers: throwing it fails the task at once
 * (`retryable: false`) instead of queueing another attempt.
 */
import { ERROR_STATUS } from "../core/errors.ts";
import type { ErrorCode } from "../core/errors.ts";
import type { JsonValue } from "../core/json.ts";

/** Failures that happen before or instead of a server's answer. */
export type ClientErrorCode = "network_error" | "timeout" | "bad_response";

export class SwooshApiError extends Error {
  override readonly name = "SwooshApiError";

  constructor(
    /** The SPEC error code of the answer, or a ClientErrorCode when no usable answer came. */
    readonly code: ErrorCode | ClientErrorCode,
    message: string,
    /** The HTTP status; 0 when no answer came. */
    readonly status: number,
    readonly details?: JsonValue,
    options?: { cause?: unknown; retryAfterMs?: number },
  ) {
    super(message, options);
    this.retryAfterMs = options?.retryAfterMs;
  }

  /** How long the server asked to wait before trying again (its `Retry-After`), if it said. */
  readonly retryAfterMs: number | undefined;

  /** True when sending the same request again (with the same idempotency id) may succeed. */
  get retryable(): boolean {
    return this.code === "network_error" || this.code === "timeout" || this.code === "unavailable" || this.status === 502 || this.status === 504;
  }

  /** Builds the error of an answer whose body is `{"error": {code, message, details?}}` (or anything else). */
  static fromAnswer(status: number, body: unknown, fallbackText: string, retryAfter?: string | null): SwooshApiError {
    const options = { retryAfterMs: retryAfterMsOf(retryAfter) };
    const error = (body as { error?: { code?: unknown; message?: unknown; details?: unknown } } | null | undefined)?.error;
    if (typeof error?.code === "string") {
      const message = typeof error.message === "string" ? error.message : error.code;
      return new SwooshApiError(error.code as ErrorCode, message, status, error.details as JsonValue | undefined, options);
    }
    // Not a Swoosh error body (a proxy's page, say): name it by its status.
    const code: ErrorCode | ClientErrorCode = status === 503 ? "unavailable" : status === 401 ? "unauthorized" : status === 404 ? "not_found" : "bad_response";
    return new SwooshApiError(code, `HTTP ${status}: ${fallbackText.slice(0, 200)}`, status, undefined, options);
  }

  /** The error of one refused slot of a `POST /commands` answer; `status` is the one its code maps to. */
  static fromBatchItem(item: { error: { code: string; message: string; details?: unknown } }): SwooshApiError {
    const code = item.error.code;
    const status = Object.prototype.hasOwnProperty.call(ERROR_STATUS, code) ? ERROR_STATUS[code as ErrorCode] : 0;
    return new SwooshApiError(code as ErrorCode, item.error.message, status, item.error.details as JsonValue | undefined);
  }
}

/**
 * Thrown by a task handler to fail its task without another attempt
 * (`task.fail` with `retryable: false`). `details` (JSON) is stored with the
 * error message on the task.
 */
export class NonRetryableError extends Error {
  override readonly name = "NonRetryableError";

  constructor(
    message: string,
    readonly details?: JsonValue,
  ) {
    super(message);
  }
}

/** The reason `ctx.signal` carries when a handler's lease is gone. */
export class LeaseLostError extends Error {
  override readonly name = "LeaseLostError";

  constructor(
    readonly taskId: string,
    readonly token: number,
    /** Why: "expired" (no heartbeat got through in time), "released" (the server no longer shows it leased to us), "agent_removed", "stopping". */
    readonly reason: "expired" | "released" | "agent_removed" | "stopping",
  ) {
    super(`lease ${token} of task ${JSON.stringify(taskId)} is lost (${reason})`);
  }
}

/** A `Retry-After` value (delay-seconds or an HTTP date) in ms from now; undefined when absent or unreadable. */
export function retryAfterMsOf(value: string | null | undefined, nowMs: number = Date.now()): number | undefined {
  if (value === null || value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const dateMs = Date.parse(text);
  return Number.isNaN(dateMs) ? undefined : Math.max(0, dateMs - nowMs);
}
