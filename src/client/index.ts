/**
 * `swoosh/client`: the HTTP client and the worker runtime.
 *
 *     import { SwooshClient, runWorker, NonRetryableError } from "swoosh/client";
 *
 * Importing it loads no server, engine, storage or LMDB code: everything here
 * takes from the rest of Swoosh only types (and the error-code table of
 * src/core/errors.ts, which imports nothing). test/client/isolation.test.ts
 * keeps it that way.
 */
export { SwooshClient, DEFAULT_URL, REQUEST_TIMEOUT_MS_DEFAULT } from "./client.ts";
export type { SwooshClientOptions, CallOptions, CommandOptions, BatchItemResult, BatchResults } from "./client.ts";
export { SwooshApiError, NonRetryableError, LeaseLostError } from "./errors.ts";
export type { ClientErrorCode } from "./errors.ts";
export { DEFAULT_RETRY_POLICY, backoffDelayMs } from "./retry.ts";
export type { RetryPolicy } from "./retry.ts";
export type { WatchOptions } from "./watch.ts";
export { runWorker, WORKER_DEFAULTS, consoleLogger } from "./worker/index.ts";
export type { TaskContext, TaskHandler, Worker, WorkerLogger, WorkerOptions, WorkerStats } from "./worker/index.ts";
export type * from "./types.ts";
export type { ErrorCode } from "../core/errors.ts";
