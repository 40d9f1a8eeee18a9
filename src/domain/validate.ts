/**
 * Payload validation from the one schema source, and the refusal helper.
 *
 * A payload is first checked to be a JSON value Swoosh can hash (no lone
 * surrogates, NaN, undefined, deep nesting: canonicalJSON would otherwise fail
 * on the state later), then against its compiled TypeBox schema. Every failure
 * is a `bad_request` whose `details` name the JSON-pointer path at fault.
 */
import { TypeCompiler } from "@sinclair/typebox/compiler";
import type { TypeCheck } from "@sinclair/typebox/compiler";
import type { TSchema } from "@sinclair/typebox";
import type { ErrorCode } from "../core/errors.ts";
import { assertJsonValue, JsonValueError } from "../core/json.ts";
import type { JsonValue } from "../core/json.ts";
import type { ApplyOutcome } from "../core/state-machine.ts";
import { COMMAND_PAYLOAD_SCHEMAS } from "./schemas.ts";
import type { CommandPayload, CommandType } from "./schemas.ts";

export type Refusal = Extract<ApplyOutcome, { ok: false }>;

export function refuse(code: ErrorCode, message: string, details?: JsonValue): Refusal {
  return details === undefined ? { ok: false, error: { code, message } } : { ok: false, error: { code, message, details } };
}

export function accept(result: JsonValue): ApplyOutcome {
  return { ok: true, result };
}

const compiled = new Map<string, TypeCheck<TSchema>>();
for (const [type, schema] of Object.entries(COMMAND_PAYLOAD_SCHEMAS)) compiled.set(type, TypeCompiler.Compile(schema));

export function isCommandType(type: string): type is CommandType {
  return compiled.has(type);
}

/**
 * The typed payload, or the refusal naming the first offending path.
 * `knownJson`: the caller vouches the payload is JSON within the depth bound
 * (ApplyContext.payloadIsJson), so only the schema is checked.
 */
export function validatePayload<T extends CommandType>(type: T, payload: unknown, knownJson = false): { ok: true; payload: CommandPayload<T> } | Refusal {
  try {
    if (!knownJson) assertJsonValue(payload);
  } catch (error) {
    if (error instanceof JsonValueError) {
      return refuse("bad_request", `${type}: ${error.path || "payload"}: ${error.reason}`, { path: error.path, message: error.reason });
    }
    throw error;
  }
  const check = compiled.get(type) as TypeCheck<TSchema>;
  if (check.Check(payload)) return { ok: true, payload: payload as CommandPayload<T> };
  const first = check.Errors(payload).First();
  const path = first?.path ?? "";
  const message = first?.message ?? "invalid payload";
  return refuse("bad_request", `${type}: ${path || "payload"}: ${message}`, { path, message });
}
