/**
 * `POST /command` (SPEC §6): `{type, payload, id?, hlc?}` → the engine.
 *
 * The answer is written only after `engine.submit` resolved, and the engine
 * resolves only after the flush covering the command returned (G1). A refusal
 * carries the reducer's code; every refusal is counted by code.
 *
 * `applyCommand` is the whole route past body parsing; the Fastify route and
 * the lean hot path (hot-path.ts) both call it.
 */
import type { FastifyBaseLogger, FastifyInstance } from "fastify";
import type { CommandInput, CommandOutcome, Engine } from "../../engine/engine.ts";
import type { OrchestratorModel } from "../../domain/index.ts";
import type { ServerRuntime } from "../runtime.ts";
import { checkCommandEnvelope } from "../schemas.ts";
import { readQuery } from "./common.ts";

/**
 * Submits a command whose payload came straight from this request's
 * `JSON.parse`: nobody else holds it, so the engine may keep it instead of
 * copying it (when it is already in canonical form). A command that carried
 * the client's own `hlc` is checked for moving the clock ahead (clock-lead.ts).
 */
export function submitParsed(runtime: ServerRuntime, engine: Engine<OrchestratorModel>, envelope: CommandInput): Promise<CommandOutcome> {
  const submitted = engine.submit(envelope, { payloadOwned: true });
  if (envelope.hlc === undefined) return submitted;
  return submitted.then((outcome) => {
    runtime.clockLead.observe(outcome.hlc);
    return outcome;
  });
}

/** `POST /command` past body parsing: check the envelope, submit, resolve once durable. */
export function applyCommand(runtime: ServerRuntime, body: unknown, log: FastifyBaseLogger): Promise<CommandOutcome> {
  let envelope;
  let engine;
  try {
    envelope = checkCommandEnvelope(body);
    engine = runtime.requireEngine();
  } catch (error) {
    return Promise.reject(error instanceof Error ? error : new Error(String(error)));
  }
  const { type } = envelope;
  // A refusal is counted where it is answered (hot-path.ts, or the error handler), with the refusals found before this point.
  return submitParsed(runtime, engine, envelope).then((outcome) => {
    // Types and indexes only: payloads never reach the info log.
    log.debug({ type, index: outcome.index, duplicate: outcome.duplicate === true }, "command applied");
    return outcome;
  });
}

export function registerCommandRoute(app: FastifyInstance, runtime: ServerRuntime): void {
  // The lean path (hot-path.ts) takes only the bare URL; a query string comes here, and is refused as on every route.
  app.post("/command", async (request) => {
    readQuery(request.query, []);
    return applyCommand(runtime, request.body, request.log);
  });
}
