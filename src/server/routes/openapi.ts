/** `GET /openapi.json`: the document openapi.ts builds, serialized once. */
import type { FastifyInstance } from "fastify";
import { buildOpenApiDocument } from "../openapi.ts";

let documentText: string | null = null;

export function registerOpenApiRoute(app: FastifyInstance): void {
  app.get("/openapi.json", async (_request, reply) => {
    documentText ??= JSON.stringify(buildOpenApiDocument());
    return reply.type("application/json; charset=utf-8").send(documentText);
  });
}
