/**
 * Crash demo: a worker is killed (SIGKILL) in the middle of a task; once its
 * lease expires, another worker takes the task over and finishes it — once.
 *
 *     npm start              # one terminal: the server on 127.0.0.1:7777
 *     npm run example:crash  # another (SWOOSH_URL / SWOOSH_TOKEN to point elsewhere)
 *
 * So that it runs in seconds, the demo shortens the lease TTL to 1.5 s with
 * `orchestrator.configure` and puts the old config back at the end. The task
 * requires the label "crash-demo" so no other worker on the server takes it.
 * The doomed worker runs in a child process (this file with --worker).
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { SwooshClient, runWorker } from "swoosh/client";
import type { TaskContext } from "swoosh/client";

const url = process.env.SWOOSH_URL ?? "http://127.0.0.1:7777";
const token = process.env.SWOOSH_TOKEN;
const LABEL = "crash-demo";
const sleep = (ms: number, signal?: AbortSignal): Promise<void> => new Promise((resolve, reject) => {
  const timer = setTimeout(resolve, ms);
  signal?.addEventListener("abort", () => {
    clearTimeout(timer);
    reject(signal.reason as Error);
  });
});

/** Renders `frames` frames, 200 ms each, saying how far it got. */
async function render(payload: { frames: number }, ctx: TaskContext): Promise<{ renderedBy: string; attempt: number; frames: number }> {
  const name = ctx.agentId.split("/").pop();
  console.log(`  [${name}] ▶ render, attempt ${ctx.attempt}, fencing token ${ctx.token}`);
  for (let frame = 1; frame <= payload.frames; frame++) {
    await sleep(200, ctx.signal);
    if (frame % 5 === 0) console.log(`  [${name}]   frame ${frame}/${payload.frames}`);
  }
  return { renderedBy: name ?? ctx.agentId, attempt: ctx.attempt, frames: payload.frames };
}

if (process.argv.includes("--worker")) {
  // The doomed worker: a separate process, so it can be killed for real.
  const agentId = process.argv[process.argv.indexOf("--worker") + 1] ?? "doomed";
  runWorker({ url, token, agentId, labels: [LABEL], handlers: { render } });
} else {
  await main();
}

async function main(): Promise<void> {
  const startedAtMs = Date.now();
  const say = (line: string): void => console.log(`${String(Date.now() - startedAtMs).padStart(6)} ms  ${line}`);
  const run = `crash-${Date.now().toString(36)}`;
  const taskId = `${run}/render`;
  const client = new SwooshClient({ url, token });

  const { state } = await client.getState();
  const previous = state.config;
  await client.configure({ leaseTtlMs: 1500, heartbeatTimeoutMs: 3000 });
  say(`lease TTL 1.5 s, heartbeat timeout 3 s (was ${previous.leaseTtlMs} ms / ${previous.heartbeatTimeoutMs} ms; put back at the end)`);

  const { index } = await client.readyz();
  const watching = new AbortController();
  const timeline = (async () => {
    for await (const entry of client.watch({ after: index, signal: watching.signal })) {
      const payload = entry.payload as { taskId?: string; agentId?: string };
      if (entry.type === "system.tick") say(`server: system.tick (log index ${entry.index}): a lease or an agent's heartbeat deadline passed`);
      if (payload.taskId === taskId && (entry.type === "task.complete" || entry.type === "task.fail")) say(`server: ${entry.type} of the task (log index ${entry.index})`);
    }
  })();

  await client.submitTask({ taskId, kind: "render", payload: { frames: 10 }, requires: [LABEL] });
  say(`submitted ${taskId} (10 frames, 2 s of work)`);

  const doomedId = `${run}/doomed`;
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), "--worker", doomedId], { stdio: ["ignore", "pipe", "inherit"], env: process.env });
  // Its output, echoed; `printed(text)` resolves once the child has printed `text`.
  let output = "";
  const waiting: Array<{ text: string; resolve: () => void }> = [];
  child.stdout.setEncoding("utf8").on("data", (text: string) => {
    process.stdout.write(text);
    output += text;
    for (const waiter of waiting) if (output.includes(waiter.text)) waiter.resolve();
  });
  const printed = (text: string): Promise<void> =>
    new Promise((resolve) => {
      if (output.includes(text)) resolve();
      else waiting.push({ text, resolve });
    });

  await printed("▶ render");
  const rescuer = runWorker({ url, token, agentId: `${run}/rescuer`, labels: [LABEL], handlers: { render } });
  await rescuer.ready;
  say("a second worker, the rescuer, is up and idle: the task is leased to the doomed one");

  await printed("frame 5/");
  child.kill("SIGKILL");
  say(`💥 SIGKILL to the doomed worker (pid ${child.pid}) halfway through — its lease lives on until it expires`);

  const done = await waitFor(client, taskId, 30_000);
  watching.abort();
  await timeline;
  say(`${taskId} ${done.status}: ${JSON.stringify(done.result)}; attempts that ended without success: ${done.attempts}`);

  const completes = (await client.readLog({ from: index + 1, limit: 1000 })).entries.filter((entry) => entry.type === "task.complete" && (entry.payload as { taskId: string }).taskId === taskId);
  say(`task.complete of it in the log: ${completes.length} — done exactly once`);

  await rescuer.stop();
  await client.removeAgent({ agentId: doomedId }).catch(() => undefined);
  await client.configure({ leaseTtlMs: previous.leaseTtlMs, heartbeatTimeoutMs: previous.heartbeatTimeoutMs });
  say("rescuer stopped, doomed agent removed, config put back");
  if (done.status !== "succeeded" || completes.length !== 1) process.exitCode = 1;
}

async function waitFor(client: SwooshClient, taskId: string, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const task = await client.getTask(taskId);
    if (task.status === "succeeded" || task.status === "failed" || task.status === "cancelled") return task;
    if (Date.now() > deadline) throw new Error(`${taskId} still ${task.status} after ${timeoutMs} ms`);
    await sleep(100);
  }
}
