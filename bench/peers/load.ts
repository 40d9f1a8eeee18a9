/**
 * Load generators, independent of what they drive: an operation is any
 * `(seq) => Promise<unknown>` (an HTTP request, an etcd put, a queue add…), so
 * every peer of a side-by-side suite is measured by the same loop.
 *
 * - `closedLoop`: `concurrency` workers, each issuing its next operation as soon
 *   as the previous one completes (throughput at a fixed number in flight).
 * - `openLoop`: operations issued on a fixed schedule of `ratePerSec`,
 *   whether or not earlier ones completed; each latency runs from the
 *   *scheduled* send time, so a stalled server cannot hide its stall by
 *   slowing the client down (no coordinated omission).
 *
 * Both warm up for `warmupMs` (operations run but are not counted), then
 * measure for `durationMs`. Both are bounded: a measurement ends after its
 * time whatever happens, in-flight operations are awaited for at most
 * `drainTimeoutMs`, and more than `maxErrors` failed operations abort it.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { LatencyRecorder } from "./stats.ts";
import type { LatencySummaryMs } from "./stats.ts";

/** One operation; `seq` is unique within a measurement (0, 1, 2, …). */
export type Operation = (seq: number) => Promise<unknown>;

export interface LoadResult {
  /** Operations completed inside the measured window, per second of it. */
  readonly opsPerSec: number;
  readonly completed: number;
  readonly errors: number;
  /** The first error's message, if any. */
  readonly firstError?: string;
  readonly measuredMs: number;
  readonly latency: LatencySummaryMs;
}

export interface OpenLoopResult extends LoadResult {
  readonly targetPerSec: number;
  /** Operations not issued because `maxInFlight` were already outstanding (the server fell far behind). */
  readonly skipped: number;
  /** Most operations outstanding at once during the measured window. */
  readonly maxInFlightSeen: number;
  /** Operations still outstanding when the drain timed out (not in the latency figures: treat any as a failure). */
  readonly unfinished: number;
  /** How late the generator itself sent, behind schedule (timer granularity, a busy client): part of every latency. */
  readonly sendLag: LatencySummaryMs;
}

interface CommonOptions {
  readonly op: Operation;
  readonly warmupMs: number;
  readonly durationMs: number;
  /** Abort (throw) once this many operations failed; default 1000. */
  readonly maxErrors?: number;
  /** How long to wait for in-flight operations after the window closes; default 10 s. */
  readonly drainTimeoutMs?: number;
  /** Called when the measured window opens and when it closes (e.g. to meter CPU over exactly that window). */
  readonly window?: { onStart(): void; onEnd(): void };
}

/**
 * Fires the window hooks at the window's edges. Returns `finish`, called when
 * the run is over: it closes a window whose end timer has not fired yet (the
 * last operations may complete before it), and drops one that never opened.
 */
function scheduleWindow(options: CommonOptions): () => void {
  if (!options.window) return () => undefined;
  const { onStart, onEnd } = options.window;
  let phase: "before" | "open" | "closed" = "before";
  const start = setTimeout(() => {
    phase = "open";
    onStart();
  }, options.warmupMs);
  const close = (): void => {
    if (phase === "open") onEnd();
    phase = "closed";
  };
  const end = setTimeout(close, options.warmupMs + options.durationMs);
  return () => {
    clearTimeout(start);
    clearTimeout(end);
    close();
  };
}

export interface ClosedLoopOptions extends CommonOptions {
  readonly concurrency: number;
}

export interface OpenLoopOptions extends CommonOptions {
  readonly ratePerSec: number;
  /** Operations outstanding beyond which the schedule skips (and counts) sends; default 10,000. */
  readonly maxInFlight?: number;
}

/** A measurement's clock: it starts now, warms up for `warmupMs`, then measures [windowStart, windowEnd]. */
export interface MeasurementWindow {
  readonly startedAt: number;
  readonly windowStart: number;
  readonly windowEnd: number;
}

export function measurementWindow(warmupMs: number, durationMs: number): MeasurementWindow {
  const startedAt = performance.now();
  return { startedAt, windowStart: startedAt + warmupMs, windowEnd: startedAt + warmupMs + durationMs };
}

/** Counts errors and aborts the run past the limit. */
class ErrorBudget {
  count = 0;
  first: string | undefined;
  constructor(private readonly limit: number) {}

  note(error: unknown): void {
    this.count += 1;
    this.first ??= error instanceof Error ? error.message : String(error);
    if (this.count > this.limit) throw new Error(`load aborted after ${this.count} failed operations; first: ${this.first}`);
  }
}

async function settle(pending: Promise<unknown>, timeoutMs: number): Promise<void> {
  const timer = new AbortController();
  await Promise.race([pending, sleep(timeoutMs, undefined, { signal: timer.signal }).catch(() => undefined)]);
  timer.abort();
}

export async function closedLoop(options: ClosedLoopOptions): Promise<LoadResult> {
  const { op, concurrency, warmupMs, durationMs } = options;
  const errors = new ErrorBudget(options.maxErrors ?? 1000);
  const latency = new LatencyRecorder();
  const finishWindow = scheduleWindow(options);
  const { startedAt, windowStart, windowEnd } = measurementWindow(warmupMs, durationMs);
  let seq = 0;
  let completed = 0;
  let aborted: unknown;

  const worker = async (): Promise<void> => {
    while (aborted === undefined) {
      const sentAt = performance.now();
      if (sentAt >= windowEnd) return;
      try {
        await op(seq++);
        const doneAt = performance.now();
        if (sentAt >= windowStart && doneAt <= windowEnd) {
          completed += 1;
          latency.record(doneAt - sentAt);
        } else if (doneAt >= windowStart && doneAt <= windowEnd) {
          completed += 1; // started in warm-up: counts toward throughput, not latency
        }
      } catch (error) {
        try {
          errors.note(error);
        } catch (fatal) {
          aborted = fatal;
        }
      }
    }
  };

  await settle(Promise.all(Array.from({ length: concurrency }, worker)), windowEnd - startedAt + (options.drainTimeoutMs ?? 10_000));
  finishWindow();
  if (aborted !== undefined) throw aborted;
  return loadResult(completed, durationMs, errors, latency);
}

/** The figures every loop reports: throughput over the window, errors, latency. */
function loadResult(completed: number, durationMs: number, errors: ErrorBudget, latency: LatencyRecorder): LoadResult {
  return {
    opsPerSec: (completed / durationMs) * 1000,
    completed,
    errors: errors.count,
    ...(errors.first === undefined ? {} : { firstError: errors.first }),
    measuredMs: durationMs,
    latency: latency.summary(),
  };
}

export async function openLoop(options: OpenLoopOptions): Promise<OpenLoopResult> {
  const { op, ratePerSec, warmupMs, durationMs } = options;
  const maxInFlight = options.maxInFlight ?? 10_000;
  const errors = new ErrorBudget(options.maxErrors ?? 1000);
  const latency = new LatencyRecorder();
  const sendLag = new LatencyRecorder();
  const intervalMs = 1000 / ratePerSec;
  const total = Math.floor(((warmupMs + durationMs) / 1000) * ratePerSec);
  const finishWindow = scheduleWindow(options);
  const { startedAt, windowStart, windowEnd } = measurementWindow(warmupMs, durationMs);
  let issued = 0;
  let inFlight = 0;
  let maxInFlightSeen = 0;
  let completed = 0;
  let skipped = 0;
  let aborted: unknown;
  const outstanding = new Set<Promise<void>>();

  const issue = (seq: number, scheduledAt: number): void => {
    const measured = scheduledAt >= windowStart;
    if (inFlight >= maxInFlight) {
      if (measured) skipped += 1;
      return;
    }
    inFlight += 1;
    if (measured) {
      if (inFlight > maxInFlightSeen) maxInFlightSeen = inFlight;
      sendLag.record(performance.now() - scheduledAt);
    }
    const pending = op(seq).then(
      () => {
        const doneAt = performance.now();
        if (measured) {
          completed += 1;
          latency.record(doneAt - scheduledAt);
        }
      },
      (error: unknown) => {
        try {
          errors.note(error);
        } catch (fatal) {
          aborted ??= fatal;
        }
      },
    );
    const tracked = pending.finally(() => {
      inFlight -= 1;
      outstanding.delete(tracked);
    });
    outstanding.add(tracked);
  };

  // The schedule: wake every millisecond and send whatever is due, stamped with when it was due.
  while (issued < total && aborted === undefined) {
    const now = performance.now();
    while (issued < total && startedAt + issued * intervalMs <= now) {
      issue(issued, startedAt + issued * intervalMs);
      issued += 1;
    }
    await sleep(1);
  }
  await settle(Promise.all(outstanding), Math.max(0, windowEnd - performance.now()) + (options.drainTimeoutMs ?? 10_000));
  finishWindow();
  if (aborted !== undefined) throw aborted;
  return {
    targetPerSec: ratePerSec,
    ...loadResult(completed, durationMs, errors, latency),
    skipped,
    maxInFlightSeen,
    unfinished: outstanding.size,
    sendLag: sendLag.summary(),
  };
}
