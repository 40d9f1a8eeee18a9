/**
 * A warning before the state outgrows the heap. The whole state lives in
 * memory; past V8's heap limit the process dies ("JavaScript heap out of
 * memory", SIGABRT) and every restart dies the same way once recovery has
 * loaded the state again. Nothing on disk is lost (DURABILITY.md), but the
 * operator learns of it only then. After each full GC the live heap is
 * compared with the limit: past `warnRatio` a warning names the figures and
 * what to do, once, and again every `repeatMs` while it stays there (or once
 * it has grown by another `stepRatio` of the limit). Below `warnRatio -
 * stepRatio` it re-arms.
 *
 * Only full (mark-compact) GCs are looked at: right after one, the old
 * generation's used size is what is live, not garbage waiting for a scavenge
 * (engine/heap.ts says what is measured against what).
 */
import { PerformanceObserver, constants } from "node:perf_hooks";
import type { FastifyBaseLogger } from "fastify";
import { heapFigures, mib } from "../engine/heap.ts";
import type { HeapFigures } from "../engine/heap.ts";

export interface HeapWarningPolicy {
  /** Live heap over limit at which to warn. */
  readonly warnRatio: number;
  /** Growth (of the limit) that earns a new warning; also the hysteresis below warnRatio. */
  readonly stepRatio: number;
  /** Shortest time between two warnings while the heap stays high. */
  readonly repeatMs: number;
}

/**
 * 70%: V8 gives up before the limit. Once the old generation is past 80% of
 * it and four full GCs in a row leave the program under 40% of the time
 * ("Ineffective mark-compacts near heap limit"), the process dies: measured
 * with a 64 MiB limit, a server filled with tasks died at 52 MiB (81%).
 */
export const HEAP_WARNING_POLICY: HeapWarningPolicy = { warnRatio: 0.7, stepRatio: 0.05, repeatMs: 60_000 };

/** Decides, after each full GC, whether this one earns a warning (pure: fed figures and times). */
export class HeapWarnings {
  private lastWarnedAtMs: number | null = null;
  private lastWarnedRatio = 0;

  constructor(private readonly policy: HeapWarningPolicy = HEAP_WARNING_POLICY) {}

  /** True when a warning is due for the live heap `figures` seen at `nowMs`. */
  afterFullGc(figures: HeapFigures, nowMs: number): boolean {
    const ratio = figures.usedBytes / figures.limitBytes;
    const { warnRatio, stepRatio, repeatMs } = this.policy;
    if (ratio < warnRatio - stepRatio) {
      this.lastWarnedAtMs = null;
      this.lastWarnedRatio = 0;
      return false;
    }
    if (ratio < warnRatio) return false;
    const due = this.lastWarnedAtMs === null || nowMs - this.lastWarnedAtMs >= repeatMs || ratio >= this.lastWarnedRatio + stepRatio;
    if (!due) return false;
    this.lastWarnedAtMs = nowMs;
    this.lastWarnedRatio = ratio;
    return true;
  }
}

/** Watches full GCs and logs the warning on `log`; returns the function that stops watching. */
export function watchHeap(log: FastifyBaseLogger, policy: HeapWarningPolicy = HEAP_WARNING_POLICY): () => void {
  const warnings = new HeapWarnings(policy);
  const observer = new PerformanceObserver((list) => {
    const fullGc = list.getEntries().some((entry) => (entry as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR);
    if (!fullGc) return;
    const figures = heapFigures();
    if (!warnings.afterFullGc(figures, performance.now())) return;
    const usedMiB = mib(figures.usedBytes);
    const limitMiB = mib(figures.limitBytes);
    log.warn(
      { heapUsedBytes: figures.usedBytes, heapLimitBytes: figures.limitBytes },
      `the live heap is ${usedMiB} MiB of the ${limitMiB} MiB it may grow to (${Math.round((100 * figures.usedBytes) / figures.limitBytes)}%) after a full GC: ` +
        "near the limit the process dies (heap out of memory), and so would every restart; " +
        "restart with a larger NODE_OPTIONS=--max-old-space-size=<MiB>, or remove finished tasks with task.prune",
    );
  });
  observer.observe({ entryTypes: ["gc"] });
  return () => observer.disconnect();
}
