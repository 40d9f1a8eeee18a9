/**
 * A handler's outcome as the command that reports it: its return value
 * completes the task (as the JSON the server will store), a thrown error fails
 * it — retryable unless it is a NonRetryableError — with `{name, message,
 * details?}`. An outcome the server refuses (a result it cannot take, nested
 * too deep or too large) is cut down once to a short failure.
 */
import { NonRetryableError } from "../errors.ts";
import type { AnyCommand, ClaimedLease, JsonValue } from "../types.ts";

/** Longest error message kept when a refused outcome is cut down to fit. */
const ERROR_MESSAGE_KEPT_MAX = 2000;

/** An outcome waiting to be reported (or re-sent, with the same id, after a refusal that may heal). */
export interface Report {
  readonly token: number;
  readonly taskId: string;
  command: AnyCommand;
  /** Not before this local time (after a refusal that may heal, e.g. while the orchestrator is halted). */
  notBeforeMs: number;
  retries: number;
  /** Already cut down once after the server refused it. */
  shrunk: boolean;
}

export type HandlerOutcome = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: unknown };

export function newId(): string {
  return globalThis.crypto.randomUUID();
}

/** A value as the JSON the server will store (undefined: none), or why it is not JSON. */
export function toJson(value: unknown): { ok: true; json: JsonValue | undefined } | { ok: false; reason: string } {
  try {
    const text = JSON.stringify(value);
    return { ok: true, json: text === undefined ? undefined : (JSON.parse(text) as JsonValue) };
  } catch (error) {
    return { ok: false, reason: (error as Error).message };
  }
}

/** The JSON stored on a failed task for a thrown value. */
export function errorJson(error: unknown): JsonValue {
  if (error instanceof Error) {
    const details = (error as { details?: unknown }).details;
    const converted = details === undefined ? undefined : toJson(details);
    return converted?.ok === true && converted.json !== undefined ? { name: error.name, message: error.message, details: converted.json } : { name: error.name, message: error.message };
  }
  return { message: String(error) };
}

/** The `task.complete` or `task.fail` that reports `outcome` for `lease`, with a fresh idempotency id. */
export function outcomeCommand(lease: ClaimedLease, outcome: HandlerOutcome): AnyCommand {
  const { taskId, token } = lease;
  if (outcome.ok) {
    const result = toJson(outcome.value);
    if (!result.ok) return { type: "task.fail", payload: { taskId, token, error: { message: `the handler's result is not JSON: ${result.reason}` }, retryable: false }, id: newId() };
    return { type: "task.complete", payload: result.json === undefined ? { taskId, token } : { taskId, token, result: result.json }, id: newId() };
  }
  const error = errorJson(outcome.error);
  const payload = outcome.error instanceof NonRetryableError ? { taskId, token, error, retryable: false } : { taskId, token, error };
  return { type: "task.fail", payload, id: newId() };
}

/** Replaces a refused outcome by a short failure (a new id: the refused command was never applied). */
export function shrinkReport(report: Report, why: string): void {
  report.shrunk = true;
  const previous = (report.command.payload as { error?: unknown }).error;
  const message = typeof previous === "object" && previous !== null && "message" in previous ? String((previous as { message: unknown }).message) : "";
  const text = `${why}${message === "" ? "" : `; original error: ${message}`}`.slice(0, ERROR_MESSAGE_KEPT_MAX);
  report.command = { type: "task.fail", payload: { taskId: report.taskId, token: report.token, error: { message: text } }, id: newId() };
}
