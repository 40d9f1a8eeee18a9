/**
 * The orchestrator on the durable engine (LMDB WAL, group commit, snapshots):
 *
 *  1. submit → claim → complete cycles per second, every command acknowledged
 *     only after its flush, with W commands in flight: one task per claim
 *     (3 commands a task), and eight per claim (agents of capacity 8: 2.1
 *     commands a task) — target ≥ 30,000 tasks/s;
 *  2. with `--soak-seconds N`: the same load with a prune every second and
 *     snapshots every 20,000 commands, sampling task count, RSS, WAL file size
 *     and snapshot bytes, to show they stay flat.
 *
 * Run: node --import tsx bench/domain-durable.bench.ts [--workers 256] [--seconds 10] [--soak-seconds 600]
 */
import { mkdtemp, readdir, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { createGenesisState, orchestratorMachine } from "../src/domain/index.ts";
import type { OrchestratorModel } from "../src/domain/index.ts";
import type { Engine } from "../src/engine/engine.ts";
import { createGenesis } from "../src/engine/genesis.ts";
import { openEngine } from "../src/engine/open.ts";

const { values: flags } = parseArgs({
  options: {
    workers: { type: "string", default: "256" },
    seconds: { type: "string", default: "10" },
    "soak-seconds": { type: "string", default: "0" },
    "batch-size-max": { type: "string" },
    "appends-in-flight": { type: "string" },
  },
});
const workers = Number(flags.workers);
const seconds = Number(flags.seconds);
const soakSeconds = Number(flags["soak-seconds"]);

interface Lease {
  taskId: string;
  token: number;
}

async function open(dir: string, snapshotEvery: number): Promise<Engine<OrchestratorModel>> {
  const clusterId = "durable-bench";
  return openEngine<OrchestratorModel>({
    dataDir: dir,
    machine: orchestratorMachine,
    genesis: createGenesis(clusterId, createGenesisState({ clusterId, config: { leaseTtlMs: 600_000, heartbeatTimeoutMs: 3_600_000 } }), "2026-11-29T12:00:00.000Z"),
    snapshotEvery,
    batchSizeMax: flags["batch-size-max"] === undefined ? undefined : Number(flags["batch-size-max"]),
    appendsInFlightMax: flags["appends-in-flight"] === undefined ? undefined : Number(flags["appends-in-flight"]),
  });
}

/**
 * One worker: its own agent of capacity `perClaim`; each round submits
 * `perClaim` tasks (concurrently), claims them with one `task.claim`, and
 * completes them (concurrently), until `deadlineMs`.
 */
async function worker(engine: Engine<OrchestratorModel>, w: number, perClaim: number, deadlineMs: number, counter: { cycles: number }): Promise<void> {
  const agentId = `agent-${w}`;
  await engine.submit({ type: "agent.register", payload: { agentId, labels: [`w${w}`], capacity: perClaim } });
  for (let n = 0; performance.now() < deadlineMs; n += perClaim) {
    // `requires` pins the tasks to this worker, so each claim finds its own tasks.
    await Promise.all(
      Array.from({ length: perClaim }, (_, k) =>
        engine.submit({ type: "task.submit", payload: { taskId: `w${w}-${n + k}`, kind: "job", payload: { n: n + k }, requires: [`w${w}`] } }),
      ),
    );
    const claim = await engine.submit({ type: "task.claim", payload: { agentId, limit: perClaim } });
    const leases = (claim.result as unknown as { leases: Lease[] }).leases;
    if (leases.length !== perClaim) throw new Error(`worker ${w}: claimed ${leases.length} of ${perClaim}`);
    await Promise.all(leases.map((lease) => engine.submit({ type: "task.complete", payload: { taskId: lease.taskId, token: lease.token, result: { ok: true } } })));
    counter.cycles += perClaim;
  }
}

async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  for (const name of await readdir(dir)) total += (await stat(path.join(dir, name))).size;
  return total;
}

const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

async function cycles(perClaim: number): Promise<number> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "swoosh-durable-"));
  try {
    const engine = await open(dir, 0);
    const counter = { cycles: 0 };
    const started = performance.now();
    await Promise.all(Array.from({ length: Math.ceil(workers / perClaim) }, (_, w) => worker(engine, w, perClaim, started + seconds * 1000, counter)));
    const elapsedS = (performance.now() - started) / 1000;
    const stats = engine.stats();
    await engine.close();
    const tasksPerSec = counter.cycles / elapsedS;
    console.log(
      `durable submit→claim→complete, ${perClaim} task(s) per claim: ${Math.round(tasksPerSec)} tasks/s (${counter.cycles} tasks, ` +
        `${Math.ceil(workers / perClaim)} agents, ${workers} commands in flight, ${elapsedS.toFixed(1)} s, ${stats.flushes} flushes, ` +
        `${(stats.durableIndex / stats.flushes).toFixed(0)} commands per flush)`,
    );
    return tasksPerSec;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function soak(): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "swoosh-soak-"));
  try {
    const engine = await open(dir, 20_000);
    const counter = { cycles: 0 };
    const started = performance.now();
    const deadline = started + soakSeconds * 1000;
    const samples: Array<Record<string, string | number>> = [];
    const sample = async (label: string): Promise<void> => {
      const { state } = await engine.readState();
      samples.push({
        at: label,
        tasks: Object.keys(state.tasks as object).length,
        cycles: counter.cycles,
        rss: mib(process.memoryUsage().rss),
        heap: mib(process.memoryUsage().heapUsed),
        wal: mib((await stat(path.join(dir, "wal", "data.mdb"))).size),
        walEntries: engine.stats().durableIndex - engine.firstLogIndex + 1,
        snapshots: mib(await dirBytes(path.join(dir, "snapshots"))),
      });
    };
    const pruner = setInterval(() => {
      engine.submit({ type: "task.prune", payload: { before: Date.now() - 2000 } }).catch((error: unknown) => console.error(error));
    }, 1000);
    const sampler = setInterval(() => void sample(`${((performance.now() - started) / 1000).toFixed(0)} s`), Math.max(10_000, (soakSeconds * 1000) / 20));
    await sample("start");
    await Promise.all(Array.from({ length: 32 }, (_, w) => worker(engine, w, 1, deadline, counter)));
    clearInterval(pruner);
    clearInterval(sampler);
    await sample("end");
    await engine.close();
    console.log(`\nsoak: ${soakSeconds} s, ${counter.cycles} tasks through, prune every second, snapshot every 20,000 commands`);
    console.table(samples);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const single = await cycles(1);
const batched = await cycles(8);
console.log(`target ≥ 30,000 tasks/s: one task per claim ${(single / 30_000).toFixed(2)}×, eight per claim ${(batched / 30_000).toFixed(2)}×`);
if (soakSeconds > 0) await soak();
