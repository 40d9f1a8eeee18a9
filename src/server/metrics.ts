/**
 * Prometheus metrics (`GET /metrics`), one registry per server so that several
 * servers in one process (tests, embedding) never share or clash.
 *
 *     swoosh_commands_total{type}              commands applied and durable (ticks included)
 *     swoosh_command_rejections_total{code}    POST /command or /commands answered with an error (or a batch item refused), by SPEC code
 *     swoosh_wal_flush_duration_seconds        append + fdatasync of one group-commit batch
 *     swoosh_wal_batch_size                    commands per flushed batch
 *     swoosh_wal_index                         newest durable log index
 *     swoosh_snapshot_index                    log index of the newest snapshot
 *     swoosh_snapshot_age_seconds              since the newest snapshot: the last one this process
 *                                              wrote, else the one recovery started from (dated by its
 *                                              last command's HLC, so a restart does not reset it);
 *                                              since the engine opened when there is none
 *     swoosh_watch_clients / swoosh_watch_dropped_total   GET /watch streams open / dropped as stalled
 *     swoosh_heap_limit_bytes                  the old generation's limit (the state lives there; past it
 *                                              the process dies): --max-old-space-size, in bytes
 *
 * plus prom-client's default process metrics. Label values come from closed
 * sets (command types the reducer accepted, SPEC error codes), so the series
 * count is bounded.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { EngineStats } from "../engine/engine.ts";
import { heapFigures } from "../engine/heap.ts";
import type { ErrorCode } from "../core/errors.ts";

/** What the gauges read when scraped. */
export interface MetricsSource {
  stats(): EngineStats;
  /** When the engine opened (wall ms), the age reference while there is no snapshot. */
  readonly openedAtMs: number;
  nowMs(): number;
}

export class ServerMetrics {
  readonly registry = new Registry();
  readonly commands: Counter<"type">;
  readonly rejections: Counter<"code">;
  readonly flushSeconds: Histogram;
  readonly batchSize: Histogram;
  readonly watchClients: Gauge;
  readonly watchDropped: Counter;
  private source: MetricsSource | null = null;

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.commands = new Counter({ name: "swoosh_commands_total", help: "Commands applied and durable, by type.", labelNames: ["type"], registers });
    this.rejections = new Counter({ name: "swoosh_command_rejections_total", help: "Commands refused, by SPEC error code.", labelNames: ["code"], registers });
    this.flushSeconds = new Histogram({
      name: "swoosh_wal_flush_duration_seconds",
      help: "Time to append and flush one group-commit batch to the WAL.",
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.batchSize = new Histogram({
      name: "swoosh_wal_batch_size",
      help: "Commands per flushed group-commit batch.",
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096],
      registers,
    });
    // collect() runs with the gauge as `this`; the source is reached through this closure.
    const current = (): MetricsSource | null => this.source;
    new Gauge({
      name: "swoosh_wal_index",
      help: "Newest durable WAL index.",
      registers,
      collect() {
        const source = current();
        if (source) this.set(source.stats().durableIndex);
      },
    });
    new Gauge({
      name: "swoosh_snapshot_index",
      help: "Log index of the newest snapshot.",
      registers,
      collect() {
        const source = current();
        if (source) this.set(source.stats().lastSnapshotIndex);
      },
    });
    new Gauge({
      name: "swoosh_snapshot_age_seconds",
      help: "Seconds since the newest snapshot (written by this process, or recovered from at startup); since the engine opened when there is none.",
      registers,
      collect() {
        const source = current();
        if (!source) return;
        const since = source.stats().lastSnapshotAtMs ?? source.openedAtMs;
        this.set(Math.max(0, source.nowMs() - since) / 1000);
      },
    });
    new Gauge({
      name: "swoosh_heap_limit_bytes",
      help: "The heap's old-generation limit (--max-old-space-size): the whole state lives there; past it the process dies out of memory.",
      registers,
      collect() {
        this.set(heapFigures().limitBytes);
      },
    });
    this.watchClients = new Gauge({ name: "swoosh_watch_clients", help: "Open GET /watch streams.", registers });
    this.watchDropped = new Counter({ name: "swoosh_watch_dropped_total", help: "GET /watch streams dropped because the client took nothing for the stall timeout.", registers });
  }

  /** Starts reading the engine: counts applied commands and flushes. Returns the detach function. */
  attach(source: MetricsSource, engine: { subscribe(l: (e: { type: string }) => void, options?: { readOnly?: boolean }): () => void; onFlush(l: (i: { batchSize: number; durationMs: number }) => void): () => void }): () => void {
    this.source = source;
    const offApplied = engine.subscribe((event) => this.commands.inc({ type: event.type }), { readOnly: true });
    const offFlush = engine.onFlush(({ batchSize, durationMs }) => {
      this.flushSeconds.observe(durationMs / 1000);
      this.batchSize.observe(batchSize);
    });
    return () => {
      offApplied();
      offFlush();
    };
  }

  rejected(code: ErrorCode): void {
    this.rejections.inc({ code });
  }
}
