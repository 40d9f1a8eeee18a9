/**
 * Watches the data disk for fsync stalls while a measurement runs: a worker
 * thread writes 4 KiB and calls fdatasync every 20 ms in a file of its own
 * under os.tmpdir(), and counts the syncs that took longer than `stallMs`.
 *
 * Why: on a shared disk one fdatasync now and then takes 50–250 ms with
 * nothing of ours running. Every server that answers after a flush waits
 * through it, and at 2,000 requests/s one such stall in a 10 s window
 * decides that window's p99. A latency figure is only readable beside the
 * stalls the disk had during it.
 *
 * A worker thread, so that the load generator's event loop never waits on
 * the probe's syncs; 50 syncs/s add next to nothing to the disk's load.
 */
import { Worker } from "node:worker_threads";
import { createTempDir } from "./temp-dir.ts";
import path from "node:path";

export interface DiskStalls {
  /** fdatasync calls made during the window. */
  readonly syncs: number;
  /** Of them, how many took longer than `stallMs`. */
  readonly stalls: number;
  readonly stallMs: number;
  /** The slowest, in ms. */
  readonly maxMs: number;
}

export interface DiskStallProbe {
  /** Stops the probe and gives what it saw. */
  stop(): Promise<DiskStalls>;
}

// Plain JavaScript, run with `eval`: the worker needs no loader for TypeScript.
const WORKER_SOURCE = `
const { workerData, parentPort } = require("node:worker_threads");
const fs = require("node:fs");
const { file, intervalMs, stallMs, flag } = workerData;
const stop = new Int32Array(flag);
const fd = fs.openSync(file, "w");
const block = Buffer.alloc(4096, 0x5a);
let syncs = 0, stalls = 0, maxMs = 0, i = 0;
while (Atomics.load(stop, 0) === 0) {
  fs.writeSync(fd, block, 0, block.length, (i++ % 64) * block.length);
  const before = performance.now();
  fs.fdatasyncSync(fd);
  const tookMs = performance.now() - before;
  syncs++;
  if (tookMs > stallMs) stalls++;
  if (tookMs > maxMs) maxMs = tookMs;
  Atomics.wait(stop, 0, 0, intervalMs);
}
fs.closeSync(fd);
parentPort.postMessage({ syncs, stalls, stallMs, maxMs });
`;

export async function startDiskStallProbe(options: { intervalMs?: number; stallMs?: number } = {}): Promise<DiskStallProbe> {
  const dir = await createTempDir("disk-stall-probe");
  const flag = new SharedArrayBuffer(4);
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: { file: path.join(dir.path, "probe.dat"), intervalMs: options.intervalMs ?? 20, stallMs: options.stallMs ?? 10, flag },
  });
  const result = new Promise<DiskStalls>((resolve, reject) => {
    worker.once("message", (stalls: DiskStalls) => resolve(stalls));
    worker.once("error", reject);
    worker.once("exit", (code) => reject(new Error(`disk stall probe exited (${code}) before reporting`)));
  });
  // Never left running: a stop that is not awaited must not keep a failed probe's rejection unhandled.
  result.catch(() => undefined);
  return {
    async stop() {
      Atomics.store(new Int32Array(flag), 0, 1);
      Atomics.notify(new Int32Array(flag), 0);
      try {
        return await result;
      } finally {
        await worker.terminate();
        await dir.remove();
      }
    },
  };
}
