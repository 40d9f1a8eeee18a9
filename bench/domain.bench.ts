/**
 * Benchmark of the pure orchestrator reducer (no WAL, no I/O):
 *
 *  1. claim+complete cost with 1,000 vs 100,000 queued tasks (median of
 *     batches; the index should make the ratio small, target <= 3x);
 *  2. submit -> claim -> complete cycles per second;
 *  3. memory with 1,000,000 small queued tasks: RSS, heap bytes per task, and
 *     the time to restore a model of that size (target <= 2 GB RSS);
 *  4. optional soak (`--soak-seconds N`): submit/claim/complete with a prune
 *     every few thousand cycles, reporting task count and RSS at start and end.
 *
 * Run: node --expose-gc --import tsx bench/domain.bench.ts [--soak-seconds N] [--tasks N]
 * Without --expose-gc the memory figures include garbage and are marked so.
 */
import { encodeHlc } from "../src/core/hlc.ts";
import type { JsonValue } from "../src/core/json.ts";
import type { ApplyContext } from "../src/core/state-machine.ts";
import { createGenesisState, orchestratorMachine as machine } from "../src/domain/index.ts";
import type { OrchestratorModel } from "../src/domain/index.ts";

const gc = (globalThis as { gc?: () => void }).gc;

function flag(name: string, fallback: number): number {
  const at = process.argv.indexOf(name);
  if (at < 0) return fallback;
  const value = Number(process.argv[at + 1]);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} needs a non-negative number`);
  return value;
}

/** A model plus a simulated clock: 1 ms per command keeps HLCs strictly increasing. */
class Bench {
  readonly model: OrchestratorModel;
  private wallMs = 1_700_000_000_000;
  private counter = 0;
  private index = 0;

  constructor(config?: Parameters<typeof createGenesisState>[0]["config"]) {
    this.model = machine.restore(createGenesisState({ clusterId: "bench", config }));
  }

  ctx(advanceMs = 0): ApplyContext {
    if (advanceMs > 0) {
      this.wallMs += advanceMs;
      this.counter = 0;
    } else {
      this.counter++;
    }
    this.index++;
    return { hlc: encodeHlc({ wallMs: this.wallMs, counter: this.counter, nodeId: "bench" }), index: this.index, nowMs: this.wallMs };
  }

  get nowMs(): number {
    return this.wallMs;
  }

  run(type: string, payload: JsonValue, ctx: ApplyContext = this.ctx()): JsonValue {
    const outcome = machine.apply(this.model, { type, payload }, ctx);
    if (!outcome.ok) throw new Error(`${type} refused: ${JSON.stringify(outcome.error)}`);
    return outcome.result;
  }

  submit(taskId: string, priority: number): void {
    this.run("task.submit", { taskId, kind: "bench", priority, payload: { n: priority } });
  }

  claimOne(agentId: string): { taskId: string; token: number } {
    const lease = (this.run("task.claim", { agentId }) as { leases: { taskId: string; token: number }[] }).leases[0];
    if (lease === undefined) throw new Error("nothing to claim");
    return lease;
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(0)} MiB`;
}

function settle(): void {
  gc?.();
  gc?.();
}

/** Median µs of one claim+complete with `queued` tasks waiting (kept constant by resubmitting). */
function claimCompleteMicros(queued: number, batches = 60, batchSize = 200): number {
  const b = new Bench();
  b.run("agent.register", { agentId: "w", capacity: 1 });
  for (let i = 0; i < queued; i++) b.submit(`q${i}`, i % 13);
  let next = queued;
  const samples: number[] = [];
  for (let batch = 0; batch < batches; batch++) {
    let elapsedNs = 0n;
    for (let i = 0; i < batchSize; i++) {
      const claimCtx = b.ctx(1);
      const completeCtx = b.ctx();
      const start = process.hrtime.bigint();
      const lease = (machine.apply(b.model, { type: "task.claim", payload: { agentId: "w" } }, claimCtx) as unknown as { result: { leases: { taskId: string; token: number }[] } }).result
        .leases[0];
      if (lease === undefined) throw new Error("nothing to claim");
      machine.apply(b.model, { type: "task.complete", payload: { taskId: lease.taskId, token: lease.token } }, completeCtx);
      elapsedNs += process.hrtime.bigint() - start;
      b.submit(`q${next++}`, next % 13);
    }
    samples.push(Number(elapsedNs) / 1000 / batchSize);
  }
  return median(samples.slice(Math.floor(batches / 6))); // drop warm-up batches
}

/** Full submit -> claim -> complete cycles per second over `seconds`, pruning as it goes. */
function cyclesPerSecond(seconds: number): number {
  const b = new Bench();
  b.run("agent.register", { agentId: "w", capacity: 1 });
  let cycles = 0;
  const start = performance.now();
  const deadline = start + seconds * 1000;
  while (performance.now() < deadline) {
    for (let i = 0; i < 1000; i++) {
      b.run("task.submit", { taskId: `c${cycles}`, kind: "bench" }, b.ctx(1));
      const lease = b.claimOne("w");
      b.run("task.complete", { taskId: lease.taskId, token: lease.token });
      cycles++;
    }
    b.run("task.prune", { before: b.nowMs });
  }
  return cycles / ((performance.now() - start) / 1000);
}

interface MemoryFigures {
  tasks: number;
  rssBytes: number;
  heapBytesPerTask: number;
  submitSeconds: number;
  restoreSeconds: number;
}

function memoryWithTasks(tasks: number): MemoryFigures {
  settle();
  const heapBefore = process.memoryUsage().heapUsed;
  const b = new Bench();
  const start = performance.now();
  for (let i = 0; i < tasks; i++) {
    b.run("task.submit", { taskId: `task-${i}`, kind: "bench", priority: i % 5 }, i % 1000 === 0 ? b.ctx(1) : b.ctx());
  }
  const submitSeconds = (performance.now() - start) / 1000;
  settle();
  const usage = process.memoryUsage();
  const figures: MemoryFigures = {
    tasks,
    rssBytes: usage.rss,
    heapBytesPerTask: (usage.heapUsed - heapBefore) / tasks,
    submitSeconds,
    restoreSeconds: 0,
  };
  const restoreStart = performance.now();
  const restored = machine.restore(machine.state(b.model));
  figures.restoreSeconds = (performance.now() - restoreStart) / 1000;
  // Keep both alive until measured; the restored model answers like the original.
  if (machine.state(restored).leaseTokenSeq !== machine.state(b.model).leaseTokenSeq) throw new Error("restore diverged");
  return figures;
}

function soak(seconds: number): void {
  const b = new Bench();
  b.run("agent.register", { agentId: "w", capacity: 8 });
  const taskCount = () => Object.keys(machine.state(b.model).tasks as object).length;
  settle();
  const startRss = process.memoryUsage().rss;
  const startTasks = taskCount();
  let cycles = 0;
  const start = performance.now();
  const deadline = start + seconds * 1000;
  while (performance.now() < deadline) {
    for (let i = 0; i < 5000; i++) {
      b.run("task.submit", { taskId: `s${cycles}`, kind: "soak", payload: { i } }, b.ctx(1));
      const lease = b.claimOne("w");
      b.run("task.complete", { taskId: lease.taskId, token: lease.token, result: { ok: true } });
      cycles++;
    }
    // Keep roughly the last second of simulated history.
    b.run("task.prune", { before: b.nowMs - 1000 });
  }
  settle();
  const elapsed = (performance.now() - start) / 1000;
  console.log("\nsoak");
  console.table([
    { when: "start", tasks: startTasks, rss: mib(startRss) },
    { when: `end (${elapsed.toFixed(0)} s, ${cycles} cycles, ${(cycles / elapsed).toFixed(0)}/s)`, tasks: taskCount(), rss: mib(process.memoryUsage().rss) },
  ]);
}

function main(): void {
  const tasks = flag("--tasks", 1_000_000);
  const soakSeconds = flag("--soak-seconds", 0);
  if (gc === undefined) console.warn("run with node --expose-gc for exact memory figures");

  const small = claimCompleteMicros(1_000);
  const large = claimCompleteMicros(100_000);
  const cycles = cyclesPerSecond(3);
  const memory = memoryWithTasks(tasks);

  console.log("domain reducer (in memory, no WAL)");
  console.table([
    { measure: "claim+complete, 1,000 queued (median)", value: `${small.toFixed(2)} µs` },
    { measure: "claim+complete, 100,000 queued (median)", value: `${large.toFixed(2)} µs` },
    { measure: "ratio 100k / 1k (target <= 3)", value: (large / small).toFixed(2) },
    { measure: "submit->claim->complete cycles/s", value: cycles.toFixed(0) },
    { measure: `submit ${memory.tasks.toLocaleString("en")} tasks`, value: `${memory.submitSeconds.toFixed(1)} s` },
    { measure: `RSS with ${memory.tasks.toLocaleString("en")} tasks (target <= 2 GB)`, value: mib(memory.rssBytes) + (gc ? "" : " (no gc)") },
    { measure: "heap bytes per task", value: memory.heapBytesPerTask.toFixed(0) },
    { measure: `restore ${memory.tasks.toLocaleString("en")} tasks`, value: `${memory.restoreSeconds.toFixed(1)} s` },
  ]);
  if (soakSeconds > 0) soak(soakSeconds);
}

main();
