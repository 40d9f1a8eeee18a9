/**
 * `POST /commands`: a batch of commands in one request — the round-trip-
 * amortizing protocol for workers (complete what finished and claim the next
 * tasks in one call) and for bulk producers.
 *
 * Body `{commands: [{type, payload, id?, hlc?}, …]}` (1 to BATCH_COMMANDS_MAX, 1000).
 * The commands are handed to the engine in array order within one turn of the
 * event loop, so each one is validated against the state its predecessors left
 * and all of them share the same group commit. The answer — `{results: […]}`,
 * one item per command, `{index, hlc, result, duplicate?}` or
 * `{error: {code, message, details?}}` — is written once every accepted
 * command is durable (G1). A refused command does not stop the others: the
 * batch is not a transaction.
 *
 * `applyBatch` is the whole route past body parsing; the Fastify route and
 * the lean hot path (hot-path.ts) both call it.
 */
import type { FastifyBaseLogger, FastifyInstance } from "fastify";
import type { CommandOutcome } from "../../engine/engine.ts";
import type { ErrorBody } from "../../core/errors.ts";
import { toSwooshError } from "../errors.ts";
import type { ServerRuntime } from "../runtime.ts";
import { checkCommandBatch, checkCommandEnvelope } from "../schemas.ts";
import { submitParsed } from "./command.ts";

export type BatchItem = CommandOutcome | { error: ErrorBody };

/** `POST /commands` past body parsing. */
export async function applyBatch(runtime: ServerRuntime, body: unknown, log: FastifyBaseLogger): Promise<{ results: BatchItem[] }> {
  const commands = checkCommandBatch(body);
  const engine = runtime.requireEngine();
  // Submit synchronously in order: the engine applies each before the next is looked at.
  const pending = commands.map((item) => {
    try {
      return submitParsed(engine, checkCommandEnvelope(item));
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
  });
  const settled = await Promise.allSettled(pending);
  const results: BatchItem[] = [];
  for (const outcome of settled) {
    if (outcome.status === "fulfilled") {
      results.push(outcome.value);
      continue;
    }
    const known = toSwooshError(outcome.reason);
    // Anything unknown (a bug) fails the whole request as the single-command route would.
    if (known === null) throw outcome.reason;
    runtime.metrics.rejected(known.code);
    results.push({ error: known.toBody() });
  }
  // The engine stopped (flush failed, or shutting down) before any of it was durable: answer as /command would.
  // Items accepted before it stopped are durable and keep their slots otherwise.
  if (results.every((item) => "error" in item && item.error.code === "unavailable")) {
    throw toSwooshError(settled.find((o) => o.status === "rejected")?.reason) ?? new Error("unavailable");
  }
  log.debug({ commands: commands.length }, "command batch applied");
  return { results };
}

export function registerCommandsRoute(app: FastifyInstance, runtime: ServerRuntime): void {
  app.post("/commands", (request) => applyBatch(runtime, request.body, request.log));
}
