/**
 * `npm run bench:engine`: the engine's figures, each beside its ceiling in the
 * same run (machines here are shared and noisy, so ratios are what to quote).
 *
 *  1. durable in-process throughput with 256 commands in flight vs raw batched
 *     LMDB puts of the same records (target ≥ 0.35×);
 *  2. replay on open (target ≥ 200,000 commands/s);
 *  3. computeStateHash of 100,000 task-sized entries (target < 150 ms), beside
 *     the reference `canonicalize` package, and the engine's own state hash
 *     after 1% changed: read from a capture in paced slices (as GET /state
 *     reads it), so its time and its longest event-loop stall are both shown;
 *  4. the longest event-loop stall while a snapshot of a 100,000-task state
 *     (and 100,000 idempotency outcomes) is written with commands arriving;
 *  5. the steady state of commands that all carry an idempotency id (as the
 *     client SDK's do) on a small state, with the default snapshot settings:
 *     `agent.heartbeat`s at 256 in flight, measured once the table of
 *     remembered ids is full (100,000), so every snapshot writes its rows.
 *
 * Flags: --commands N (default 200000), --runs N (default 3), --json FILE.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import canonicalize from "canonicalize";
import { computeStateHash } from "../src/core/hash.ts";
import { canonicalJSON } from "../src/core/json.ts";
import { createGenesisState, orchestratorMachine } from "../src/domain/index.ts";
import type { OrchestratorModel } from "../src/domain/index.ts";
import { createGenesis } from "../src/engine/genesis.ts";
import { openEngine } from "../src/engine/open.ts";
import { sealEntry } from "../src/core/log-record.ts";
import { counterGenesisState, counterMachine } from "../test/support/counter-machine.ts";
import type { CounterState } from "../test/support/counter-machine.ts";
import { longestStallMs } from "../test/support/event-loop-stall.ts";
import { rawBatchedLmdbPuts } from "./lmdb-raw.ts";

const { values: flags } = parseArgs({
  options: {
    commands: { type: "string", default: "200000" },
    runs: { type: "string", default: "3" },
    json: { type: "string" },
  },
});
const commandCount = Number(flags.commands);
const runs = Number(flags.runs);
const IN_FLIGHT = 256;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

async function withDir<T>(run: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "swoosh-bench-"));
  try {
    return await run(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const genesis = createGenesis("bench", counterGenesisState("bench"), "2026-11-29T12:00:00.000Z");
const command = { type: "counter.add", payload: { amount: 1 } };

/** Durable commands/s with IN_FLIGHT concurrent callers, and the replay speed of what they wrote. */
async function engineRun(): Promise<{ commandsPerSec: number; replayPerSec: number; flushes: number }> {
  return withDir(async (dir) => {
    const engine = await openEngine<CounterState>({ dataDir: dir, machine: counterMachine, genesis, snapshotEvery: 0 });
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (next < commandCount) {
          next += 1;
          await engine.submit(command);
        }
      }),
    );
    const elapsedMs = performance.now() - started;
    const flushes = engine.stats().flushes;
    await engine.close();
    const replayStarted = performance.now();
    const reopened = await openEngine<CounterState>({ dataDir: dir, machine: counterMachine, snapshotEvery: 0 });
    const replayMs = performance.now() - replayStarted;
    const replayed = reopened.stats().appliedIndex;
    await reopened.close();
    return { commandsPerSec: (commandCount / elapsedMs) * 1000, replayPerSec: (replayed / replayMs) * 1000, flushes };
  });
}

/** A state shaped like SPEC §5 holding `count` tasks. */
function taskSizedState(count: number): Record<string, unknown> {
  const tasks: Record<string, unknown> = {};
  for (let i = 0; i < count; i++) {
    const id = `task-${String(i).padStart(6, "0")}`;
    tasks[id] = {
      id,
      kind: i % 3 === 0 ? "build" : "test",
      payload: { repo: "github.com/example/project", commit: (i * 2654435761).toString(16).padStart(8, "0"), shard: i % 16 },
      priority: i % 5,
      dependsOn: i > 0 && i % 10 === 0 ? [`task-${String(i - 1).padStart(6, "0")}`] : [],
      requires: i % 2 ? ["linux"] : ["linux", "gpu"],
      status: "queued",
      attempts: 0,
      maxAttempts: 3,
      createdAt: `001764417600${String(i % 1000).padStart(3, "0")}-${String(i).padStart(10, "0")}-node-1`,
      updatedAt: `001764417600${String(i % 1000).padStart(3, "0")}-${String(i).padStart(10, "0")}-node-1`,
    };
  }
  return { schemaVersion: 1, clusterId: "bench", phase: "active", config: {}, agents: {}, tasks };
}

function timeMs(run: () => void): number {
  const started = performance.now();
  run();
  return performance.now() - started;
}

interface LargeStateFigures {
  /** computeStateHash of the domain's state, nothing cached. */
  coldHashMs: number;
  /** engine.stateHash() after 1% of the tasks changed (record texts reused), from call to answer: read from a capture in paced slices. */
  warmHashMs: number;
  /** The longest event-loop stall during those. */
  warmHashStallMs: number;
  snapshotStallMs: number;
  snapshotMs: number;
  canonicalBytes: number;
}

/** An orchestrator engine on `dir` with a genesis of its own (snapshot settings as given, else the defaults). */
function openOrchestrator(dir: string, clusterId: string, settings: { snapshotEvery?: number } = {}) {
  return openEngine<OrchestratorModel>({
    dataDir: dir,
    machine: orchestratorMachine,
    genesis: createGenesis(clusterId, createGenesisState({ clusterId }), "2026-11-29T12:00:00.000Z"),
    ...settings,
  });
}

/** A real orchestrator state of `taskCount` tasks: hashing it cold and warm, and the longest stall while it is snapshotted. */
async function largeState(taskCount: number): Promise<LargeStateFigures> {
  return withDir(async (dir) => {
    const engine = await openOrchestrator(dir, "large", { snapshotEvery: 0 });
    await engine.submit({ type: "agent.register", payload: { agentId: "worker", labels: ["linux"], capacity: 1000 } });
    for (let i = 0; i < taskCount; i += 1000) {
      await Promise.all(
        Array.from({ length: Math.min(1000, taskCount - i) }, (_, j) =>
          engine.submit({
            type: "task.submit",
            // With an idempotency id, as clients send them: the snapshot then carries 100,000 outcome rows too.
            id: `submit-${i + j}`,
            payload: { taskId: `task-${i + j}`, kind: "build", payload: { repo: "github.com/example/project", commit: ((i + j) * 2654435761).toString(16), shard: (i + j) % 16 }, requires: ["linux"] },
          }),
        ),
      );
    }
    const { state } = await engine.readState();
    const canonicalBytes = Buffer.byteLength(canonicalJSON(state));
    const coldHashMs = median(Array.from({ length: 3 }, () => timeMs(() => computeStateHash(state))));
    await engine.stateHash(); // fills the record-text cache
    const warm: number[] = [];
    let warmHashStallMs = 0;
    for (let round = 0; round < 3; round++) {
      // Lease 1% of the tasks, so 1% of the records are new objects.
      await engine.submit({ type: "task.claim", payload: { agentId: "worker", limit: Math.min(1000, Math.floor(taskCount / 100)) } });
      const started = performance.now();
      const stallMs = await longestStallMs(async () => void (await engine.stateHash()));
      warm.push(performance.now() - started);
      warmHashStallMs = Math.max(warmHashStallMs, stallMs);
    }
    const started = performance.now();
    // Commands keep arriving while the snapshot is written, as on a live server.
    let writing = true;
    const writer = (async () => {
      for (let k = 0; writing; k++) await engine.submit({ type: "task.submit", id: `during-${k}`, payload: { taskId: `during-${k}`, kind: "build" } });
    })();
    const snapshotStallMs = await longestStallMs(() => engine.snapshot());
    writing = false;
    await writer;
    const snapshotMs = performance.now() - started;
    await engine.close();
    return { coldHashMs, warmHashMs: median(warm), warmHashStallMs, snapshotStallMs, snapshotMs, canonicalBytes };
  });
}

/** Commands/s of id-carrying heartbeats once the idempotency table is full, and the snapshots written meanwhile. */
async function idsSteadyState(): Promise<{ commandsPerSec: number; snapshots: number }> {
  return withDir(async (dir) => {
    const engine = await openOrchestrator(dir, "steady");
    await engine.submit({ type: "agent.register", payload: { agentId: "worker" } });
    const fill = 100_000;
    const measured = 200_000;
    let next = 0;
    const heartbeats = (until: number) =>
      Promise.all(
        Array.from({ length: IN_FLIGHT }, async () => {
          while (next < until) await engine.submit({ type: "agent.heartbeat", id: `beat-${next++}`, payload: { agentId: "worker" } });
        }),
      );
    await heartbeats(fill);
    const snapshotBefore = engine.stats().lastSnapshotIndex;
    let snapshots = 0;
    let seen = snapshotBefore;
    const started = performance.now();
    const counter = setInterval(() => {
      const index = engine.stats().lastSnapshotIndex;
      if (index !== seen) [seen, snapshots] = [index, snapshots + 1];
    }, 5);
    await heartbeats(fill + measured);
    const elapsedMs = performance.now() - started;
    clearInterval(counter);
    await engine.close();
    return { commandsPerSec: (measured / elapsedMs) * 1000, snapshots };
  });
}

async function main(): Promise<void> {
  const sample = sealEntry({ index: 1, hlc: "001764417600000-0000000000-node-1", type: command.type, payload: command.payload }, "0".repeat(64));
  const valueBytes = Buffer.byteLength(sample.hash + sample.body);
  const rows: Array<Record<string, number | string>> = [];
  const engineRates: number[] = [];
  const rawRates: number[] = [];
  const replayRates: number[] = [];
  for (let run = 0; run < runs; run++) {
    const raw = await withDir((dir) => rawBatchedLmdbPuts({ dir, entries: commandCount, batchSize: IN_FLIGHT, valueBytes }));
    const engine = await engineRun();
    rawRates.push(raw);
    engineRates.push(engine.commandsPerSec);
    replayRates.push(engine.replayPerSec);
    rows.push({ run: run + 1, rawPutsPerSec: Math.round(raw), engineCommandsPerSec: Math.round(engine.commandsPerSec), ratio: +(engine.commandsPerSec / raw).toFixed(3), flushes: engine.flushes, replayPerSec: Math.round(engine.replayPerSec) });
  }
  console.table(rows);

  // A generic state (records with keys in arbitrary order): the cold path, beside the reference package.
  const generic = taskSizedState(100_000);
  const genericHashMs = median(Array.from({ length: 3 }, () => timeMs(() => computeStateHash(generic))));
  const referenceMs = median(Array.from({ length: 3 }, () => timeMs(() => canonicalize(generic))));
  const ownMs = median(Array.from({ length: 3 }, () => timeMs(() => canonicalJSON(generic))));
  const large = await largeState(100_000);
  const steady = await idsSteadyState();

  const summary = {
    commands: commandCount,
    inFlight: IN_FLIGHT,
    medianRawLmdbPutsPerSec: Math.round(median(rawRates)),
    medianEngineCommandsPerSec: Math.round(median(engineRates)),
    medianRatio: +(median(engineRates) / median(rawRates)).toFixed(3),
    medianReplayPerSec: Math.round(median(replayRates)),
    stateBytes100kTasks: large.canonicalBytes,
    engineStateHashWarm100kTasksMs: +large.warmHashMs.toFixed(1),
    engineStateHashWarm100kTasksLongestStallMs: +large.warmHashStallMs.toFixed(1),
    computeStateHashCold100kTasksMs: +large.coldHashMs.toFixed(1),
    genericStateHash100kMs: +genericHashMs.toFixed(1),
    genericCanonicalJSON100kMs: +ownMs.toFixed(1),
    referenceCanonicalize100kMs: +referenceMs.toFixed(1),
    snapshot100kTasksLongestStallMs: +large.snapshotStallMs.toFixed(1),
    snapshot100kTasksTotalMs: +large.snapshotMs.toFixed(1),
    idsSteadyStateCommandsPerSec: Math.round(steady.commandsPerSec),
    idsSteadyStateSnapshots: steady.snapshots,
  };
  console.log(JSON.stringify(summary, null, 2));
  console.log(
    [
      `durable throughput: ${summary.medianEngineCommandsPerSec}/s = ${summary.medianRatio}× raw batched LMDB puts (${summary.medianRawLmdbPutsPerSec}/s); target ≥ 0.35×`,
      `replay on open: ${summary.medianReplayPerSec}/s; target ≥ 200,000/s`,
      `state hash of 100k tasks (${(summary.stateBytes100kTasks / 1e6).toFixed(1)} MB canonical): engine (1% changed) ${summary.engineStateHashWarm100kTasksMs} ms in paced slices (longest event-loop stall ${summary.engineStateHashWarm100kTasksLongestStallMs} ms), cold computeStateHash ${summary.computeStateHashCold100kTasksMs} ms (in one go); target < 150 ms — the engine now holds the event loop at most the stall shown`,
      `generic 100k records with unsorted keys: computeStateHash ${summary.genericStateHash100kMs} ms, canonicalJSON ${summary.genericCanonicalJSON100kMs} ms vs canonicalize package ${summary.referenceCanonicalize100kMs} ms`,
      `snapshot of 100k tasks: longest event-loop stall ${summary.snapshot100kTasksLongestStallMs} ms over ${summary.snapshot100kTasksTotalMs} ms`,
      `steady state, every command with an id (100,000 remembered), small state: ${summary.idsSteadyStateCommandsPerSec}/s, ${summary.idsSteadyStateSnapshots} snapshots in 200,000 commands`,
    ].join("\n"),
  );
  if (flags.json) await writeFile(flags.json, JSON.stringify(summary, null, 2) + "\n");
}

await main();
