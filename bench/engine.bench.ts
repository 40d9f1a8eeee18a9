/**
 * `npm run bench:engine`: the engine's figures, each beside its ceiling in the
 * same run (machines here are shared and noisy, so ratios are what to quote).
 *
 *  1. durable in-process throughput with 256 commands in flight vs raw batched
 *     LMDB puts of the same records (target ≥ 0.35×);
 *  2. replay on open (target ≥ 200,000 commands/s);
 *  3. computeStateHash of 100,000 task-sized entries (target < 150 ms), beside
 *     the reference `canonicalize` package;
 *  4. the longest event-loop stall while a snapshot of a 100,000-task state is written.
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

/** Longest gap a 1 ms interval timer sees while `work` runs. */
async function longestStallMs(work: () => Promise<void>): Promise<number> {
  let last = performance.now();
  let worst = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last);
    last = now;
  }, 1);
  try {
    await work();
    return worst;
  } finally {
    clearInterval(timer);
  }
}

async function snapshotStall(taskCount: number): Promise<{ stallMs: number; snapshotMs: number }> {
  return withDir(async (dir) => {
    const clusterId = "stall";
    const engine = await openEngine<OrchestratorModel>({
      dataDir: dir,
      machine: orchestratorMachine,
      genesis: createGenesis(clusterId, createGenesisState({ clusterId }), "2026-11-29T12:00:00.000Z"),
      snapshotEvery: 0,
    });
    for (let i = 0; i < taskCount; i += 1000) {
      await Promise.all(
        Array.from({ length: Math.min(1000, taskCount - i) }, (_, j) =>
          engine.submit({
            type: "task.submit",
            payload: { taskId: `task-${i + j}`, kind: "build", payload: { repo: "github.com/example/project", shard: (i + j) % 16 }, requires: ["linux"] },
          }),
        ),
      );
    }
    const started = performance.now();
    const stallMs = await longestStallMs(() => engine.snapshot());
    const snapshotMs = performance.now() - started;
    await engine.close();
    return { stallMs, snapshotMs };
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

  const state = taskSizedState(100_000);
  const hashMs = median(Array.from({ length: 5 }, () => timeMs(() => computeStateHash(state))));
  const referenceMs = median(Array.from({ length: 5 }, () => timeMs(() => canonicalize(state))));
  const ownMs = median(Array.from({ length: 5 }, () => timeMs(() => canonicalJSON(state))));
  const stall = await snapshotStall(100_000);

  const summary = {
    commands: commandCount,
    inFlight: IN_FLIGHT,
    medianRawLmdbPutsPerSec: Math.round(median(rawRates)),
    medianEngineCommandsPerSec: Math.round(median(engineRates)),
    medianRatio: +(median(engineRates) / median(rawRates)).toFixed(3),
    medianReplayPerSec: Math.round(median(replayRates)),
    stateHash100kTasksMs: +hashMs.toFixed(1),
    canonicalJSON100kTasksMs: +ownMs.toFixed(1),
    referenceCanonicalize100kTasksMs: +referenceMs.toFixed(1),
    snapshot100kTasksLongestStallMs: +stall.stallMs.toFixed(1),
    snapshot100kTasksTotalMs: +stall.snapshotMs.toFixed(1),
  };
  console.log(JSON.stringify(summary, null, 2));
  console.log(
    [
      `durable throughput: ${summary.medianEngineCommandsPerSec}/s = ${summary.medianRatio}× raw batched LMDB puts (${summary.medianRawLmdbPutsPerSec}/s); target ≥ 0.35×`,
      `replay on open: ${summary.medianReplayPerSec}/s; target ≥ 200,000/s`,
      `computeStateHash(100k tasks): ${summary.stateHash100kTasksMs} ms (canonicalize package: ${summary.referenceCanonicalize100kTasksMs} ms); target < 150 ms`,
      `snapshot of 100k tasks: longest event-loop stall ${summary.snapshot100kTasksLongestStallMs} ms over ${summary.snapshot100kTasksTotalMs} ms`,
    ].join("\n"),
  );
  if (flags.json) await writeFile(flags.json, JSON.stringify(summary, null, 2) + "\n");
}

await main();
