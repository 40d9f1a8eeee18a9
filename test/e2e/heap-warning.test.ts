/**
 * `swoosh serve` warns before the state outgrows the heap: run under a 64 MiB
 * old generation and filled with tasks, it logs the warning (with the figures
 * and the way out) while it still serves, and `/metrics` publishes the limit.
 * Without the warning the first sign is the process dying out of memory.
 * Then reads of the whole state (GET /state, ?at=) are answered or refused
 * with 503 `unavailable` and Retry-After, and the server lives on: one such
 * read used to take it down.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { tempDir } from "../support/engine-fixtures.ts";
import { http, killAll, startServe, stopServe } from "./processes.ts";

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  killAll();
  for (const cleanup of cleanups) await cleanup();
});

const HEAP_MIB = 64;
const TASKS_PER_BATCH = 250;
/** Bound on the fill: ~30 MiB more than the heap can hold. */
const BATCHES_MAX = 400;

describe("swoosh serve: a heap warning before out-of-memory, and reads that never take the server down", () => {
  it("logs the warning while it still serves, /metrics has the limit, and whole-state reads are answered or refused", { timeout: 120_000 }, async () => {
    const { dir, cleanup } = await tempDir("swoosh-heap-");
    cleanups.push(cleanup);
    const server = await startServe(["--data-dir", dir], { env: { NODE_OPTIONS: `--max-old-space-size=${HEAP_MIB}` } });
    const metrics = await http(server.url, "GET", "/metrics");
    assert.match(String(metrics.body), new RegExp(`^swoosh_heap_limit_bytes ${HEAP_MIB * 1024 * 1024}$`, "m"));

    let batches = 0;
    while (!/live heap/.test(server.stderr()) && batches < BATCHES_MAX) {
      const commands = Array.from({ length: TASKS_PER_BATCH }, (_, i) => ({ type: "task.submit", payload: { taskId: `t${batches}-${i}`, kind: "fill", payload: { blob: "x".repeat(200) } } }));
      const answer = await http(server.url, "POST", "/commands", { body: { commands } });
      assert.equal(answer.status, 200, `batch ${batches}: ${JSON.stringify(answer.body).slice(0, 200)}; stderr:\n${server.stderr().slice(-2000)}`);
      batches += 1;
    }
    const line = server.stderr().split("\n").find((one) => one.includes("live heap"));
    assert.ok(line, `no warning after ${batches} batches of ${TASKS_PER_BATCH} tasks; stderr:\n${server.stderr().slice(-2000)}`);
    const logged = JSON.parse(line) as { level: number; msg: string; heapUsedBytes: number; heapLimitBytes: number };
    assert.equal(logged.level, 40, "at warn");
    assert.equal(logged.heapLimitBytes, HEAP_MIB * 1024 * 1024);
    assert.ok(logged.heapUsedBytes >= 0.7 * logged.heapLimitBytes, line);
    assert.match(logged.msg, /--max-old-space-size/);
    assert.match(logged.msg, /task\.prune/);
    assert.equal((await http(server.url, "GET", "/healthz")).status, 200, "still serving after the warning");

    // Reads of the whole state now: each needs about the state's size again.
    // Answered, or refused as unavailable (Retry-After) — never the process dying.
    const index = ((await http(server.url, "GET", "/readyz")).body as { index: number }).index;
    for (const path of ["/state", `/state?at=${index - 1}`, "/state"]) {
      const read = await http(server.url, "GET", path);
      if (read.status !== 200) {
        assert.equal(read.status, 503, `${path}: ${JSON.stringify(read.body).slice(0, 300)}`);
        assert.equal((read.body as { error: { code: string } }).error.code, "unavailable");
        assert.match((read.body as { error: { message: string } }).error.message, /not enough memory/);
        assert.equal(read.headers.get("retry-after"), "5");
      }
      assert.equal((await http(server.url, "GET", "/healthz")).status, 200, `alive after GET ${path}; stderr:\n${server.stderr().slice(-1500)}`);
    }
    const write = await http(server.url, "POST", "/command", { body: { type: "task.submit", payload: { taskId: "after-reads", kind: "fill" } } });
    assert.equal(write.status, 200, JSON.stringify(write.body));
    assert.doesNotMatch(server.stderr(), /FATAL ERROR|"level":50/, "no crash, no unexpected error");
    assert.equal((await stopServe(server)).code, 0);
  });
});
