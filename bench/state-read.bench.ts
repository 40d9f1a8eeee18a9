/**
 * `npm run bench:state`: what reading a large state costs the writers. The
 * server (its own process, `npm start`'s Node flags) is filled with `--tasks`
 * tasks (default 100,000, ~36 MB of state), then takes `POST /command` at an
 * open-loop `--rate` (default 500/s) while `curl`, a separate process, GETs
 * `--read` (default `/state`; e.g. `/tasks?status=queued`) `--reads` times
 * spread over the window (for /state, the first with no record text cached
 * yet). Reported: the writes' latency over the window (p50/p99/max, from
 * their scheduled send time) and each GET's size and time. A write that
 * waits behind a GET shows in its max.
 *
 * Run: node --import tsx bench/state-read.bench.ts [--tasks 100000] [--rate 500] [--seconds 7] [--read /state] [--reads 3]
 */
import { spawn } from "node:child_process";
import { parseArgs } from "node:util";
import { setTimeout as sleep } from "node:timers/promises";
import { createHttpClient } from "./peers/http-client.ts";
import { startHttpPeer } from "./peers/http-peer.ts";
import { openLoop } from "./peers/load.ts";
import { round } from "./peers/stats.ts";
import { inTempDir } from "./peers/temp-dir.ts";
import { taskSubmitCommand, taskSubmitBody } from "./peers/workload.ts";

const { values: flags } = parseArgs({
  options: {
    tasks: { type: "string", default: "100000" },
    rate: { type: "string", default: "500" },
    seconds: { type: "string", default: "7" },
    read: { type: "string", default: "/state" },
    reads: { type: "string", default: "3" },
  },
});
const taskCount = Number(flags.tasks);
const ratePerSec = Number(flags.rate);
const durationMs = Number(flags.seconds) * 1000;
const readPath = flags.read;
const readCount = Number(flags.reads);
const FILL_BATCH = 1000;

/** One GET by curl: status, bytes, milliseconds (curl's own figures). */
function curlGet(url: string): Promise<{ status: number; bytes: number; ms: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn("curl", ["-s", "-o", "/dev/null", "--max-time", "60", "-w", "%{http_code} %{size_download} %{time_total}", url]);
    let out = "";
    child.stdout.on("data", (data: Buffer) => (out += data.toString()));
    child.on("error", reject);
    child.on("exit", () => {
      const [status, bytes, seconds] = out.split(" ").map(Number);
      resolve({ status: status ?? 0, bytes: bytes ?? 0, ms: round((seconds ?? 0) * 1000, 0) });
    });
  });
}

const server = await inTempDir("swoosh-state-read", async (dir) =>
  startHttpPeer({ name: "swoosh", entry: "bench/peers/swoosh-server.ts", args: ["--data-dir", dir] }),
);
const client = createHttpClient(server.url, { connections: 16 });
try {
  for (let from = 0; from < taskCount; from += FILL_BATCH) {
    const commands = Array.from({ length: Math.min(FILL_BATCH, taskCount - from) }, (_, i) => taskSubmitCommand("fill", from + i));
    await client.postJson("/commands", JSON.stringify({ commands }));
  }
  const reads: Array<{ status: number; bytes: number; ms: number }> = [];
  const reading = (async () => {
    for (let i = 0; i < readCount; i++) {
      await sleep(durationMs / (readCount + 1));
      reads.push(await curlGet(server.url + readPath));
    }
  })();
  const writes = await openLoop({ op: (seq) => client.postJson("/command", taskSubmitBody("w", seq).json), ratePerSec, warmupMs: 500, durationMs });
  await reading;
  console.log(`state of ${taskCount} tasks; writes at ${ratePerSec}/s while GET ${readPath} runs ${readCount} times:`);
  console.log(`  writes: p50 ${round(writes.latency.p50Ms, 2)} ms, p99 ${round(writes.latency.p99Ms, 2)} ms, max ${round(writes.latency.maxMs, 1)} ms, errors ${writes.errors}`);
  for (const [i, read] of reads.entries()) console.log(`  GET ${readPath} #${i + 1}: ${read.status}, ${round(read.bytes / 1e6, 2)} MB in ${read.ms} ms`);
} finally {
  await client.close();
  await server.stop();
}
