/**
 * `GET /healthz` (the process answers: always 200, no token needed) and
 * `GET /readyz` (200 only once the engine recovered or was initialized and
 * while it serves; 503 `unavailable` awaiting genesis, shutting down, failed).
 */
import type { FastifyInstance } from "fastify";
import type { ServerRuntime } from "../runtime.ts";
import { readQuery } from "./common.ts";

export function registerHealthRoutes(app: FastifyInstance, runtime: ServerRuntime): void {
  app.get("/healthz", async (request) => {
    readQuery(request.query, []);
    return { status: "ok" };
  });

  app.get("/readyz", async (request) => {
    readQuery(request.query, []);
    const engine = runtime.requireEngine();
    return { status: "ready", index: engine.stats().durableIndex, genesisHash: engine.genesis.stateHash };
  });
}
