/**
 * What `runWorker` takes and gives: options with their defaults, the handler
 * signature and the context a handler gets, the logger seam, and the handle.
 */
import type { SwooshClient } from "../client.ts";
import type { RetryPolicy } from "../retry.ts";

/** What a handler learns about the task it runs. */
export interface TaskContext {
  readonly taskId: string;
  readonly kind: string;
  /** 1 for the first attempt. */
  readonly attempt: number;
  /** The lease's fencing token: pass it to external systems so a worker whose lease expired cannot overwrite its successor. */
  readonly token: number;
  readonly agentId: string;
  /**
   * Aborts when the lease is lost (it expired without a heartbeat getting
   * through, the task was cancelled, the agent went offline or was removed),
   * or when the worker stops and its grace period is over. `signal.reason` is
   * a LeaseLostError. Stop work and throw (or return) soon after.
   */
  readonly signal: AbortSignal;
  /** The client the worker uses (for submitting follow-up tasks, reading state). */
  readonly client: SwooshClient;
  readonly logger: WorkerLogger;
}

/**
 * Runs one task: resolves with its result (any JSON value, or undefined for
 * none) or throws — a NonRetryableError fails the task at once, anything else
 * is retried with backoff until the task's maxAttempts.
 */
// The payload is whatever the submitter sent: the handler declares the shape it expects.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type TaskHandler = (payload: any, ctx: TaskContext) => unknown;

export interface WorkerLogger {
  debug?(message: string, fields?: Record<string, unknown>): void;
  info?(message: string, fields?: Record<string, unknown>): void;
  warn?(message: string, fields?: Record<string, unknown>): void;
  error?(message: string, fields?: Record<string, unknown>): void;
}

export interface WorkerOptions {
  /** Server base URL (default http://127.0.0.1:7777); ignored when `client` is given. */
  readonly url?: string;
  /** Bearer token; ignored when `client` is given. */
  readonly token?: string | undefined;
  /** A client to use instead of making one. */
  readonly client?: SwooshClient;
  readonly agentId: string;
  /** Labels the agent carries: it is given only tasks whose `requires` are all among them. */
  readonly labels?: readonly string[];
  /** Tasks run at once (the agent's capacity). Default 1. */
  readonly capacity?: number;
  /**
   * A handler per task kind. `task.claim` does not filter by kind: route tasks
   * with `requires` labels so that an agent only gets kinds it handles. A task
   * of a kind with no handler here is failed (retryable) for another agent.
   */
  readonly handlers: Readonly<Record<string, TaskHandler>>;
  /** Default: warnings and errors to the console. */
  readonly logger?: WorkerLogger;
  /** Default: a third of the sooner of the lease TTL and the heartbeat timeout (both read from every heartbeat answer). */
  readonly heartbeatIntervalMs?: number;
  /** Fallback claim attempt interval while the /watch stream is down. Default 2000. */
  readonly pollIntervalMs?: number;
  /** Safety-net claim attempt interval while /watch is up (wake-ups come from it). Default 30 000. */
  readonly idlePollIntervalMs?: number;
  /** On stop, handlers still running after this long get their signal aborted. Default 30 000. */
  readonly shutdownGraceMs?: number;
  /** On stop, give up reporting to an unreachable server after this long (the leases then expire on the server). Default 30 000. */
  readonly shutdownNetworkTimeoutMs?: number;
  /** Stop gracefully on SIGTERM and SIGINT (a second signal kills the process as usual). Default false. */
  readonly handleSignals?: boolean;
  /** Retry policy of each request (the worker itself keeps retrying forever around it). */
  readonly retry?: Partial<RetryPolicy>;
}

export interface WorkerStats {
  /** Handlers running now. */
  readonly running: number;
  readonly claimed: number;
  readonly succeeded: number;
  readonly failed: number;
  /** Leases lost while held (expired, released, cancelled). */
  readonly lost: number;
  /** `POST /commands` requests answered. */
  readonly batches: number;
  /** Whether the /watch stream is open. */
  readonly watching: boolean;
}

export interface Worker {
  readonly agentId: string;
  /** Resolves once the agent is registered; rejects when it cannot be (bad options, unauthorized). */
  readonly ready: Promise<void>;
  /** Resolves when the worker has stopped (by `stop()`, a signal, or a fatal registration error). */
  readonly stopped: Promise<void>;
  /**
   * Stops claiming, lets running handlers finish (up to the grace period,
   * then aborts their signal), reports every outcome, and removes the agent
   * (`agent.remove`), so no lease is left behind. Idempotent.
   */
  stop(options?: { readonly graceMs?: number }): Promise<void>;
  stats(): WorkerStats;
}

export const WORKER_DEFAULTS = Object.freeze({
  capacity: 1,
  pollIntervalMs: 2_000,
  idlePollIntervalMs: 30_000,
  shutdownGraceMs: 30_000,
  shutdownNetworkTimeoutMs: 30_000,
  /** Until the first heartbeat answer tells the lease TTL: the server default's third. */
  heartbeatIntervalMs: 10_000,
  /** Heartbeats never closer than this, whatever the TTL. */
  heartbeatIntervalMinMs: 20,
  /** Time a handler that ignores its aborted signal gets before the worker stops waiting for it. */
  abandonAfterAbortMs: 5_000,
  /** The worker's own retry pause after a failed request grows up to this. */
  failurePauseMaxMs: 5_000,
  retry: { attemptsMax: 3, baseDelayMs: 100, maxDelayMs: 1_000, elapsedMaxMs: 10_000 } satisfies RetryPolicy,
});

/** The default logger: warnings and errors on the console, tagged with the agent. */
export function consoleLogger(agentId: string): WorkerLogger {
  const tag = `[swoosh worker ${agentId}]`;
  return {
    warn: (message, fields) => console.warn(tag, message, ...(fields === undefined ? [] : [fields])),
    error: (message, fields) => console.error(tag, message, ...(fields === undefined ? [] : [fields])),
  };
}
