/**
 * The Swoosh peer: `startServer` (swoosh-server.ts) in a child process on a
 * fresh temporary data directory with the default durable settings, driven
 * with `POST /command` task.submit bodies (distinct task ids, an idempotency
 * id, ~100-byte task payload) through the pooled HTTP client. `check` submits
 * one command and its idempotent repeat and checks both answers.
 * `diagnostics` reads GET /metrics: WAL flushes, their mean duration and batch
 * size over the measurement (warm-up included), and the event-loop lag.
 */
import { startHttpPeer } from "./http-peer.ts";
import { createHttpClient } from "./http-client.ts";
import { delta, histogramQuantileBetween, parsePrometheusText } from "./prometheus-text.ts";
import type { MetricSamples } from "./prometheus-text.ts";
import type { Peer } from "./peer.ts";
import { inTempDir } from "./temp-dir.ts";
import { taskSubmitBody } from "./workload.ts";

export interface SwooshPeerOptions {
  readonly connections: number;
  /** Run the server under --cpu-prof, writing the profile into this directory on stop. */
  readonly cpuProfileDir?: string;
  readonly snapshotEvery?: number;
}

/** What the server's /metrics say about a measurement. */
function diagnose(before: MetricSamples, after: MetricSamples): Record<string, number> {
  const flushes = delta(before, after, "swoosh_wal_flush_duration_seconds_count");
  const flushSeconds = delta(before, after, "swoosh_wal_flush_duration_seconds_sum");
  const batched = delta(before, after, "swoosh_wal_batch_size_sum");
  const round2 = (value: number): number => Math.round(value * 100) / 100;
  return {
    walFlushes: flushes,
    walFlushMeanMs: flushes ? round2((flushSeconds / flushes) * 1000) : Number.NaN,
    /** Upper bound of the histogram bucket holding the 99th percentile flush. */
    walFlushP99BucketMs: round2(histogramQuantileBetween(before, after, "swoosh_wal_flush_duration_seconds", 0.99) * 1000),
    walBatchMean: flushes ? round2(batched / flushes) : Number.NaN,
    eventLoopLagMaxMs: round2((after.get("nodejs_eventloop_lag_max_seconds") ?? Number.NaN) * 1000),
    eventLoopLagP99Ms: round2((after.get("nodejs_eventloop_lag_p99_seconds") ?? Number.NaN) * 1000),
  };
}

interface CommandReply {
  index?: unknown;
  hlc?: unknown;
  duplicate?: unknown;
}

export function swooshPeer(options: SwooshPeerOptions): Peer {
  return {
    name: "swoosh",
    description: "startServer in a child process, temp data dir, default durable settings (flush before 200), request logging off",
    async start() {
      return inTempDir("swoosh-http-bench", async (dataDirPath) => {
        const server = await startHttpPeer({
          name: "swoosh server",
          entry: "bench/peers/swoosh-server.ts",
          args: ["--data-dir", dataDirPath, ...(options.snapshotEvery === undefined ? [] : ["--snapshot-every", String(options.snapshotEvery)])],
          ...(options.cpuProfileDir ? { cpuProfileDir: options.cpuProfileDir } : {}),
        });
        const client = createHttpClient(server.url, { connections: options.connections });
        return {
          pids: [server.process.pid],
          async check(tag) {
            const body = taskSubmitBody(tag, 0).json;
            const first = JSON.parse(await client.postJson("/command", body)) as CommandReply;
            if (typeof first.index !== "number" || typeof first.hlc !== "string") throw new Error(`unexpected reply ${JSON.stringify(first)}`);
            const again = JSON.parse(await client.postJson("/command", body)) as CommandReply;
            if (again.duplicate !== true || again.index !== first.index) throw new Error(`idempotent repeat answered ${JSON.stringify(again)}`);
          },
          operation: (tag) => (seq) => client.postJson("/command", taskSubmitBody(tag, seq).json),
          diagnostics: {
            async read() {
              const { status, text } = await client.get("/metrics");
              return status === 200 ? parsePrometheusText(text) : new Map<string, number>();
            },
            diagnose: (before, after) => diagnose(before as MetricSamples, after as MetricSamples),
          },
          async stop() {
            await client.close().catch(() => undefined);
            await server.stop();
          },
        };
      });
    },
  };
}
