/**
 * runWorker against a real server: a DAG run by several workers; complete and
 * claim-next in one request, and no polling while idle; retries with backoff
 * up to maxAttempts; NonRetryableError; stop() leaving no lease behind;
 * ctx.signal on lease loss; a server restart survived.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { TestContext } from "node:test";
import { LeaseLostError, NonRetryableError, SwooshApiError, SwooshClient, runWorker } from "../../src/client/index.ts";
import type { Task, TaskContext, Worker, WorkerOptions } from "../../src/client/index.ts";
import { tempDir } from "../support/engine-fixtures.ts";
import { TestProxy, collectingLogger, delay, eventually, startTestServer, within } from "./helpers.ts";

/**
 * The workers of one test, stopped (quickly: the test is over) before its
 * server closes — after-hooks run in the order they were added, so call this
 * before starting the server.
 */
function fleet(t: TestContext): (options: WorkerOptions) => Worker {
  const workers: Worker[] = [];
  t.after(() => Promise.all(workers.map((worker) => worker.stop({ graceMs: 0 }))));
  return (options) => {
    const worker = runWorker({ logger: collectingLogger(options.agentId), ...options });
    workers.push(worker);
    return worker;
  };
}

/** A server with 800 ms leases, a proxy in front of it, a client of it, and a fleet of workers stopped after the test. */
async function shortLeasesBehindProxy(t: TestContext): Promise<{ startWorker: (options: WorkerOptions) => Worker; url: string; proxy: TestProxy; client: SwooshClient }> {
  const startWorker = fleet(t);
  const { url } = await startTestServer(t);
  const proxy = await TestProxy.start(t, url);
  const client = new SwooshClient({ url });
  await client.configure({ leaseTtlMs: 800, backoffBaseMs: 10 });
  return { startWorker, url, proxy, client };
}

/** One run of a handler: when it started, when and why its signal aborted, when it ended. */
interface SlowRun {
  readonly agentId: string;
  readonly startedMs: number;
  abortedMs?: number;
  reason?: unknown;
  endedMs?: number;
}

/** A handler of 4 s of work that honours its signal, and the runs it made, in order. */
function recordedSlowRuns(): { runs: SlowRun[]; slow: (payload: unknown, ctx: TaskContext) => Promise<string> } {
  const runs: SlowRun[] = [];
  const slow = async (_payload: unknown, ctx: TaskContext): Promise<string> => {
    const run: SlowRun = { agentId: ctx.agentId, startedMs: Date.now() };
    runs.push(run);
    ctx.signal.addEventListener("abort", () => {
      run.abortedMs = Date.now();
      run.reason = ctx.signal.reason;
    });
    await workUnlessAborted(ctx.signal, 4000);
    run.endedMs = Date.now();
    return ctx.agentId;
  };
  return { runs, slow };
}

/** A handler's stand-in for work that honours its signal: `ms` of it, or less once `signal` aborts. */
function workUnlessAborted(signal: AbortSignal, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

async function waitForStatus(client: SwooshClient, taskId: string, statuses: readonly Task["status"][], timeoutMs = 10_000): Promise<Task> {
  return eventually(
    async () => {
      const task = await client.getTask(taskId);
      return statuses.includes(task.status) ? task : undefined;
    },
    timeoutMs,
    `task ${taskId} to be ${statuses.join("/")}`,
  );
}

describe("runWorker", () => {
  it("runs a DAG (fetch → three transforms → report) to completion with several workers", async (t) => {
    const startWorker = fleet(t);
    const { url } = await startTestServer(t);
    const client = new SwooshClient({ url });
    const ran: string[] = [];
    const handlers = {
      fetch: async (payload: { rows: number[] }) => {
        await delay(20);
        return { rows: payload.rows };
      },
      transform: async (payload: { op: "sum" | "max" | "count" }, ctx: TaskContext) => {
        const fetched = (await ctx.client.getTask("fetch")).result as { rows: number[] };
        await delay(30);
        ran.push(ctx.taskId);
        const rows = fetched.rows;
        return { op: payload.op, value: payload.op === "sum" ? rows.reduce((a, b) => a + b, 0) : payload.op === "max" ? Math.max(...rows) : rows.length };
      },
      report: async (payload: { parts: string[] }, ctx: TaskContext) => {
        const parts = await Promise.all(payload.parts.map((id) => ctx.client.getTask(id)));
        return Object.fromEntries(parts.map((task) => [(task.result as { op: string }).op, (task.result as { value: number }).value]));
      },
    };
    const workers = ["w1", "w2", "w3"].map((agentId) => startWorker({ url, agentId, capacity: 2, handlers }));
    await Promise.all(workers.map((worker) => worker.ready));

    await client.commands([
      { type: "task.submit", payload: { taskId: "fetch", kind: "fetch", payload: { rows: [3, 1, 4, 1, 5] } } },
      { type: "task.submit", payload: { taskId: "sum", kind: "transform", payload: { op: "sum" }, dependsOn: ["fetch"] } },
      { type: "task.submit", payload: { taskId: "max", kind: "transform", payload: { op: "max" }, dependsOn: ["fetch"] } },
      { type: "task.submit", payload: { taskId: "count", kind: "transform", payload: { op: "count" }, dependsOn: ["fetch"] } },
      { type: "task.submit", payload: { taskId: "report", kind: "report", payload: { parts: ["sum", "max", "count"] }, dependsOn: ["sum", "max", "count"] } },
    ]);
    const report = await waitForStatus(client, "report", ["succeeded", "failed", "cancelled"], 15_000);
    assert.equal(report.status, "succeeded");
    assert.deepEqual(report.result, { sum: 14, max: 5, count: 5 });
    assert.deepEqual([...ran].sort(), ["count", "max", "sum"]);
    for await (const task of client.iterateTasks()) {
      assert.equal(task.status, "succeeded", task.id);
      assert.equal(task.attempts, 0, task.id);
    }
    const worked = workers.map((worker) => worker.stats().succeeded);
    assert.equal(
      worked.reduce((a, b) => a + b, 0),
      5,
    );
    await Promise.all(workers.map((worker) => worker.stop()));
    assert.deepEqual((await client.listAgents()).agents, []);
  });

  it("reports a completion and claims the next task in one request, and does not poll while idle", async (t) => {
    const startWorker = fleet(t);
    const { url } = await startTestServer(t);
    const proxy = await TestProxy.start(t, url);
    const client = new SwooshClient({ url });
    const worker = startWorker({ url: proxy.url, agentId: "solo", handlers: { job: async (payload: number) => payload * 2 } });
    await worker.ready;
    await eventually(() => (worker.stats().watching ? true : undefined), 5000, "the watch stream");
    await client.commands([
      { type: "task.submit", payload: { taskId: "a", kind: "job", payload: 1 } },
      { type: "task.submit", payload: { taskId: "b", kind: "job", payload: 2 } },
    ]);
    await waitForStatus(client, "b", ["succeeded"]);
    assert.equal((await client.getTask("a")).result, 2);
    const batches = proxy.requests.filter((request) => request.path === "/commands").map((request) => (JSON.parse(request.body) as { commands: Array<{ type: string; id?: string }> }).commands);
    assert.ok(
      batches.some((commands) => commands.map((command) => command.type).join(",") === "task.complete,task.claim"),
      `a complete-and-claim batch among ${JSON.stringify(batches.map((commands) => commands.map((command) => command.type)))}`,
    );
    assert.ok(batches.every((commands) => commands.every((command) => typeof command.id === "string" && command.id.length > 0)), "every command has an id");

    // Idle: the watch stream is up, so no claims go out (heartbeats are 10 s apart at the default lease TTL).
    await delay(200);
    const before = proxy.requests.length;
    await delay(1500);
    assert.deepEqual(proxy.requests.slice(before).map((request) => request.path), []);
    // And a new task wakes it at once.
    const submittedAtMs = Date.now();
    await client.submitTask({ taskId: "c", kind: "job", payload: 3 });
    await waitForStatus(client, "c", ["succeeded"]);
    assert.ok(Date.now() - submittedAtMs < 1500, "woken by the watch stream, not by a poll");
  });

  it("retries a throwing handler with backoff and fails the task after maxAttempts", async (t) => {
    const startWorker = fleet(t);
    const { url } = await startTestServer(t);
    const client = new SwooshClient({ url });
    await client.configure({ backoffBaseMs: 100, backoffMaxMs: 400, maxAttempts: 3 });
    const calls: Array<{ attempt: number; atMs: number }> = [];
    startWorker({
      url,
      agentId: "w",
      handlers: {
        // Not async: the first attempt throws synchronously, the others reject.
        flaky: (_payload: unknown, ctx: TaskContext) => {
          calls.push({ attempt: ctx.attempt, atMs: Date.now() });
          if (ctx.attempt === 1) throw new Error("boom 1");
          return Promise.reject(new Error(`boom ${ctx.attempt}`));
        },
      },
    });
    await client.submitTask({ taskId: "f", kind: "flaky" });
    const task = await waitForStatus(client, "f", ["failed"]);
    assert.equal(task.attempts, 3);
    assert.deepEqual(task.error, { name: "Error", message: "boom 3" });
    assert.deepEqual(
      calls.map((call) => call.attempt),
      [1, 2, 3],
    );
    // Backoff 100 ms, then 200 ms (the server's notBefore; the worker is woken by the tick that ends it).
    assert.ok((calls[1]?.atMs ?? 0) - (calls[0]?.atMs ?? 0) >= 90, `gap 1: ${(calls[1]?.atMs ?? 0) - (calls[0]?.atMs ?? 0)} ms`);
    assert.ok((calls[2]?.atMs ?? 0) - (calls[1]?.atMs ?? 0) >= 190, `gap 2: ${(calls[2]?.atMs ?? 0) - (calls[1]?.atMs ?? 0)} ms`);
  });

  it("fails the task at once when the handler throws NonRetryableError", async (t) => {
    const startWorker = fleet(t);
    const { url } = await startTestServer(t);
    const client = new SwooshClient({ url });
    let calls = 0;
    startWorker({
      url,
      agentId: "w",
      handlers: {
        parse: async () => {
          calls++;
          throw new NonRetryableError("malformed input", { line: 7 });
        },
      },
    });
    await client.submitTask({ taskId: "p", kind: "parse", maxAttempts: 5 });
    const task = await waitForStatus(client, "p", ["failed"]);
    assert.equal(task.attempts, 1);
    assert.equal(calls, 1);
    assert.deepEqual(task.error, { name: "NonRetryableError", message: "malformed input", details: { line: 7 } });
  });

  it("stop() finishes and reports in-flight work, then deregisters: no lease left behind", async (t) => {
    const startWorker = fleet(t);
    const { url } = await startTestServer(t);
    const client = new SwooshClient({ url });
    const started: string[] = [];
    const worker = startWorker({
      url,
      agentId: "w",
      capacity: 2,
      handlers: {
        slow: async (_payload: unknown, ctx: TaskContext) => {
          started.push(ctx.taskId);
          await delay(400);
          return "done";
        },
      },
    });
    await client.commands(["t1", "t2", "t3", "t4"].map((taskId) => ({ type: "task.submit" as const, payload: { taskId, kind: "slow" } })));
    await eventually(() => (worker.stats().running === 2 ? true : undefined), 5000, "two running handlers");
    await worker.stop();
    assert.deepEqual((await client.listTasks({ status: "leased" })).tasks, []);
    assert.deepEqual((await client.listAgents()).agents, []);
    const succeeded = (await client.listTasks({ status: "succeeded" })).tasks.map((task) => task.id);
    assert.deepEqual(succeeded.sort(), [...started].sort());
    assert.equal(started.length, 2);
    assert.equal((await client.listTasks({ status: "queued" })).tasks.length, 2);
    await worker.stop(); // idempotent
  });

  it("aborts ctx.signal when the lease is lost (task cancelled, agent removed), and carries on", async (t) => {
    const startWorker = fleet(t);
    const { url } = await startTestServer(t);
    const client = new SwooshClient({ url });
    const reasons = new Map<string, unknown>();
    const waitForAbort = async (_payload: unknown, ctx: TaskContext): Promise<string> => {
      await workUnlessAborted(ctx.signal, 10_000);
      reasons.set(ctx.taskId, ctx.signal.reason);
      throw ctx.signal.reason;
    };
    const worker = startWorker({ url, agentId: "w", capacity: 2, handlers: { wait: waitForAbort, quick: async () => "ok" } });
    await worker.ready;

    await client.submitTask({ taskId: "doomed", kind: "wait" });
    await eventually(() => (worker.stats().running === 1 ? true : undefined), 5000, "the handler to start");
    await client.cancel({ taskId: "doomed", reason: "changed my mind" });
    await eventually(() => (reasons.has("doomed") ? true : undefined), 5000, "the abort after cancel");
    const lost = reasons.get("doomed");
    assert.ok(lost instanceof LeaseLostError && lost.reason === "released", String(lost));
    assert.equal((await client.getTask("doomed")).status, "cancelled");

    await client.submitTask({ taskId: "orphan", kind: "wait" });
    await eventually(() => (worker.stats().running === 1 ? true : undefined), 5000, "the second handler to start");
    await client.removeAgent({ agentId: "w" });
    await eventually(() => (reasons.has("orphan") ? true : undefined), 5000, "the abort after agent.remove");
    assert.equal((reasons.get("orphan") as LeaseLostError).reason, "agent_removed");
    // The worker registers again and goes on working (the orphan is queued again and re-run: it waits again, in the other slot).
    await client.submitTask({ taskId: "after", kind: "quick", priority: 10 });
    await waitForStatus(client, "after", ["succeeded"]);
    assert.deepEqual(
      (await client.listAgents()).agents.map((agent) => agent.id),
      ["w"],
    );
    assert.ok(worker.stats().lost >= 2);
  });

  it("aborts ctx.signal when no heartbeat gets through before the lease expires, then recovers", async (t) => {
    const startWorker = fleet(t);
    const { url } = await startTestServer(t);
    const proxy = await TestProxy.start(t, url);
    const client = new SwooshClient({ url });
    await client.configure({ leaseTtlMs: 600, heartbeatTimeoutMs: 900, backoffBaseMs: 10 });
    const reasons: unknown[] = [];
    const worker = startWorker({
      url: proxy.url,
      agentId: "cut-off",
      handlers: {
        job: async (_payload: unknown, ctx: TaskContext) => {
          if (ctx.attempt > 1) return `attempt ${ctx.attempt}`;
          await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve()));
          reasons.push(ctx.signal.reason);
          throw ctx.signal.reason;
        },
      },
    });
    await worker.ready;
    await client.submitTask({ taskId: "j", kind: "job" });
    await eventually(() => (worker.stats().running === 1 ? true : undefined), 5000, "the handler to start");
    // Cut the worker's commands off (its watch stream stays up) for longer than the lease lives.
    const cutUntilMs = Date.now() + 1500;
    proxy.fail503((request) => request.path === "/commands" && Date.now() < cutUntilMs, 1_000_000);
    await eventually(() => (reasons.length === 1 ? true : undefined), 5000, "the abort");
    assert.ok(reasons[0] instanceof LeaseLostError && reasons[0].reason === "expired", String(reasons[0]));
    // The server ended the lease on its own (a tick); once the worker gets through again it runs the retry.
    const task = await waitForStatus(client, "j", ["succeeded"], 10_000);
    assert.equal(task.result, "attempt 2");
    assert.equal(task.attempts, 1);
    assert.equal((await client.listAgents()).agents[0]?.status, "ready");
  });

  it("aborts ctx.signal when the lease expires while its request hangs (another agent gets the task)", async (t) => {
    const { startWorker, url, proxy, client } = await shortLeasesBehindProxy(t);
    const { runs, slow } = recordedSlowRuns();
    const first = startWorker({ url: proxy.url, agentId: "a-hung", handlers: { slow } });
    await first.ready;
    await client.submitTask({ taskId: "s", kind: "slow" });
    await eventually(() => (runs.length === 1 ? true : undefined), 5000, "the first run to start");
    // Every later request of the first worker hangs: no heartbeat gets through, and the loop waits on the request.
    proxy.hang((request) => request.path === "/commands", 1_000_000);
    const second = startWorker({ url, agentId: "b-direct", handlers: { slow } });
    await second.ready;
    await eventually(() => (runs.length === 2 ? true : undefined), 8000, "the second agent to get the task");
    const [hung, taker] = runs as [(typeof runs)[0], (typeof runs)[0]];
    assert.ok(hung.reason instanceof LeaseLostError && hung.reason.reason === "expired", `the first run was aborted at its expiry (${String(hung.reason)})`);
    assert.ok(hung.endedMs !== undefined && hung.endedMs <= taker.startedMs + 100, `the first run ended (${hung.endedMs}) before the second started (${taker.startedMs})`);
  });

  it("gives a lease up no later than the server can: with every answer 400 ms late, the handler is aborted before another agent starts the task", async (t) => {
    const { startWorker, url, proxy, client } = await shortLeasesBehindProxy(t);
    const { runs, slow } = recordedSlowRuns();
    // Every answer to the slow worker comes 400 ms after the server applied its commands (half the lease's 800 ms).
    proxy.delayAnswers((request) => request.path === "/commands", 400, 1_000_000);
    const first = startWorker({ url: proxy.url, agentId: "a-slow", handlers: { slow } });
    await first.ready;
    await client.submitTask({ taskId: "s", kind: "slow" });
    await eventually(() => (runs.length === 1 ? true : undefined), 5000, "the first run to start");
    // Its heartbeats stop getting through: the lease expires on the server, which hands the task to the other agent.
    proxy.passThrough();
    proxy.hang((request) => request.path === "/commands", 1_000_000);
    const second = startWorker({ url, agentId: "b-direct", handlers: { slow } });
    await second.ready;
    await eventually(() => (runs.length === 2 ? true : undefined), 8000, "the second agent to get the task");
    const [slowRun, taker] = runs as [(typeof runs)[0], (typeof runs)[0]];
    assert.ok(slowRun.reason instanceof LeaseLostError && slowRun.reason.reason === "expired", `the first run was aborted as expired (${String(slowRun.reason)})`);
    assert.ok(slowRun.abortedMs !== undefined && slowRun.abortedMs <= taker.startedMs, `the first run was aborted (${slowRun.abortedMs}) before the second started (${taker.startedMs})`);
  });

  it("does not run a lease whose claim answer arrives, as a duplicate, after the lease expired", async (t) => {
    const { startWorker, url, proxy, client } = await shortLeasesBehindProxy(t);
    const runs: Array<{ agentId: string; token: number }> = [];
    const slow = async (_payload: unknown, ctx: TaskContext): Promise<void> => {
      runs.push({ agentId: ctx.agentId, token: ctx.token });
      await workUnlessAborted(ctx.signal, 3000);
    };
    const late = startWorker({ url: proxy.url, agentId: "a-late", handlers: { slow } });
    await late.ready;
    // The claim is applied, its answer lost; the resends are refused until the lease has expired and another agent runs the task.
    const claims = (request: { path: string; body: string }) => request.path === "/commands" && request.body.includes('"task.claim"');
    proxy.dropAnswers(claims);
    proxy.fail503((request) => request.path === "/commands", 1_000_000);
    await client.submitTask({ taskId: "s", kind: "slow" });
    await eventually(async () => ((await client.getTask("s")).lease?.agentId === "a-late" ? true : undefined), 5000, "the lost claim to be applied");
    const other = startWorker({ url, agentId: "b-direct", handlers: { slow } });
    await other.ready;
    await eventually(() => (runs.some((run) => run.agentId === "b-direct") ? true : undefined), 8000, "the other agent to run the task");
    proxy.passThrough();
    // The resent batch is answered now: its claim as a duplicate, with the expired lease.
    const sent = proxy.requests.length;
    await eventually(() => (proxy.requests.slice(sent).some((request) => claims(request)) ? true : undefined), 10_000, "the claim resent and answered");
    await delay(300);
    assert.deepEqual(
      runs.map((run) => run.agentId),
      ["b-direct"],
      "the late answer's lease was not run",
    );
  });

  it("stop() gives up on a server that stopped answering after shutdownNetworkTimeoutMs, a request under way included", async (t) => {
    const { startWorker, proxy } = await shortLeasesBehindProxy(t);
    const worker = startWorker({ url: proxy.url, agentId: "a-cut", handlers: {}, shutdownGraceMs: 200, shutdownNetworkTimeoutMs: 1000 });
    await worker.ready;
    // From now on nothing the worker sends is answered (its client's own timeout is 30 s).
    proxy.hang(() => true, 1_000_000);
    const started = Date.now();
    await within(worker.stop(), 6000, "stop() to give up at the network deadline");
    assert.ok(Date.now() - started < 4000, `stop() took ${Date.now() - started} ms`);
  });

  it("stop() with a network timeout past setTimeout's range deregisters as usual (its deadline does not fire at once)", async (t) => {
    const { startWorker, url, client } = await shortLeasesBehindProxy(t);
    const worker = startWorker({ url, agentId: "a-long", handlers: {}, shutdownNetworkTimeoutMs: 2 ** 31 });
    await worker.ready;
    await within(worker.stop(), 10_000, "stop()");
    assert.deepEqual((await client.listAgents()).agents.map((agent) => agent.id), [], "agent.remove went through");
  });

  it("beats often enough when the heartbeat timeout is far shorter than the lease TTL", async (t) => {
    const startWorker = fleet(t);
    const { url } = await startTestServer(t);
    const client = new SwooshClient({ url });
    // Set before the worker starts: no event tells it; its heartbeat answers must.
    await client.configure({ leaseTtlMs: 6000, heartbeatTimeoutMs: 900 });
    const aborted: unknown[] = [];
    const worker = startWorker({
      url,
      agentId: "steady",
      handlers: {
        long: async (_payload: unknown, ctx: TaskContext) => {
          ctx.signal.addEventListener("abort", () => aborted.push(ctx.signal.reason));
          await workUnlessAborted(ctx.signal, 2500);
          return "done";
        },
      },
    });
    await worker.ready;
    await client.submitTask({ taskId: "l", kind: "long" });
    const task = await waitForStatus(client, "l", ["succeeded", "failed"], 10_000);
    assert.deepEqual(aborted, [], "the handler was never aborted");
    assert.equal(task.status, "succeeded");
    assert.equal(task.attempts, 0, "the lease was never released (the agent never went offline)");
  });

  it("keeps its leases when the lease TTL is raised while they run (a heartbeat renews them under the new TTL at once)", async (t) => {
    const startWorker = fleet(t);
    const { url } = await startTestServer(t);
    const client = new SwooshClient({ url });
    await client.configure({ leaseTtlMs: 1500 });
    const aborted: unknown[] = [];
    let started = (): void => undefined;
    const running = new Promise<void>((resolve) => (started = resolve));
    const worker = startWorker({
      url,
      agentId: "raised",
      handlers: {
        long: async (_payload: unknown, ctx: TaskContext) => {
          started();
          ctx.signal.addEventListener("abort", () => aborted.push(ctx.signal.reason));
          await workUnlessAborted(ctx.signal, 4000);
          return "done";
        },
      },
    });
    await worker.ready;
    await client.submitTask({ taskId: "r", kind: "long" });
    await running;
    // 60 s leases: a heartbeat every 20 s from now on, while the lease held was granted for 1.5 s.
    await client.configure({ leaseTtlMs: 60_000 });
    const task = await waitForStatus(client, "r", ["succeeded", "failed"], 15_000);
    assert.deepEqual(aborted, [], "the handler was never aborted");
    assert.equal(task.status, "succeeded");
    assert.equal(task.attempts, 0, "the lease never expired");
  });

  it("rejects ready and stops when the token is refused from the start", async (t) => {
    const startWorker = fleet(t);
    const { url } = await startTestServer(t, { token: "right-token" });
    const worker = startWorker({ url, token: "wrong-token", agentId: "intruder", handlers: { k: () => 1 } });
    await assert.rejects(within(worker.ready, 5000, "ready to settle"), (error: unknown) => error instanceof SwooshApiError && error.code === "unauthorized");
    await within(worker.stopped, 5000, "the worker to stop");
  });

  it("keeps working across a server restart", async (t) => {
    const { dir, cleanup } = await tempDir("swoosh-client-restart-");
    const startWorker = fleet(t);
    let server = await startTestServer(t, {}, dir);
    // After the workers stop: close whichever server runs now, then remove its data dir.
    t.after(async () => {
      await server.close();
      await cleanup();
    });
    const port = server.server.port;
    const url = server.url;
    const client = new SwooshClient({ url, retry: { attemptsMax: 50, maxDelayMs: 200 } });
    const logger = collectingLogger("restart");
    const worker = startWorker({ url, agentId: "w", logger, pollIntervalMs: 200, handlers: { job: async (payload: string) => payload.toUpperCase() } });
    await client.submitTask({ taskId: "before", kind: "job", payload: "a" });
    await waitForStatus(client, "before", ["succeeded"]);

    await server.close();
    await delay(300);
    server = await startTestServer(t, { port }, dir);
    await client.submitTask({ taskId: "after", kind: "job", payload: "b" });
    const after = await waitForStatus(client, "after", ["succeeded"], 15_000);
    assert.equal(after.result, "B");
    assert.equal((await client.listAgents()).agents[0]?.status, "ready");
    await worker.stop();
    assert.deepEqual((await client.listAgents()).agents, []);
    assert.ok(!logger.lines.some((line) => line.level === "error"), JSON.stringify(logger.lines.filter((line) => line.level === "error")));
  });
});
