/**
 * A worker SIGKILLed while its handler runs (in a child process): once the
 * lease expires, another worker gets the task and completes it, exactly once.
 * Every handler run leaves one line in a side-effects file; the lines must
 * match the attempts the server recorded (each ended lease is an attempt) plus
 * the one that succeeded, and the log must hold one task.complete.
 *
 * And a worker process with `handleSignals` told SIGTERM mid-task finishes
 * the task, reports it, deregisters and exits 0 by itself.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { SwooshClient, runWorker } from "../../src/client/index.ts";
import type { TaskContext } from "../../src/client/index.ts";
import { tempDir } from "../support/engine-fixtures.ts";
import { collectingLogger, eventually, startTestServer } from "./helpers.ts";

const fixture = fileURLToPath(new URL("./fixtures/crash-worker.ts", import.meta.url));

function sideEffects(file: string): Array<{ agentId: string; taskId: string; attempt: number; token: number }> {
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line) as { agentId: string; taskId: string; attempt: number; token: number });
}

describe("worker processes", () => {
  it("leaves its task to another worker once the lease expires; the task completes exactly once", async (t) => {
    const { dir, cleanup } = await tempDir("swoosh-crash-");
    t.after(cleanup);
    const rescuers: Array<{ stop(options?: { graceMs?: number }): Promise<void> }> = [];
    t.after(() => Promise.all(rescuers.map((worker) => worker.stop({ graceMs: 0 }))));
    const { url } = await startTestServer(t);
    const client = new SwooshClient({ url });
    await client.configure({ leaseTtlMs: 1000, heartbeatTimeoutMs: 2000 });
    const file = path.join(dir, "side-effects.jsonl");
    writeFileSync(file, "");
    await client.submitTask({ taskId: "job", kind: "work" });

    const child = spawn(process.execPath, ["--import", "tsx", fixture, url, "doomed", file], { stdio: ["ignore", "ignore", "pipe"] });
    let childStderr = "";
    child.stderr.setEncoding("utf8").on("data", (text: string) => (childStderr += text));
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on("exit", (_code, signal) => resolve(signal)));
    t.after(() => child.kill("SIGKILL"));
    await eventually(() => (sideEffects(file).length === 1 ? true : undefined), 20_000, `the doomed worker to start the task (stderr: ${childStderr})`);
    assert.equal((await client.getTask("job")).lease?.agentId, "doomed");

    // The rescuer is up before the kill: it must not get the task while the lease lives.
    const rescuer = runWorker({
      url,
      agentId: "rescuer",
      logger: collectingLogger("rescuer"),
      handlers: {
        work: async (_payload: unknown, ctx: TaskContext) => {
          appendFileSync(file, `${JSON.stringify({ agentId: "rescuer", taskId: ctx.taskId, attempt: ctx.attempt, token: ctx.token })}\n`);
          return { agentId: "rescuer", attempt: ctx.attempt };
        },
      },
    });
    rescuers.push(rescuer);
    await rescuer.ready;
    child.kill("SIGKILL");
    assert.equal(await exited, "SIGKILL");
    const killedAtMs = Date.now();

    const task = await eventually(
      async () => {
        const current = await client.getTask("job");
        return current.status === "succeeded" || current.status === "failed" ? current : undefined;
      },
      15_000,
      "the rescuer to finish the task",
    );
    assert.equal(task.status, "succeeded");
    assert.deepEqual(task.result, { agentId: "rescuer", attempt: 2 });
    assert.equal(task.attempts, 1, "the expired lease counted as one attempt");

    const runs = sideEffects(file);
    assert.deepEqual(
      runs.map((run) => [run.agentId, run.attempt]),
      [
        ["doomed", 1],
        ["rescuer", 2],
      ],
    );
    assert.equal(runs.length, task.attempts + 1, "one handler run per attempt the server recorded, plus the one that succeeded");
    assert.ok((runs[1]?.token ?? 0) > (runs[0]?.token ?? 0), "the new lease has a greater fencing token");

    const log = await client.readLog({ limit: 1000 });
    const completes = log.entries.filter((entry) => entry.type === "task.complete");
    assert.equal(completes.length, 1);
    assert.equal((completes[0]?.payload as { token: number }).token, runs[1]?.token);
    assert.ok(Date.now() - killedAtMs < 10_000);
    // The silent agent went offline; the rescuer is fine.
    const agents = await eventually(async () => {
      const { agents: all } = await client.listAgents();
      return all.find((agent) => agent.id === "doomed")?.status === "offline" ? all : undefined;
    });
    assert.equal(agents.find((agent) => agent.id === "rescuer")?.status, "ready");
  });

  it("with handleSignals, SIGTERM mid-task: finishes and reports the task, deregisters, exits 0 by itself", async (t) => {
    const { dir, cleanup } = await tempDir("swoosh-sigterm-");
    t.after(cleanup);
    const { url } = await startTestServer(t);
    const client = new SwooshClient({ url });
    const file = path.join(dir, "side-effects.jsonl");
    writeFileSync(file, "");
    await client.commands([
      { type: "task.submit", payload: { taskId: "first", kind: "work" } },
      { type: "task.submit", payload: { taskId: "second", kind: "work" } },
    ]);
    const child = spawn(process.execPath, ["--import", "tsx", fixture, url, "graceful", file, "graceful"], { stdio: ["ignore", "ignore", "pipe"] });
    let childStderr = "";
    child.stderr.setEncoding("utf8").on("data", (text: string) => (childStderr += text));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
    t.after(() => child.kill("SIGKILL"));
    await eventually(() => (sideEffects(file).length === 1 ? true : undefined), 20_000, `the worker to start a task (stderr: ${childStderr})`);
    child.kill("SIGTERM");
    const guard = setTimeout(() => child.kill("SIGKILL"), 15_000);
    const { code, signal } = await exited;
    clearTimeout(guard);
    assert.deepEqual({ code, signal }, { code: 0, signal: null }, childStderr);
    assert.equal(sideEffects(file).length, 1, "no task started after SIGTERM");
    const first = await client.getTask("first");
    assert.equal(first.status, "succeeded");
    assert.equal((await client.getTask("second")).status, "queued");
    assert.deepEqual((await client.listTasks({ status: "leased" })).tasks, []);
    assert.deepEqual((await client.listAgents()).agents, []);
  });
});
