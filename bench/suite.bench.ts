/**
 * `npm run bench`: Swoosh beside its peers and ceilings in ONE run on the same
 * machine; the ratios Swoosh / peer are what to quote (the machine is shared
 * and noisy; every peer sees the same noise within a run). Every server is
 * started and stopped here, each with its own temp dir, bound to 127.0.0.1.
 *
 * Command throughput (closed loop, `task.submit`-sized writes, ~100-byte task
 * payload, at 1/16/64/256 in flight, p50/p99):
 *   swoosh-inproc   openSwoosh on a temp dir, engine.submit (durable: flushed before it resolves)
 *   lmdb-put        in process, one LMDB put of hash + body per operation with the WAL's settings,
 *                   resolved once durable (the in-process ceiling: no validation, state machine or hashing)
 *   swoosh-http     the server in a child process, POST /command (undici pool, one connection per in-flight op)
 *   etcd            puts of the same body bytes (etcd3 client, one gRPC channel)
 *   sqlite-txn      node:http + better-sqlite3 (WAL, synchronous=FULL) in a child process, one transaction per command
 *   sqlite-group    the same, commands pending at one event-loop turn committed in one transaction
 *   bullmq-always   Queue.add of the same payload, redis AOF appendfsync always
 *   bullmq-everysec the same with appendfsync everysec (WEAKER: up to ~1 s of acknowledged jobs can be lost)
 *   do-nothing      node:http that parses the body and answers, storing nothing (HTTP ceiling)
 *   durable-nothing the same plus an LMDB put of the body with the WAL's settings, answered after
 *                   the commit (ceiling of any server that makes each command durable on this storage)
 * End-to-end jobs/s (submit → claim → complete) with 1, 4 and 16 workers and
 * 2 producers; see PROTOCOL below (each Swoosh figure on a fresh data dir).
 * At each concurrency level every peer is started on fresh data and the peers
 * are measured in a rotating order (worker counts likewise), so the noise of a
 * shared machine is spread over them; every peer is stopped in a finally block. Ceilings: fdatasync/s of the temp disk,
 * raw batched LMDB puts (bench/lmdb-raw.ts, batches of 256).
 *
 * Flags: --seconds 5 --warmup-seconds 1 --concurrency 1,16,64,256 --workers 1,4,16
 *        --peers (comma list of the names above; default all) --out bench/results
 *        --quiet-below LOAD [--quiet-wait-seconds 120]: first wait (bounded) until the
 *        1-minute load average is below LOAD (a shared machine)
 */
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { Queue, Worker } from "bullmq";
import { open } from "lmdb";
import { openSwoosh } from "../src/index.ts";
import type { Engine } from "../src/engine/engine.ts";
import type { OrchestratorModel } from "../src/domain/index.ts";
import { LMDB_LOG_DB_OPTIONS, LMDB_LOG_ENV_OPTIONS } from "../src/storage/lmdb-log.ts";
import { renderSuiteChart } from "./chart.ts";
import { rawBatchedLmdbPuts } from "./lmdb-raw.ts";
import { probeFdatasync } from "./peers/disk-probe.ts";
import { createEtcdClient } from "./peers/etcd-client.ts";
import { ETCD_INSTALL_HINT, findEtcd, startEtcd } from "./peers/etcd.ts";
import { createHttpClient } from "./peers/http-client.ts";
import type { HttpClient } from "./peers/http-client.ts";
import { startHttpPeer } from "./peers/http-peer.ts";
import { closedLoop, measurementWindow } from "./peers/load.ts";
import type { LoadResult, Operation } from "./peers/load.ts";
import { machineState, waitForQuiet } from "./peers/machine.ts";
import { REDIS_INSTALL_HINT, findRedis, startRedis } from "./peers/redis.ts";
import { round } from "./peers/stats.ts";
import { swooshServerAvailable } from "./peers/swoosh-server.ts";
import { createTempDir, inTempDir } from "./peers/temp-dir.ts";
import { taskPayload, taskSubmitBody, taskSubmitCommand } from "./peers/workload.ts";

const { values: flags } = parseArgs({
  options: {
    seconds: { type: "string", default: "5" },
    "warmup-seconds": { type: "string", default: "1" },
    concurrency: { type: "string", default: "1,16,64,256" },
    workers: { type: "string", default: "1,4,16" },
    peers: { type: "string", default: "swoosh-inproc,swoosh-http,lmdb-put,etcd,sqlite-txn,sqlite-group,bullmq-always,bullmq-everysec,do-nothing,durable-nothing" },
    out: { type: "string", default: "bench/results" },
    "quiet-below": { type: "string" },
    "quiet-wait-seconds": { type: "string", default: "120" },
  },
});
const durationMs = Number(flags.seconds) * 1000;
const warmupMs = Number(flags["warmup-seconds"]) * 1000;
const concurrencies = flags.concurrency.split(",").map(Number);
const workerCounts = flags.workers.split(",").map(Number);
const wanted = new Set(flags.peers.split(",").map((s) => s.trim()));
const PRODUCERS = 2;
const PRODUCE_BATCH = 100;
const CLAIM_LIMIT = 16;
const BACKLOG_MAX = 20_000;
const PROTOCOL =
  `${PRODUCERS} producers submit batches of ${PRODUCE_BATCH} tasks (Swoosh: one POST /commands of ${PRODUCE_BATCH} task.submit; BullMQ: Queue.addBulk) ` +
  `while fewer than ${BACKLOG_MAX} are outstanding. Each Swoosh worker is an agent of capacity ${CLAIM_LIMIT}; it sends ONE batch per round trip: ` +
  `task.complete for every lease it holds followed by task.claim limit ${CLAIM_LIMIT} (in-process: the same commands through engine.submit); ` +
  `an empty claim waits 1 ms. Each BullMQ worker is a Worker with concurrency ${CLAIM_LIMIT} and a no-op processor (completed jobs kept). ` +
  `jobs/s = completions inside the measured window.`;

/** The measurements are bounded: past this (after any --quiet-below wait), children are killed and the process exits 2. */
const BOUND_MS = 9.5 * 60_000;

interface ThroughputRow {
  peer: string;
  concurrency: number;
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
}
interface JobsRow {
  system: string;
  workers: number;
  jobsPerSec: number;
  /** Tasks submitted per second over warm-up + window, and how many were still outstanding at the end: a backlog near 0 means the producers, not the workers, bounded jobs/s. */
  submittedPerSec: number;
  backlogAtEnd: number;
  errors: number;
}
const throughput: ThroughputRow[] = [];
const jobs: JobsRow[] = [];
const skipped: Record<string, string> = {};
const failed: Record<string, string> = {};

function record(peer: string, concurrency: number, result: LoadResult): void {
  const row = { peer, concurrency, opsPerSec: Math.round(result.opsPerSec), p50Ms: round(result.latency.p50Ms, 2), p99Ms: round(result.latency.p99Ms, 2), errors: result.errors };
  throughput.push(row);
  console.log(`  ${peer} @${concurrency}: ${row.opsPerSec}/s p50 ${row.p50Ms} ms p99 ${row.p99Ms} ms${row.errors ? ` errors ${row.errors} (${result.firstError})` : ""}`);
}

/** Runs `body`, recording (not throwing) a failure so the other peers still run. */
async function guarded(name: string, body: () => Promise<void>): Promise<void> {
  if (!wanted.has(name)) return;
  try {
    await body();
  } catch (error) {
    const why = error instanceof Error ? (error.message.split("\n")[0] ?? "") : String(error);
    failed[name] = failed[name] ? `${failed[name]}; ${why}` : why;
    console.log(`  ${name} FAILED: ${why}`);
  }
}

/** In process, a command is built as a library caller builds it (no JSON text to parse: that is the HTTP peers' work). */
const submitCommand = taskSubmitCommand;

function pushJobs(row: JobsRow): void {
  jobs.push(row);
  console.log(`  ${row.system} e2e with ${row.workers} workers: ${row.jobsPerSec} jobs/s (submitted ${row.submittedPerSec}/s, backlog at end ${row.backlogAtEnd})${row.errors ? `, ${row.errors} errors` : ""}`);
}

// ---------- end-to-end, shared by both Swoosh transports ----------
type Reply = { result?: { leases?: Array<{ taskId: string; token: number }>; status?: string }; error?: { code: string } };
type Send = (commands: unknown[]) => Promise<Reply[]>;

async function swooshEndToEnd(system: string, send: Send, workers: number): Promise<void> {
  const tag = `${system}-w${workers}-${Date.now()}`;
  const { windowStart, windowEnd } = measurementWindow(warmupMs, durationMs);
  let submitted = 0;
  let completed = 0;
  let counted = 0;
  let errors = 0;
  const register = await send(Array.from({ length: workers }, (_, w) => ({ type: "agent.register", payload: { agentId: `${tag}-a${w}`, labels: [], capacity: CLAIM_LIMIT } })));
  if (register.some((r) => r.error)) throw new Error(`agent.register failed: ${JSON.stringify(register.find((r) => r.error))}`);
  const producer = async (p: number): Promise<void> => {
    let seq = 0;
    while (performance.now() < windowEnd) {
      if (submitted - completed > BACKLOG_MAX) {
        await sleep(2);
        continue;
      }
      const batch = Array.from({ length: PRODUCE_BATCH }, () => submitCommand(`${tag}-p${p}`, seq++));
      submitted += batch.length;
      const replies = await send(batch);
      errors += replies.filter((r) => r.error).length;
    }
  };
  const worker = async (w: number): Promise<void> => {
    let held: Array<{ taskId: string; token: number }> = [];
    while (performance.now() < windowEnd) {
      const commands = [
        ...held.map((lease) => ({ type: "task.complete", payload: { taskId: lease.taskId, token: lease.token } })),
        { type: "task.claim", payload: { agentId: `${tag}-a${w}`, limit: CLAIM_LIMIT } },
      ];
      const replies = await send(commands);
      const now = performance.now();
      for (const reply of replies.slice(0, -1)) {
        if (reply.result?.status === "succeeded") {
          completed += 1;
          if (now >= windowStart && now <= windowEnd) counted += 1;
        } else errors += 1;
      }
      held = replies.at(-1)?.result?.leases ?? [];
      if (held.length === 0) await sleep(1);
    }
  };
  await Promise.all([...Array.from({ length: PRODUCERS }, (_, p) => producer(p)), ...Array.from({ length: workers }, (_, w) => worker(w))]);
  pushJobs({ system, workers, jobsPerSec: Math.round((counted / durationMs) * 1000), submittedPerSec: Math.round((submitted / (warmupMs + durationMs)) * 1000), backlogAtEnd: submitted - completed, errors });
}

function engineSend(engine: Engine<OrchestratorModel>): Send {
  return async (commands) => {
    const settled = await Promise.allSettled(commands.map((c) => engine.submit(c as Parameters<typeof engine.submit>[0])));
    return settled.map((s) => (s.status === "fulfilled" ? (s.value as Reply) : { error: { code: String((s.reason as { code?: string }).code ?? s.reason) } }));
  };
}

function httpSend(client: HttpClient): Send {
  return async (commands) => (JSON.parse(await client.postJson("/commands", JSON.stringify({ commands }))) as { results: Reply[] }).results;
}

// ---------- peers ----------
/**
 * A peer started for one concurrency level of the throughput phase: all of
 * them run at once (idle unless measured) so that the level measures every
 * peer within a minute or so, in a rotating order: the noise of a shared
 * machine then lands on all of them rather than on whichever ran during a
 * busy spell.
 */
interface Started {
  readonly name: string;
  /** The operation to drive at `concurrency` in flight, and what to close after (an HTTP pool sized to it). */
  driver(concurrency: number, tag: string): { op: Operation; close(): Promise<void> };
  stop(): Promise<void>;
}

/** A fresh engine on a fresh temp dir, closed and removed afterwards. */
async function withEngine(run: (engine: Engine<OrchestratorModel>) => Promise<void>): Promise<void> {
  const dir = await createTempDir("swoosh-suite");
  try {
    const engine = await openSwoosh({ dataDir: dir.path });
    try {
      await run(engine);
    } finally {
      await engine.close();
    }
  } finally {
    await dir.remove();
  }
}

const noClose = async (): Promise<void> => undefined;

function startInProcess(): Promise<Started> {
  return inTempDir<Started>("swoosh-suite", async (dir) => {
    const engine = await openSwoosh({ dataDir: dir });
    return {
      name: "swoosh-inproc",
      driver: (_c, tag) => ({ op: (seq) => engine.submit(submitCommand(tag, seq)), close: noClose }),
      stop: () => engine.close(),
    };
  });
}

/**
 * The in-process analogue of the durable do-nothing server: one LMDB put per
 * operation (a 64-character hash and the command body, what the WAL stores),
 * with the WAL's environment settings, each resolved once its commit is
 * durable; puts made while a commit runs form the next one.
 */
function startLmdbPut(): Promise<Started> {
  return inTempDir<Started>("lmdb-put-suite", async (dir) => {
    const env = open({ path: dir, ...LMDB_LOG_ENV_OPTIONS });
    const db = env.openDB<string, number>(LMDB_LOG_DB_OPTIONS);
    const hash = "0".repeat(64);
    let key = 0;
    return {
      name: "lmdb-put",
      driver: (_c, tag) => ({ op: (seq) => db.put(++key, hash + taskSubmitBody(tag, seq).json), close: noClose }),
      stop: () => env.close(),
    };
  });
}

/** An HTTP child server: a fresh undici pool per concurrency. */
function startHttp(name: string, entry: string, args: (dir: string) => string[]): Promise<Started> {
  return inTempDir<Started>(`${name}-suite`, async (dir) => {
    const server = await startHttpPeer({ name, entry, args: args(dir) });
    return {
      name,
      driver: (connections, tag) => {
        const client = createHttpClient(server.url, { connections });
        return { op: (seq) => client.postJson("/command", taskSubmitBody(tag, seq).json), close: () => client.close() };
      },
      stop: () => server.stop(),
    };
  });
}

async function startEtcdPeer(): Promise<Started | undefined> {
  const binary = await findEtcd();
  if (!binary) {
    skipped.etcd = `etcd is not installed: ${ETCD_INSTALL_HINT}`;
    return undefined;
  }
  return inTempDir<Started>("etcd-suite", async (dir) => {
    const server = await startEtcd(binary, dir);
    const client = createEtcdClient(server.endpoint);
    return {
      name: "etcd",
      driver: (_c, tag) => ({
        op: (seq) => {
          const { key, json } = taskSubmitBody(tag, seq);
          return client.put(key, json);
        },
        close: noClose,
      }),
      stop: async () => {
        client.close();
        await server.stop();
      },
    };
  });
}

type Connection = { host: string; port: number; maxRetriesPerRequest: null };

async function startBullmq(fsync: "always" | "everysec"): Promise<(Started & { connection: Connection }) | undefined> {
  const name = `bullmq-${fsync}`;
  const binary = await findRedis();
  if (!binary) {
    skipped[name] = `redis-server is not installed: ${REDIS_INSTALL_HINT}`;
    return undefined;
  }
  const redis = await startRedis(binary.path, fsync);
  const connection = { host: redis.host, port: redis.port, maxRetriesPerRequest: null };
  const queue = new Queue("bench-add", { connection });
  return {
    name,
    connection,
    driver: (_c, tag) => ({ op: (seq) => queue.add("task", { taskId: `${tag}-t${seq}`, kind: "bench", payload: taskPayload(seq) }, { jobId: `${tag}-t${seq}` }), close: noClose }),
    stop: async () => {
      try {
        await queue.close();
      } finally {
        await redis.stop();
      }
    },
  };
}

async function bullmqEndToEnd(name: string, connection: Connection, workers: number): Promise<void> {
  const queueName = `e2e-w${workers}`;
  const producerQueue = new Queue(queueName, { connection });
  const started: Worker[] = [];
  let submitted = 0;
  let completed = 0;
  let counted = 0;
  let errors = 0;
  const { windowStart, windowEnd } = measurementWindow(warmupMs, durationMs);
  try {
    for (let w = 0; w < workers; w++) {
      const worker = new Worker(queueName, async () => undefined, { connection, concurrency: CLAIM_LIMIT });
      worker.on("completed", () => {
        completed += 1;
        const now = performance.now();
        if (now >= windowStart && now <= windowEnd) counted += 1;
      });
      worker.on("failed", () => (errors += 1));
      worker.on("error", () => (errors += 1));
      started.push(worker);
    }
    await Promise.all(
      Array.from({ length: PRODUCERS }, async (_, p) => {
        let seq = 0;
        while (performance.now() < windowEnd) {
          if (submitted - completed > BACKLOG_MAX) {
            await sleep(2);
            continue;
          }
          const batch = Array.from({ length: PRODUCE_BATCH }, () => {
            const n = seq++;
            return { name: "task", data: { taskId: `p${p}-t${n}`, kind: "bench", payload: taskPayload(n) } };
          });
          submitted += batch.length;
          await producerQueue.addBulk(batch);
        }
      }),
    );
    const remaining = windowEnd - performance.now();
    if (remaining > 0) await sleep(remaining);
  } finally {
    await Promise.all(started.map((w) => w.close(true).catch(() => undefined)));
    await producerQueue.close();
  }
  pushJobs({ system: name, workers, jobsPerSec: Math.round((counted / durationMs) * 1000), submittedPerSec: Math.round((submitted / (warmupMs + durationMs)) * 1000), backlogAtEnd: submitted - completed, errors });
}

/** Swoosh end to end over HTTP on a fresh server (no backlog left over from the previous measurement). */
async function swooshHttpEndToEnd(workers: number): Promise<void> {
  const dir = await createTempDir("swoosh-suite-e2e");
  try {
    const server = await startHttpPeer({ name: "swoosh-http", entry: "bench/peers/swoosh-server.ts", args: ["--data-dir", dir.path] });
    try {
      const client = createHttpClient(server.url, { connections: PRODUCERS + workers });
      try {
        await swooshEndToEnd("swoosh-http", httpSend(client), workers);
      } finally {
        await client.close();
      }
    } finally {
      await server.stop();
    }
  } finally {
    await dir.remove();
  }
}

/** Starts each wanted peer (a failure is recorded and the rest still start). */
async function startPeers(starters: ReadonlyArray<[string, () => Promise<Started | undefined>]>): Promise<Started[]> {
  const running: Started[] = [];
  for (const [name, start] of starters) {
    await guarded(name, async () => {
      const peer = await start();
      if (peer) running.push(peer);
    });
  }
  return running;
}

async function stopPeers(running: readonly Started[]): Promise<void> {
  for (const peer of running) await peer.stop().catch((error: unknown) => console.error(`stopping ${peer.name}:`, error));
}

// ---------- report ----------
const get = (peer: string, concurrency: number): number | undefined => throughput.find((r) => r.peer === peer && r.concurrency === concurrency)?.opsPerSec;
const getJobs = (system: string, workers: number): number | undefined => jobs.find((r) => r.system === system && r.workers === workers)?.jobsPerSec;
const ratioOf = (a: number | undefined, b: number | undefined): number | null => (a && b ? round(a / b, 3) : null);

async function main(): Promise<void> {
  if (flags["quiet-below"] !== undefined) {
    const calm = await waitForQuiet(Number(flags["quiet-below"]), Number(flags["quiet-wait-seconds"]) * 1000);
    console.log(`${calm.quiet ? "machine quiet" : "machine still busy; measuring anyway"}: load average ${round(calm.loadAverage1m, 2)} after ${Math.round(calm.waitedMs / 1000)} s`);
  }
  const watchdog = setTimeout(() => {
    console.error(`bench exceeded its ${BOUND_MS / 1000} s bound; stopping`);
    process.exit(2);
  }, BOUND_MS);
  watchdog.unref();
  const machineBefore = machineState();
  const diskBefore = await probeFdatasync();
  console.log(`load average ${machineBefore.loadAverage1m} on ${machineBefore.cpus} cpus; ${warmupMs / 1000} s warm-up + ${durationMs / 1000} s per figure, one run`);
  console.log(`fdatasync of 4 KiB: p50 ${round(diskBefore.p50Ms, 3)} ms → ${Math.round(1000 / diskBefore.meanMs)} fdatasync/s`);

  const starters: Array<[string, () => Promise<Started | undefined>]> = [
    ["swoosh-inproc", startInProcess],
    [
      "swoosh-http",
      async () => {
        if (swooshServerAvailable()) return startHttp("swoosh-http", "bench/peers/swoosh-server.ts", (dir) => ["--data-dir", dir]);
        skipped["swoosh-http"] = "src/server/index.ts does not exist";
        return undefined;
      },
    ],
    ["lmdb-put", startLmdbPut],
    ["etcd", startEtcdPeer],
    ["sqlite-txn", () => startHttp("sqlite-txn", "bench/peers/sqlite-server.ts", (dir) => ["--db", path.join(dir, "bench.db"), "--mode", "txn"])],
    ["sqlite-group", () => startHttp("sqlite-group", "bench/peers/sqlite-server.ts", (dir) => ["--db", path.join(dir, "bench.db"), "--mode", "group"])],
    ["bullmq-always", () => startBullmq("always")],
    ["bullmq-everysec", () => startBullmq("everysec")],
    ["do-nothing", () => startHttp("do-nothing", "bench/peers/do-nothing-server.ts", () => [])],
    ["durable-nothing", () => startHttp("durable-nothing", "bench/peers/durable-nothing-server.ts", (dir) => ["--data-dir", dir])],
  ];
  for (const [level, concurrency] of concurrencies.entries()) {
    // Every level starts every peer on fresh data: a state grown through the
    // earlier levels would make each figure depend on where in its growth a
    // peer stood (Swoosh's snapshot of a 130,000-task state, landing in one
    // level's window or another's, moved that level's figure by 20-25%).
    console.log(`${concurrency} in flight (every peer started on fresh data):`);
    const running = await startPeers(starters);
    try {
      const order = running.map((_, i) => running[(i + level) % running.length] as Started);
      for (const peer of order) {
        await guarded(peer.name, async () => {
          const { op, close } = peer.driver(concurrency, `${peer.name}-c${concurrency}`);
          try {
            record(peer.name, concurrency, await closedLoop({ op, concurrency, warmupMs, durationMs }));
          } finally {
            await close();
          }
        });
      }
    } finally {
      await stopPeers(running);
    }
  }
  const bullmq: Array<Started & { connection: Connection }> = [];
  try {
    const e2e: Array<[string, (workers: number) => Promise<void>]> = [];
    if (wanted.has("swoosh-inproc")) e2e.push(["swoosh-inproc", (w) => withEngine((engine) => swooshEndToEnd("swoosh-inproc", engineSend(engine), w))]);
    if (wanted.has("swoosh-http") && swooshServerAvailable()) e2e.push(["swoosh-http", swooshHttpEndToEnd]);
    for (const fsync of ["always", "everysec"] as const) {
      const name = `bullmq-${fsync}`;
      await guarded(name, async () => {
        const peer = await startBullmq(fsync);
        if (peer === undefined) return;
        bullmq.push(peer);
        e2e.push([name, (w) => bullmqEndToEnd(name, peer.connection, w)]);
      });
    }
    for (const [level, workers] of workerCounts.entries()) {
      console.log(`end to end, ${workers} workers:`);
      const order = e2e.map((_, i) => e2e[(i + level) % e2e.length] as [string, (workers: number) => Promise<void>]);
      for (const [name, run] of order) await guarded(name, () => run(workers));
    }
  } finally {
    await stopPeers(bullmq);
  }

  console.log("ceilings:");
  const lmdbDir = await createTempDir("lmdb-suite");
  let lmdbRaw: number;
  try {
    lmdbRaw = Math.round(await rawBatchedLmdbPuts({ dir: lmdbDir.path, entries: 100_000, batchSize: 256 }));
  } finally {
    await lmdbDir.remove();
  }
  console.log(`  raw batched LMDB puts (batches of 256, 320-byte values): ${lmdbRaw}/s`);
  const machineAfter = machineState();
  const diskAfter = await probeFdatasync();
  clearTimeout(watchdog);
  const fdatasyncPerSec = Math.round(1000 / ((diskBefore.meanMs + diskAfter.meanMs) / 2));

  const ratios: Array<{ figure: string; swoosh: number | undefined; peer: string; peerValue: number | undefined; ratio: number | null; target?: number; verdict?: string }> = [];
  const add = (figure: string, swoosh: number | undefined, peer: string, peerValue: number | undefined, target?: number): void => {
    const ratio = ratioOf(swoosh, peerValue);
    ratios.push({ figure, swoosh, peer, peerValue, ratio, ...(target === undefined ? {} : { target, verdict: ratio === null ? "not measured" : ratio >= target ? "met" : "MISSED" }) });
  };
  for (const c of concurrencies) {
    add(`POST /command @${c}`, get("swoosh-http", c), "etcd put", get("etcd", c), c === 64 ? 2.5 : undefined);
    add(`POST /command @${c}`, get("swoosh-http", c), "do-nothing HTTP", get("do-nothing", c), c === 64 ? 0.6 : undefined);
    add(`POST /command @${c}`, get("swoosh-http", c), "durable do-nothing HTTP", get("durable-nothing", c));
    add(`POST /command @${c}`, get("swoosh-http", c), "SQLite txn/command", get("sqlite-txn", c), 3);
    add(`POST /command @${c}`, get("swoosh-http", c), "SQLite group commit", get("sqlite-group", c));
    add(`POST /command @${c}`, get("swoosh-http", c), "BullMQ add (always)", get("bullmq-always", c));
    add(`POST /command @${c}`, get("swoosh-http", c), "BullMQ add (everysec, weaker)", get("bullmq-everysec", c));
    add(`in-process submit @${c}`, get("swoosh-inproc", c), "BullMQ add (always)", get("bullmq-always", c));
    add(`in-process submit @${c}`, get("swoosh-inproc", c), "one awaited LMDB put per op", get("lmdb-put", c));
  }
  add("in-process submit @256", get("swoosh-inproc", 256), "raw batched LMDB puts", lmdbRaw, 0.35);
  add("in-process submit @256", get("swoosh-inproc", 256), "fdatasync/s (one write per sync)", fdatasyncPerSec);
  for (const w of workerCounts) {
    add(`e2e jobs/s HTTP, ${w} workers`, getJobs("swoosh-http", w), "BullMQ (always)", getJobs("bullmq-always", w), 1.0);
    add(`e2e jobs/s HTTP, ${w} workers`, getJobs("swoosh-http", w), "BullMQ (everysec, weaker)", getJobs("bullmq-everysec", w));
    add(`e2e jobs/s in-process, ${w} workers`, getJobs("swoosh-inproc", w), "BullMQ (always)", getJobs("bullmq-always", w));
  }

  // What survives of the do-nothing server's rate once each command is made durable at all: the ceiling of Swoosh/do-nothing.
  const durableNothingOverDoNothing = Object.fromEntries(concurrencies.map((c) => [c, ratioOf(get("durable-nothing", c), get("do-nothing", c))]));
  console.log(
    `  durable do-nothing / do-nothing HTTP (the ceiling of Swoosh / do-nothing): ${concurrencies.map((c) => `@${c} ${durableNothingOverDoNothing[c] ?? "n/a"}×`).join(", ")}`,
  );

  console.log("\ncommand throughput (ops/s, p50/p99 ms):");
  console.table(throughput);
  console.log(`end-to-end jobs/s — protocol: ${PROTOCOL}`);
  console.table(jobs);
  console.log("Swoosh / peer:");
  console.table(ratios.map((r) => ({ figure: r.figure, swoosh: r.swoosh ?? "n/a", peer: r.peer, "peer value": r.peerValue ?? "n/a", ratio: r.ratio === null ? "n/a" : `${r.ratio}×`, target: r.target === undefined ? "" : `≥ ${r.target}×`, verdict: r.verdict ?? "" })));
  for (const [name, why] of Object.entries(skipped)) console.log(`skipped ${name}: ${why}`);
  for (const [name, why] of Object.entries(failed)) console.log(`FAILED ${name}: ${why}`);
  console.log(
    `load average ${machineBefore.loadAverage1m} before, ${machineAfter.loadAverage1m} after (${machineAfter.cpus} cpus); ` +
      `4 KiB fdatasync p50 ${round(diskBefore.p50Ms, 3)} / ${round(diskAfter.p50Ms, 3)} ms before/after`,
  );

  const summary = {
    at: machineBefore.at,
    config: { warmupMs, durationMs, runs: 1, concurrencies, workerCounts, producers: PRODUCERS, produceBatch: PRODUCE_BATCH, claimLimit: CLAIM_LIMIT, protocol: PROTOCOL },
    machineBefore,
    machineAfter,
    ceilings: {
      fdatasyncPerSec,
      fdatasync4KiBMs: { before: { p50: round(diskBefore.p50Ms, 3), p99: round(diskBefore.p99Ms, 3) }, after: { p50: round(diskAfter.p50Ms, 3), p99: round(diskAfter.p99Ms, 3) } },
      rawBatchedLmdbPutsPerSec: lmdbRaw,
      durableNothingOverDoNothing,
    },
    throughput,
    jobs,
    ratios,
    skipped,
    failed,
  };
  await mkdir(flags.out, { recursive: true });
  const jsonPath = path.join(flags.out, "suite.json");
  await writeFile(jsonPath, JSON.stringify(summary, null, 2) + "\n");
  const pngPath = path.join(flags.out, "suite.png");
  await renderSuiteChart(summary, pngPath);
  console.log(`wrote ${jsonPath} and ${pngPath}`);
}

await main();
