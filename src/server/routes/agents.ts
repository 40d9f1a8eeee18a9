/**
 * `GET /agents?status=&limit=&cursor=`: agents in ascending id order, paged like
 * /tasks (pagination.ts), optionally filtered by status.
 */
import type { FastifyInstance } from "fastify";
import { SwooshError } from "../../core/errors.ts";
import type { Agent } from "../../domain/index.ts";
import { decodeCursor, encodeCursor, firstIds, parseLimit } from "../pagination.ts";
import type { ServerRuntime } from "../runtime.ts";
import { readQuery } from "./common.ts";

const AGENT_STATUSES: ReadonlySet<string> = new Set(["ready", "draining", "offline"]);

export function registerAgentRoutes(app: FastifyInstance, runtime: ServerRuntime): void {
  app.get("/agents", async (request, reply) => {
    const engine = runtime.requireEngine();
    const query = readQuery(request.query, ["status", "limit", "cursor"]);
    const { status, cursor } = query;
    if (status !== undefined && !AGENT_STATUSES.has(status)) throw new SwooshError("bad_request", "status must be ready, draining or offline", { field: "status" });
    const limit = parseLimit(query.limit);
    const after = cursor === undefined ? undefined : decodeCursor(cursor);
    const page = await engine.read(({ index, model }) => {
      const agents = model.state.agents;
      function* matching(): Generator<string> {
        for (const id in agents) if (status === undefined || (agents[id] as Agent).status === status) yield id;
      }
      const { ids, more } = firstIds(matching(), limit, after);
      return { index, agents: ids.map((id) => agents[id] as Agent), more };
    });
    const last = page.agents.at(-1);
    reply.header("swoosh-index", String(page.index));
    return { index: page.index, agents: page.agents, nextCursor: page.more && last !== undefined ? encodeCursor(last.id) : null };
  });
}
