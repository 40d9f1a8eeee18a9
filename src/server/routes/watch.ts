/**
 * `GET /watch`: server-sent events of applied commands (sse.ts). The resume
 * point is `Last-Event-ID: N` (resume after N; what EventSource sends on
 * reconnect), else `?from=N` (start at N; 0 means from the oldest entry held),
 * else just after the newest entry. Bad values are 400, a truncated resume
 * point 410, one past the next entry 404 — all before the stream starts.
 */
import { closesConnection } from "../connection-ledger.ts";
import type { FastifyInstance } from "fastify";
import type { ServerRuntime } from "../runtime.ts";
import { SSE_CONTENT_TYPE } from "../sse.ts";
import { parseIndex, readQuery } from "./common.ts";

export function registerWatchRoute(app: FastifyInstance, runtime: ServerRuntime): void {
  app.get("/watch", async (request, reply) => {
    const hub = runtime.requireHub();
    const lastEventId = request.headers["last-event-id"];
    const { from: fromText } = readQuery(request.query, ["from"]);
    let from: number;
    if (typeof lastEventId === "string" && lastEventId.trim() !== "") {
      from = parseIndex(lastEventId.trim(), "Last-Event-ID") + 1;
    } else if (fromText !== undefined) {
      const index = parseIndex(fromText, "from");
      from = index === 0 ? hub.source.firstLogIndex : index;
    } else {
      from = hub.newest + 1;
    }
    hub.checkStart(from);
    // HEAD: the stream's headers and no stream (Node sends no body for HEAD, so a
    // hijacked stream would neither flush its headers nor ever end).
    if (request.method === "HEAD") return reply.type(SSE_CONTENT_TYPE).header("cache-control", "no-cache, no-transform").send();
    // The stream never ends while the server runs and closes its connection after: nothing pipelined behind it is processed.
    closesConnection(request.raw);
    reply.hijack();
    // A hijacked reply is not logged by Fastify: the stream's end gets its "request completed" line here.
    reply.raw.once("close", () => request.log.info({ res: { statusCode: reply.raw.statusCode }, responseTime: reply.elapsedTime }, "request completed"));
    hub.start(reply.raw, from, String(request.id));
  });
}
