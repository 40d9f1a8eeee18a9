/**
 * The worker's pure parts: what a watch event means to an agent, and the
 * command that reports a handler's outcome.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { NonRetryableError } from "../../src/client/index.ts";
import type { LogEntry } from "../../src/client/index.ts";
import { readEvent } from "../../src/client/worker/events.ts";
import { outcomeCommand, shrinkReport } from "../../src/client/worker/outcomes.ts";
import type { Report } from "../../src/client/worker/outcomes.ts";

function entry(type: string, payload: unknown): LogEntry {
  return { index: 5, hlc: "001767225600000-0000000000-node-1", type, payload: payload as LogEntry["payload"], prevHash: "0".repeat(64), hash: "1".repeat(64) };
}

describe("readEvent", () => {
  const labels = new Set(["gpu", "linux"]);
  const meaning = (type: string, payload: unknown) => readEvent(entry(type, payload), "me", labels).kind;

  it("says when work may have become claimable for this agent", () => {
    assert.equal(meaning("task.submit", { taskId: "t", kind: "k" }), "work");
    assert.equal(meaning("task.submit", { taskId: "t", kind: "k", requires: ["gpu"] }), "work");
    assert.equal(meaning("task.submit", { taskId: "t", kind: "k", requires: ["gpu", "arm"] }), "none");
    for (const type of ["task.complete", "system.tick"]) assert.equal(meaning(type, {}), "work");
    // A retry waits out its backoff; the tick that ends it wakes the workers.
    assert.equal(meaning("task.fail", { taskId: "t", token: 1, error: {} }), "none");
    assert.equal(meaning("agent.remove", { agentId: "other" }), "work");
    assert.equal(meaning("orchestrator.setPhase", { phase: "active" }), "work");
    assert.equal(meaning("orchestrator.setPhase", { phase: "halted" }), "none");
    for (const type of ["task.claim", "agent.heartbeat", "task.prune", "agent.register"]) assert.equal(meaning(type, { agentId: "other" }), "none");
  });

  it("says what happened to this agent, to the config, and to cancelled tasks", () => {
    assert.equal(meaning("agent.remove", { agentId: "me" }), "agent-removed");
    assert.equal(meaning("agent.drain", { agentId: "me" }), "agent-drained");
    assert.equal(meaning("agent.register", { agentId: "me" }), "agent-registered");
    assert.deepEqual(readEvent(entry("orchestrator.configure", { leaseTtlMs: 900, maxAttempts: 2 }), "me", labels), { kind: "config", leaseTtlMs: 900 });
    assert.deepEqual(readEvent(entry("task.cancel", { taskId: "t" }), "me", labels), { kind: "task-cancelled", taskId: "t" });
    assert.equal(meaning("task.submit", null), "work");
  });
});

describe("outcomeCommand", () => {
  const lease = { taskId: "t", kind: "k", payload: null, token: 7, expiresAt: 0, attempt: 1 };

  it("completes with the JSON of the return value (none for undefined)", () => {
    const done = outcomeCommand(lease, { ok: true, value: { at: new Date(0), n: 1 } });
    assert.equal(done.type, "task.complete");
    assert.deepEqual(done.payload, { taskId: "t", token: 7, result: { at: "1970-01-01T00:00:00.000Z", n: 1 } });
    assert.ok(typeof done.id === "string" && done.id.length === 36);
    assert.deepEqual(outcomeCommand(lease, { ok: true, value: undefined }).payload, { taskId: "t", token: 7 });
    const notJson = outcomeCommand(lease, { ok: true, value: { big: 1n } });
    assert.equal(notJson.type, "task.fail");
    assert.equal((notJson.payload as { retryable?: boolean }).retryable, false);
  });

  it("fails with the error, retryable unless NonRetryableError", () => {
    assert.deepEqual(outcomeCommand(lease, { ok: false, error: new TypeError("nope") }).payload, { taskId: "t", token: 7, error: { name: "TypeError", message: "nope" } });
    assert.deepEqual(outcomeCommand(lease, { ok: false, error: new NonRetryableError("bad", { line: 3 }) }).payload, {
      taskId: "t",
      token: 7,
      error: { name: "NonRetryableError", message: "bad", details: { line: 3 } },
      retryable: false,
    });
    assert.deepEqual(outcomeCommand(lease, { ok: false, error: "a string" }).payload, { taskId: "t", token: 7, error: { message: "a string" } });
  });

  it("cuts a refused outcome down to a short failure with a new id", () => {
    const command = outcomeCommand(lease, { ok: false, error: new Error("x".repeat(5000)) });
    const report: Report = { token: 7, taskId: "t", command, notBeforeMs: 0, retries: 0, shrunk: false };
    shrinkReport(report, "outcome refused by the server: too large");
    assert.equal(report.shrunk, true);
    assert.notEqual(report.command.id, command.id);
    const message = (report.command.payload as { error: { message: string } }).error.message;
    assert.ok(message.startsWith("outcome refused by the server: too large; original error: xxx") && message.length === 2000);
  });
});
