/**
 * A DAG pipeline run by a small fleet of workers:
 *
 *     fetch ─┬─ transform:stats ─────┐
 *            ├─ transform:histogram ─┼─ report
 *            └─ transform:outliers ──┘
 *
 * Three workers (capacity 2 each) share the work: the transforms start when
 * fetch succeeds and run side by side; the report starts when all three
 * succeeded. Each task reads its inputs from the results of the tasks it
 * depends on. Progress comes from the handlers and from GET /watch.
 *
 *     npm start              # one terminal: the server on 127.0.0.1:7777
 *     npm run example:dag    # another: this (SWOOSH_URL / SWOOSH_TOKEN to point elsewhere)
 */
import { SwooshClient, runWorker } from "swoosh/client";
import type { TaskContext } from "swoosh/client";

const url = process.env.SWOOSH_URL ?? "http://127.0.0.1:7777";
const token = process.env.SWOOSH_TOKEN;
// The server keeps its history: ids unique to this run let the example run again and again.
const run = `dag-${Date.now().toString(36)}`;
const id = (name: string): string => `${run}/${name}`;
const startedAtMs = Date.now();
const short = (agentId: string): string => agentId.slice(run.length + 1);
const say = (line: string): void => console.log(`${String(Date.now() - startedAtMs).padStart(6)} ms  ${line}`);
const sleep = (ms: number, signal?: AbortSignal): Promise<void> => new Promise((resolve, reject) => {
  const timer = setTimeout(resolve, ms);
  signal?.addEventListener("abort", () => {
    clearTimeout(timer);
    reject(signal.reason as Error);
  });
});

type Rows = { readonly rows: number[] };
type Transform = { readonly op: "stats" | "histogram" | "outliers"; readonly source: string };

/** A seeded series, so every run prints the same numbers. */
function series(count: number, seed: number): number[] {
  let state = seed;
  return Array.from({ length: count }, () => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return Math.round((state / 2 ** 31) * 1000) / 10;
  });
}

async function inputOf<T>(ctx: TaskContext, taskId: string): Promise<T> {
  return (await ctx.client.getTask(taskId)).result as T;
}

const handlers = {
  async fetch(payload: { count: number; seed: number }, ctx: TaskContext): Promise<Rows> {
    say(`${short(ctx.agentId)} ▶ fetch: downloading ${payload.count} rows`);
    await sleep(400, ctx.signal);
    return { rows: series(payload.count, payload.seed) };
  },

  async transform(payload: Transform, ctx: TaskContext): Promise<Record<string, unknown>> {
    say(`${short(ctx.agentId)} ▶ transform:${payload.op}`);
    const { rows } = await inputOf<Rows>(ctx, payload.source);
    await sleep(300 + rows.length, ctx.signal);
    const mean = rows.reduce((sum, value) => sum + value, 0) / rows.length;
    switch (payload.op) {
      case "stats":
        return { op: "stats", count: rows.length, min: Math.min(...rows), max: Math.max(...rows), mean: Math.round(mean * 10) / 10 };
      case "histogram": {
        const buckets = [0, 0, 0, 0, 0];
        for (const value of rows) buckets[Math.min(4, Math.floor(value / 20))]! += 1;
        return { op: "histogram", buckets: { "0-20": buckets[0], "20-40": buckets[1], "40-60": buckets[2], "60-80": buckets[3], "80-100": buckets[4] } };
      }
      case "outliers": {
        const deviation = Math.sqrt(rows.reduce((sum, value) => sum + (value - mean) ** 2, 0) / rows.length);
        return { op: "outliers", values: rows.filter((value) => Math.abs(value - mean) > 1.5 * deviation) };
      }
    }
  },

  async report(payload: { parts: string[] }, ctx: TaskContext): Promise<Record<string, unknown>> {
    say(`${short(ctx.agentId)} ▶ report`);
    const parts = await Promise.all(payload.parts.map((taskId) => inputOf<{ op: string }>(ctx, taskId)));
    await sleep(100, ctx.signal);
    return Object.fromEntries(parts.map(({ op, ...rest }) => [op, rest]));
  },
};

const client = new SwooshClient({ url, token });
const workers = ["worker-1", "worker-2", "worker-3"].map((agentId) =>
  runWorker({ url, token, agentId: `${run}/${agentId}`, capacity: 2, handlers, logger: { warn: (m) => say(`warning: ${m}`), error: (m) => say(`error: ${m}`) } }),
);
await Promise.all(workers.map((worker) => worker.ready));
say(`${workers.length} workers registered on ${url}`);

// Watch from the current index, so the end of the run cannot slip past us.
const { index } = await client.readyz();
const watching = new AbortController();
const finished = (async () => {
  const ours = new Set([id("fetch"), id("stats"), id("histogram"), id("outliers"), id("report")]);
  for await (const entry of client.watch({ after: index, signal: watching.signal })) {
    const taskId = (entry.payload as { taskId?: string }).taskId ?? "";
    if (!ours.has(taskId)) continue;
    const name = taskId.slice(run.length + 1);
    if (entry.type === "task.complete") say(`✓ ${name} succeeded (log index ${entry.index})`);
    if (entry.type === "task.fail") say(`✗ ${name} failed an attempt: ${JSON.stringify((entry.payload as { error?: unknown }).error)}`);
    if (entry.type === "task.complete" && taskId === id("report")) return;
  }
})();

await client.commands([
  { type: "task.submit", payload: { taskId: id("fetch"), kind: "fetch", payload: { count: 48, seed: 7 } } },
  ...(["stats", "histogram", "outliers"] as const).map((op) => ({
    type: "task.submit" as const,
    payload: { taskId: id(op), kind: "transform", payload: { op, source: id("fetch") }, dependsOn: [id("fetch")] },
  })),
  { type: "task.submit", payload: { taskId: id("report"), kind: "report", payload: { parts: [id("stats"), id("histogram"), id("outliers")] }, dependsOn: [id("stats"), id("histogram"), id("outliers")] } },
]);
say("submitted 5 tasks: fetch → stats, histogram, outliers → report");

const timeout = setTimeout(() => {
  say("no report after 60 s: is a task failing? (see GET /tasks)");
  process.exit(1);
}, 60_000);
await finished;
clearTimeout(timeout);
watching.abort();

const report = await client.getTask(id("report"));
console.log(`\nreport (${run}):\n${JSON.stringify(report.result, null, 2)}`);
await Promise.all(workers.map((worker) => worker.stop()));
const stats = workers.map((worker) => `${short(worker.agentId)}: ${worker.stats().succeeded}`).join(", ");
say(`workers stopped and deregistered (tasks done — ${stats})`);
