/**
 * `POST /command` (SPEC §6): `{type, payload, id?, hlc?}` → the engine.
 *
 * The answer is written only after `engine.submit` resolved, and the engine
 * resolves only after the flush covering the command returned (G1). A refusal
 * carries the reducer's code; every refusal is counted by code.
 */
import type { FastifyInstance } from "fastify";
import type { CommandOutcome } from "../../engine/engine.ts";
import { toSwooshError } from "../errors.ts";
import type { ServerRuntime } from "../runtime.ts";
import { checkCommandEnvelope } from "../schemas.ts";

export function registerCommandRoute(app: FastifyInstance, runtime: ServerRuntime): void {
  app.post("/command", async (request): Promise<CommandOutcome> => {
    try {
      const envelope = checkCommandEnvelope(request.body);
      const engine = runtime.requireEngine();
      const outcome = await engine.submit(envelope);
      // Types and indexes only: payloads never reach the info log.
      request.log.debug({ type: envelope.type, index: outcome.index, duplicate: outcome.duplicate === true }, "command applied");
      return outcome;
    } catch (error) {
      const known = toSwooshError(error);
      if (known !== null) runtime.metrics.rejected(known.code);
      throw error;
    }
  });
}
