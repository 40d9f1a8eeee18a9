/**
 * `GET /log?from=&limit=`: durable WAL entries in index order, in wire form
 * (wire.ts), with the range the WAL still holds. `from` defaults to the oldest
 * entry held; a `from` below it is 410 `history_pruned` (a reader that asked
 * for a gap-free history must not get a silent gap). Past the end: no entries.
 */
import type { FastifyInstance } from "fastify";
import { SwooshError } from "../../core/errors.ts";
import { parseLimit } from "../pagination.ts";
import type { ServerRuntime } from "../runtime.ts";
import { toWireEntry } from "../wire.ts";
import { parseIndex, readQuery } from "./common.ts";

export const LOG_PAGE_DEFAULT = 100;
export const LOG_PAGE_MAX = 1000;

export function registerLogRoute(app: FastifyInstance, runtime: ServerRuntime): void {
  app.get("/log", async (request) => {
    const engine = runtime.requireEngine();
    const { from: fromText, limit: limitText } = readQuery(request.query, ["from", "limit"]);
    const limit = parseLimit(limitText, LOG_PAGE_DEFAULT, LOG_PAGE_MAX);
    await engine.barrier();
    const firstIndex = engine.firstLogIndex;
    let from = firstIndex;
    if (fromText !== undefined) {
      from = parseIndex(fromText, "from");
      if (from < 1) throw new SwooshError("bad_request", "from must be a log index >= 1", { field: "from" });
      if (from < firstIndex) throw new SwooshError("history_pruned", `the log starts at index ${firstIndex}`, { index: from, firstIndex });
    }
    const entries = await engine.readLog(from, limit);
    const lastIndex = engine.stats().durableIndex;
    // A snapshot may truncate between the check and the read: never answer with a silent gap.
    // (Without `from`, the client asked for "the oldest held", which this still is.)
    if (fromText !== undefined && entries.length > 0 && (entries[0]?.index ?? from) !== from) {
      throw new SwooshError("history_pruned", `the log starts at index ${engine.firstLogIndex}`, { index: from, firstIndex: engine.firstLogIndex });
    }
    // Without `from` the page starts at the oldest entry held: later than
    // firstLogIndex while a truncation is visible to reads but not yet counted.
    const oldest = fromText === undefined ? entries[0]?.index : undefined;
    return { firstIndex: Math.max(engine.firstLogIndex, oldest ?? 0), lastIndex, entries: entries.map(toWireEntry) };
  });
}
