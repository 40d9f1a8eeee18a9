/**
 * How fast the disk under os.tmpdir() makes a write durable right now: a few
 * hundred 4 KiB writes, each followed by fdatasync, in a temporary file.
 * Every durable peer (Swoosh's WAL, etcd's WAL) waits on exactly this, so a
 * figure taken while other work hammers the disk says so here.
 * Bounded in count and time; runs synchronously (nothing else should be
 * running in the process while it measures).
 */
import { closeSync, fdatasyncSync, openSync, writeSync } from "node:fs";
import { createTempDir } from "./temp-dir.ts";
import path from "node:path";
import { LatencyRecorder } from "./stats.ts";
import type { LatencySummaryMs } from "./stats.ts";

export async function probeFdatasync(options: { writes?: number; maxMs?: number } = {}): Promise<LatencySummaryMs> {
  const writes = options.writes ?? 300;
  const maxMs = options.maxMs ?? 2000;
  const dir = await createTempDir("disk-probe");
  const recorder = new LatencyRecorder(writes);
  try {
    const fd = openSync(path.join(dir.path, "probe.dat"), "w");
    try {
      const block = Buffer.alloc(4096, 0x5a);
      const startedAt = performance.now();
      for (let i = 0; i < writes && performance.now() - startedAt < maxMs; i++) {
        writeSync(fd, block, 0, block.length, (i % 64) * block.length);
        const before = performance.now();
        fdatasyncSync(fd);
        recorder.record(performance.now() - before);
      }
    } finally {
      closeSync(fd);
    }
  } finally {
    await dir.remove();
  }
  return recorder.summary();
}
