/** `GET /metrics`: the runtime's Prometheus registry as text (metrics.ts). */
import type { FastifyInstance } from "fastify";
import type { ServerRuntime } from "../runtime.ts";
import { readQuery } from "./common.ts";

export function registerMetricsRoute(app: FastifyInstance, runtime: ServerRuntime): void {
  app.get("/metrics", async (request, reply) => {
    readQuery(request.query, []);
    const { registry } = runtime.metrics;
    return reply.type(registry.contentType).send(await registry.metrics());
  });
}
