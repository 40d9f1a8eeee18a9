/**
 * Raw batched LMDB puts: the ceiling the durable engine is measured against.
 *
 * `rawBatchedLmdbPuts` writes `entries` values of `valueBytes` each under
 * integer keys 1..entries, `batchSize` puts per write transaction, and waits
 * for each transaction to be durable (commit promise, then `db.flushed`) before
 * starting the next, as the engine's group commit does. It uses lmdb-js's own
 * defaults (the idiomatic "raw" path: puts in one event turn form one
 * transaction), so the baseline is not tuned to our log.
 *
 * Run directly (`node --import tsx bench/lmdb-raw.ts`) it prints raw ops/s and
 * LmdbCommandLog.append records/s for batches of 256, a few alternating runs each.
 */
import { mkdtemp, open as openFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { open } from "lmdb";
import type { LogRecord } from "../src/core/log-record.ts";
import { LMDB_LOG_DB_OPTIONS, LmdbCommandLog } from "../src/storage/lmdb-log.ts";

export interface RawPutOptions {
  /** A directory the benchmark may write into; it creates and removes its own subdirectory. */
  readonly dir: string;
  readonly entries: number;
  readonly batchSize: number;
  /** Size of each value in bytes (the log stores `hash + body`); default 320. */
  readonly valueBytes?: number;
}

const VALUE_BYTES_DEFAULT = 320;

/** Durable raw LMDB puts per second. */
export async function rawBatchedLmdbPuts(options: RawPutOptions): Promise<number> {
  const { entries, batchSize } = options;
  const value = "v".repeat(options.valueBytes ?? VALUE_BYTES_DEFAULT);
  const envDir = await mkdtemp(join(options.dir, "raw-lmdb-"));
  const env = open({ path: envDir });
  try {
    const db = env.openDB<string, number>(LMDB_LOG_DB_OPTIONS);
    const startedMs = performance.now();
    for (let first = 1; first <= entries; first += batchSize) {
      const last = Math.min(entries, first + batchSize - 1);
      let committed: Promise<boolean> | undefined;
      for (let key = first; key <= last; key++) committed = db.put(key, value);
      await committed;
      await db.flushed;
    }
    return (entries / (performance.now() - startedMs)) * 1000;
  } finally {
    await env.close();
    await rm(envDir, { recursive: true, force: true });
  }
}

/** Durable LmdbCommandLog.append records per second, same shape of work as the raw puts. */
export async function logAppendThroughput(options: RawPutOptions): Promise<number> {
  return (await logAppendRun(options)).recordsPerSec;
}

async function logAppendRun(options: RawPutOptions): Promise<{ recordsPerSec: number; flushMsMean: number }> {
  const { entries, batchSize } = options;
  const bodyChars = Math.max(1, (options.valueBytes ?? VALUE_BYTES_DEFAULT) - 64);
  const hash = "0123456789abcdef".repeat(4);
  const records: LogRecord[] = [];
  for (let index = 1; index <= entries; index++) records.push({ index, hash, body: "b".repeat(bodyChars) });
  const logDir = await mkdtemp(join(options.dir, "log-lmdb-"));
  const log = await LmdbCommandLog.open(logDir);
  try {
    const startedMs = performance.now();
    for (let start = 0; start < entries; start += batchSize) await log.append(records.slice(start, start + batchSize));
    const recordsPerSec = (entries / (performance.now() - startedMs)) * 1000;
    const metrics = log.metrics();
    return { recordsPerSec, flushMsMean: metrics.flushMsTotal / metrics.appendCount };
  } finally {
    await log.close();
    await rm(logDir, { recursive: true, force: true });
  }
}

/** Latency of one 4 KiB append + fdatasync on `dir`'s file system: the floor under every durable ack. */
async function fdatasyncLatencyMs(dir: string, samples: number): Promise<{ p50: number; p99: number }> {
  const path = join(dir, "fdatasync-probe");
  const handle = await openFile(path, "w");
  const block = Buffer.alloc(4096, 1);
  const latencies: number[] = [];
  try {
    for (let i = 0; i < samples; i++) {
      await handle.write(block);
      const startedMs = performance.now();
      await handle.datasync();
      latencies.push(performance.now() - startedMs);
    }
  } finally {
    await handle.close();
    await rm(path, { force: true });
  }
  latencies.sort((a, b) => a - b);
  const at = (q: number): number => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] as number;
  return { p50: at(0.5), p99: at(0.99) };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

async function main(): Promise<void> {
  const entries = Number(process.env.BENCH_ENTRIES ?? 51_200);
  const batchSize = 256;
  const runs = 3;
  const dir = await mkdtemp(join(tmpdir(), "swoosh-lmdb-raw-"));
  try {
    const latency = await fdatasyncLatencyMs(dir, 200);
    console.log(`fdatasync of a 4 KiB append: p50 ${latency.p50.toFixed(3)} ms, p99 ${latency.p99.toFixed(3)} ms`);
    const raw: number[] = [];
    const log: number[] = [];
    const flushMs: number[] = [];
    // Alternate, so drift in machine load hits both sides alike.
    for (let run = 0; run < runs; run++) {
      raw.push(await rawBatchedLmdbPuts({ dir, entries, batchSize }));
      const logRun = await logAppendRun({ dir, entries, batchSize });
      log.push(logRun.recordsPerSec);
      flushMs.push(logRun.flushMsMean);
    }
    const rawMedian = median(raw);
    const logMedian = median(log);
    console.log(`raw batched LMDB puts (batch ${batchSize}, ${entries} entries): ${Math.round(rawMedian)} ops/s  [runs: ${raw.map(Math.round).join(", ")}]`);
    console.log(`LmdbCommandLog.append  (batch ${batchSize}, ${entries} entries): ${Math.round(logMedian)} records/s  [runs: ${log.map(Math.round).join(", ")}]`);
    console.log(`one append of ${batchSize} (commit + flush): ${median(flushMs).toFixed(2)} ms mean`);
    console.log(`ratio log/raw: ${(logMedian / rawMedian).toFixed(2)}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) await main();
