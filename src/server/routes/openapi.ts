/** `GET /openapi.json`: the document openapi.ts builds, serialized once. */
import type { FastifyInstance } from "fastify";
import { JSON_CONTENT_TYPE } from "../errors.ts";
import { buildOpenApiDocument } from "../openapi.ts";
import { readQuery } from "./common.ts";

let documentText: string | null = null;

export function registerOpenApiRoute(app: FastifyInstance): void {
  app.get("/openapi.json", async (request, reply) => {
    readQuery(request.query, []);
    documentText ??= JSON.stringify(buildOpenApiDocument());
    return reply.type(JSON_CONTENT_TYPE).send(documentText);
  });
}
