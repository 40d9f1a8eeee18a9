/**
 * `runWorker(options)`: a fleet member in one call. It registers the agent,
 * heartbeats, claims work when the /watch stream says some may be there, runs
 * the handler of each task's kind concurrently up to `capacity`, and reports
 * outcomes batched with the next claim; `stop()` (or SIGTERM with
 * `handleSignals`) drains it and deregisters. See worker.ts for the protocol.
 *
 *     const worker = runWorker({
 *       url: "http://127.0.0.1:7777", agentId: "w1", capacity: 4,
 *       handlers: { resize: async (payload, ctx) => resize(payload, ctx.signal) },
 *       handleSignals: true,
 *     });
 */
import { WorkerRuntime } from "./worker.ts";
import type { Worker, WorkerOptions } from "./options.ts";

export function runWorker(options: WorkerOptions): Worker {
  return new WorkerRuntime(options);
}

export { WORKER_DEFAULTS, consoleLogger } from "./options.ts";
export type { TaskContext, TaskHandler, Worker, WorkerLogger, WorkerOptions, WorkerStats } from "./options.ts";
