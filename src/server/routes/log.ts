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
import type { LogEntry } from "../../core/log-record.ts";
import type { Engine } from "../../engine/engine.ts";
import type { OrchestratorModel } from "../../domain/index.ts";
import { parseIndex, readQuery } from "./common.ts";

export const LOG_PAGE_DEFAULT = 100;
export const LOG_PAGE_MAX = 1000;

export function registerLogRoute(app: FastifyInstance, runtime: ServerRuntime): void {
  app.get("/log", async (request) => {
    const engine = runtime.requireEngine();
    const { from: fromText, limit: limitText } = readQuery(request.query, ["from", "limit"]);
    const limit = parseLimit(limitText, LOG_PAGE_DEFAULT, LOG_PAGE_MAX);
    // The engine refuses a `from` below 1 (400) or below the oldest entry held
    // (410, also when a snapshot truncates under the read): never a silent gap.
    const entries = fromText === undefined ? await readFromOldest(engine, limit) : await engine.readLog(parseIndex(fromText, "from"), limit);
    const lastIndex = engine.stats().durableIndex;
    // Without `from` the page starts at the oldest entry held: later than
    // firstLogIndex while a truncation is visible to reads but not yet counted.
    const oldest = fromText === undefined ? entries[0]?.index : undefined;
    return { firstIndex: Math.max(engine.firstLogIndex, oldest ?? 0), lastIndex, entries: entries.map(toWireEntry) };
  });
}

/** Tries before a read of "the oldest held" gives up on a log that keeps being truncated under it. */
const OLDEST_READ_TRIES = 3;

/** A page from the oldest entry held, whatever it is by the time the read runs. */
async function readFromOldest(engine: Engine<OrchestratorModel>, limit: number): Promise<LogEntry[]> {
  await engine.barrier();
  let from = engine.firstLogIndex;
  for (let tries = 1; ; tries++) {
    try {
      return await engine.readLog(from, limit);
    } catch (error) {
      // A snapshot truncated under the read: the refusal names the oldest entry held now.
      const oldest = error instanceof SwooshError && error.code === "history_pruned" ? (error.details as { firstIndex?: unknown } | undefined)?.firstIndex : undefined;
      if (typeof oldest !== "number" || oldest <= from || tries >= OLDEST_READ_TRIES) throw error;
      from = oldest;
    }
  }
}
