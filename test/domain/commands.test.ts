/**
 * Scenario tests: every command of SPEC §6 and every error code the reducer
 * returns, with the decisions documented in src/domain (halted + tick, expiry
 * at maxAttempts, defaults, bounds).
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { SwooshError } from "../../src/core/errors.ts";
import { canonicalJSON } from "../../src/core/json.ts";
import type { JsonObject } from "../../src/core/json.ts";
import {
  CAPACITY_MAX,
  CLAIM_LIMIT_MAX,
  CLAIM_PAYLOAD_CHARS_MAX,
  createGenesisState,
  DEFAULT_CONFIG,
  ID_LENGTH_MAX,
  LABELS_COUNT_MAX,
  nextDeadlineMs,
  orchestratorMachine as machine,
  backoffDelayMs,
} from "../../src/domain/index.ts";
import { Driver } from "./harness.ts";

type Lease = { taskId: string; token: number; expiresAt: number; attempt: number; kind: string; payload: unknown };

function claim(d: Driver, agentId: string, limit?: number): Lease[] {
  const payload: JsonObject = limit === undefined ? { agentId } : { agentId, limit };
  return (d.ok("task.claim", payload) as unknown as { leases: Lease[] }).leases;
}

function withAgent(config?: Parameters<typeof Driver.create>[0], capacity = 10): Driver {
  const d = Driver.create(config);
  d.ok("agent.register", { agentId: "w", capacity });
  return d;
}

describe("genesis", () => {
  test("has the SPEC §5 shape with the documented defaults", () => {
    const state = createGenesisState({ clusterId: "c1" });
    assert.deepEqual(state, {
      schemaVersion: 1,
      clusterId: "c1",
      phase: "active",
      config: { leaseTtlMs: 30_000, heartbeatTimeoutMs: 60_000, maxAttempts: 3, backoffBaseMs: 1_000, backoffMaxMs: 60_000 },
      leaseTokenSeq: 0,
      agents: {},
      tasks: {},
    });
    assert.deepEqual(state.config, { ...DEFAULT_CONFIG });
  });

  test("takes config overrides, ignores undefined ones, refuses bad ones", () => {
    const state = createGenesisState({ clusterId: "c", config: { leaseTtlMs: 5000, maxAttempts: undefined } });
    assert.equal((state.config as JsonObject).leaseTtlMs, 5000);
    assert.equal((state.config as JsonObject).maxAttempts, 3);
    assert.throws(() => createGenesisState({ clusterId: "c", config: { leaseTtlMs: 0 } }), SwooshError);
    assert.throws(() => createGenesisState({ clusterId: "c", config: { backoffBaseMs: 10, backoffMaxMs: 5 } }), /backoffBaseMs/);
    assert.throws(() => createGenesisState({ clusterId: "" }), SwooshError);
  });
});

describe("key order", () => {
  test("a fresh model and one restored from canonical JSON list the state's keys alike (config included)", () => {
    const d = Driver.create({ leaseTtlMs: 1000 });
    const restoredText = (): string => JSON.stringify(machine.state(machine.restore(JSON.parse(canonicalJSON(machine.state(d.model))) as JsonObject)));
    assert.equal(JSON.stringify(machine.state(d.model)), restoredText(), "fresh from genesis");
    // Payloads as the engine hands them over: in canonical form.
    d.ok("agent.register", { agentId: "a", capacity: 2, labels: ["x"] });
    d.ok("task.submit", { kind: "k", payload: { a: 2, z: 1 }, requires: ["x"], taskId: "t1" });
    d.ok("task.claim", { agentId: "a", limit: 1 });
    d.ok("agent.heartbeat", { agentId: "a" });
    d.ok("orchestrator.configure", { maxAttempts: 5 });
    assert.equal(JSON.stringify(machine.state(d.model)), restoredText(), "after commands");
  });
});

describe("unknown commands and malformed payloads", () => {
  test("unknown_command", () => {
    const d = Driver.create();
    const error = d.refused("task.explode", {}, "unknown_command");
    assert.deepEqual(error.details, { type: "task.explode" });
    d.refused("__proto__", {}, "unknown_command");
    d.refused("toString", {}, "unknown_command");
  });

  test("bad_request names the offending path", () => {
    const d = Driver.create();
    assert.deepEqual(d.refused("task.submit", { taskId: "t", kind: "k", surprise: 1 }, "bad_request").details, {
      path: "/surprise",
      message: "Unexpected property",
    });
    assert.equal((d.refused("task.submit", { kind: "k" }, "bad_request").details as JsonObject).path, "/taskId");
    assert.equal((d.refused("task.submit", { taskId: "t", kind: "k", priority: 1.5 }, "bad_request").details as JsonObject).path, "/priority");
    assert.equal((d.refused("agent.register", { agentId: "a", labels: ["ok", 3] }, "bad_request").details as JsonObject).path, "/labels/1");
    // Not JSON a hash could cover: a lone surrogate, found before the schema runs.
    assert.equal((d.refused("task.submit", { taskId: "t", kind: "k", payload: { x: "\ud800" } }, "bad_request").details as JsonObject).path, "/payload/x");
    d.refused("system.tick", null, "bad_request");
    d.refused("system.tick", { extra: true }, "bad_request");
    // `__proto__` as an own payload key is just an unknown field.
    d.refused("agent.heartbeat", JSON.parse('{"agentId":"a","__proto__":{"x":1}}') as JsonObject, "bad_request");
  });

  test("bounds", () => {
    const d = Driver.create();
    d.ok("agent.register", { agentId: "x".repeat(ID_LENGTH_MAX) });
    d.refused("agent.register", { agentId: "x".repeat(ID_LENGTH_MAX + 1) }, "bad_request");
    d.refused("agent.register", { agentId: "a", capacity: 0 }, "bad_request");
    d.refused("agent.register", { agentId: "a", capacity: CAPACITY_MAX + 1 }, "bad_request");
    d.refused("agent.register", { agentId: "a", labels: Array.from({ length: LABELS_COUNT_MAX + 1 }, (_, i) => `l${i}`) }, "bad_request");
    d.ok("agent.register", { agentId: "a", labels: Array.from({ length: LABELS_COUNT_MAX }, (_, i) => `l${i}`) });
    d.refused("task.claim", { agentId: "a", limit: CLAIM_LIMIT_MAX + 1 }, "bad_request");
    d.refused("task.claim", { agentId: "a", limit: 0 }, "bad_request");
    d.refused("task.submit", { taskId: "t", kind: "" }, "bad_request");
    d.refused("task.submit", { taskId: "t", kind: "k", priority: 2 ** 31 }, "bad_request");
    d.refused("task.submit", { taskId: "t", kind: "k", maxAttempts: 0 }, "bad_request");
    d.refused("task.complete", { taskId: "t", token: 0 }, "bad_request");
    d.refused("task.prune", { before: -1 }, "bad_request");
    d.refused("task.prune", { before: 1, statuses: ["queued"] }, "bad_request");
    d.refused("task.prune", { before: 1, statuses: ["failed", "failed"] }, "bad_request");
    d.refused("task.prune", { before: 1, limit: 0 }, "bad_request");
    d.refused("task.prune", { before: 1, limit: 1.5 }, "bad_request");
  });
});

describe("agent.register / heartbeat / drain / remove", () => {
  test("register creates, then updates as a full declaration", () => {
    const d = Driver.create();
    assert.deepEqual(d.ok("agent.register", { agentId: "a", labels: ["z", "gpu", "z"], capacity: 4 }), { agentId: "a", created: true });
    const first = d.state.agents.a;
    assert.deepEqual(first?.labels, ["gpu", "z"]);
    assert.equal(first?.capacity, 4);
    assert.equal(first?.status, "ready");
    d.advance(10);
    assert.deepEqual(d.ok("agent.register", { agentId: "a" }), { agentId: "a", created: false });
    const second = d.state.agents.a;
    assert.deepEqual(second?.labels, []);
    assert.equal(second?.capacity, 1);
    assert.equal(second?.registeredAt, first?.registeredAt);
    assert.ok((second?.lastSeenAt ?? "") > (first?.lastSeenAt ?? ""));
  });

  test("heartbeat extends every lease of the agent; unknown_agent", () => {
    const d = withAgent({ leaseTtlMs: 1000, heartbeatTimeoutMs: 400 });
    d.ok("task.submit", { taskId: "t1", kind: "k" });
    d.ok("task.submit", { taskId: "t2", kind: "k" });
    const leases = claim(d, "w", 2);
    assert.equal(leases[0]?.expiresAt, d.nowMs + 1000);
    d.advance(300);
    // offlineAt: when the agent goes offline without another sign of life (here before its leases would expire).
    assert.deepEqual(d.ok("agent.heartbeat", { agentId: "w" }), { agentId: "w", status: "ready", leases: 2, expiresAt: d.nowMs + 1000, offlineAt: d.nowMs + 400 });
    assert.equal(d.task("t1").lease?.expiresAt, d.nowMs + 1000);
    assert.equal(d.task("t1").lease?.token, leases[0]?.token);
    d.advance(700);
    assert.equal((d.ok("system.tick", {}) as { expired: number }).expired, 0, "the heartbeat moved the expiry");
    d.refused("agent.heartbeat", { agentId: "nobody" }, "unknown_agent");
  });

  test("drain stops claims but lets current leases finish", () => {
    const d = withAgent();
    d.ok("task.submit", { taskId: "t1", kind: "k" });
    d.ok("task.submit", { taskId: "t2", kind: "k" });
    const [lease] = claim(d, "w");
    assert.deepEqual(d.ok("agent.drain", { agentId: "w" }), { agentId: "w", status: "draining" });
    assert.deepEqual(d.refused("task.claim", { agentId: "w" }, "invalid_transition").details, { agentId: "w", status: "draining" });
    d.ok("task.complete", { taskId: "t1", token: lease?.token ?? 0 });
    assert.deepEqual(d.ok("agent.drain", { agentId: "w" }), { agentId: "w", status: "draining" });
    d.ok("agent.heartbeat", { agentId: "w" });
    assert.equal(d.state.agents.w?.status, "draining", "a heartbeat does not undo a drain");
    d.ok("agent.register", { agentId: "w" });
    assert.equal(claim(d, "w")[0]?.taskId, "t2", "re-registering makes it ready again");
    d.refused("agent.drain", { agentId: "nobody" }, "unknown_agent");
  });

  test("remove releases leases: queued again, or failed at maxAttempts with dependents cancelled", () => {
    const d = Driver.create();
    d.ok("agent.register", { agentId: "w", capacity: 2 });
    d.ok("task.submit", { taskId: "again", kind: "k", maxAttempts: 2, priority: 1 });
    d.ok("task.submit", { taskId: "last", kind: "k", maxAttempts: 1 });
    d.ok("task.submit", { taskId: "child", kind: "k", dependsOn: ["last"] });
    assert.deepEqual(
      claim(d, "w", 2).map((l) => l.taskId),
      ["again", "last"],
    );
    assert.deepEqual(d.ok("agent.remove", { agentId: "w" }), { agentId: "w", released: { requeued: 1, failed: 1, cancelled: 1 } });
    assert.equal(d.state.agents.w, undefined);
    assert.equal(d.task("again").status, "queued");
    assert.equal(d.task("again").attempts, 1);
    assert.equal(d.task("again").notBefore, undefined, "agent loss requeues without backoff");
    assert.equal((d.task("again").error as JsonObject).code, "agent_removed");
    assert.equal(d.task("last").status, "failed");
    assert.equal(d.task("last").attempts, 1);
    assert.deepEqual(d.task("child").error, { code: "dependency_failed", taskId: "last" });
    assert.equal(d.task("child").status, "cancelled");
    d.refused("agent.remove", { agentId: "w" }, "unknown_agent");
  });
});

describe("task.submit", () => {
  test("defaults, idempotent resubmission, task_exists", () => {
    const d = Driver.create();
    assert.deepEqual(d.ok("task.submit", { taskId: "t", kind: "k", requires: ["b", "a", "b"] }), { taskId: "t", created: true, status: "queued" });
    const t = d.task("t");
    assert.deepEqual(
      { payload: t.payload, priority: t.priority, dependsOn: t.dependsOn, requires: t.requires, attempts: t.attempts, maxAttempts: t.maxAttempts },
      { payload: null, priority: 0, dependsOn: [], requires: ["a", "b"], attempts: 0, maxAttempts: 3 },
    );
    const hash = d.hash();
    assert.deepEqual(d.ok("task.submit", { taskId: "t", kind: "k", requires: ["a", "b"], payload: null, priority: 0, maxAttempts: 3 }), {
      taskId: "t",
      created: false,
      status: "queued",
    });
    assert.equal(d.hash(), hash, "an idempotent resubmission changes nothing");
    d.refused("task.submit", { taskId: "t", kind: "other" }, "task_exists");
    d.refused("task.submit", { taskId: "t", kind: "k", requires: ["a", "b"], payload: { x: 1 } }, "task_exists");
    d.refused("task.submit", { taskId: "t", kind: "k", requires: ["a", "b"], maxAttempts: 1 }, "task_exists");
  });

  test("a resubmission without maxAttempts stays idempotent after the default changed", () => {
    const d = Driver.create();
    d.ok("task.submit", { taskId: "plain", kind: "k" });
    d.ok("task.submit", { taskId: "stated", kind: "k", maxAttempts: 3 });
    d.ok("orchestrator.configure", { maxAttempts: 5 });
    const hash = d.hash();
    // The producer retries the very request it sent before: the same spec, whatever the default is now.
    assert.deepEqual(d.ok("task.submit", { taskId: "plain", kind: "k" }), { taskId: "plain", created: false, status: "queued" });
    assert.deepEqual(d.ok("task.submit", { taskId: "stated", kind: "k" }), { taskId: "stated", created: false, status: "queued" });
    assert.equal(d.hash(), hash, "nothing changed");
    assert.equal(d.task("plain").maxAttempts, 3, "the task keeps the default it was made with");
    // A stated maxAttempts is still compared.
    d.refused("task.submit", { taskId: "plain", kind: "k", maxAttempts: 5 }, "task_exists");
    d.ok("task.submit", { taskId: "new", kind: "k" });
    assert.equal(d.task("new").maxAttempts, 5, "a new task takes the default of its time");
  });

  test("dependencies must exist, without duplicates", () => {
    const d = Driver.create();
    d.ok("task.submit", { taskId: "a", kind: "k" });
    assert.deepEqual(d.refused("task.submit", { taskId: "b", kind: "k", dependsOn: ["a", "x", "y"] }, "unknown_task").details, {
      path: "/dependsOn/1",
      missing: ["x", "y"],
    });
    d.refused("task.submit", { taskId: "b", kind: "k", dependsOn: ["b"] }, "unknown_task");
    assert.deepEqual(d.refused("task.submit", { taskId: "b", kind: "k", dependsOn: ["a", "a"] }, "bad_request").details, {
      path: "/dependsOn/1",
      message: "duplicate dependency",
    });
  });

  test("blocked until every dependency succeeded; a failed or cancelled one cancels at birth", () => {
    const d = withAgent({ maxAttempts: 1 });
    d.ok("task.submit", { taskId: "a", kind: "k" });
    d.ok("task.submit", { taskId: "b", kind: "k" });
    assert.equal((d.ok("task.submit", { taskId: "c", kind: "k", dependsOn: ["a", "b"] }) as JsonObject).status, "blocked");
    const leases = claim(d, "w", 2);
    assert.deepEqual((d.ok("task.complete", { taskId: "a", token: leases[0]?.token ?? 0 }) as JsonObject).unblocked, 0);
    assert.equal(d.task("c").status, "blocked");
    assert.deepEqual((d.ok("task.complete", { taskId: "b", token: leases[1]?.token ?? 0 }) as JsonObject).unblocked, 1);
    assert.equal(d.task("c").status, "queued");
    assert.equal((d.ok("task.submit", { taskId: "d", kind: "k", dependsOn: ["a"] }) as JsonObject).status, "queued");
    d.ok("task.cancel", { taskId: "d" });
    assert.equal((d.ok("task.submit", { taskId: "e", kind: "k", dependsOn: ["a", "d"] }) as JsonObject).status, "cancelled");
    assert.deepEqual(d.task("e").error, { code: "dependency_cancelled", taskId: "d" });
  });
});

describe("task.claim", () => {
  test("priority desc, then createdAt asc; requires ⊆ labels; limit and capacity", () => {
    const d = Driver.create();
    d.ok("agent.register", { agentId: "gpu", labels: ["gpu", "linux"], capacity: 3 });
    d.ok("agent.register", { agentId: "plain", capacity: 5 });
    d.ok("task.submit", { taskId: "low", kind: "k", priority: -1 });
    d.ok("task.submit", { taskId: "first", kind: "k" });
    d.ok("task.submit", { taskId: "second", kind: "k" });
    d.ok("task.submit", { taskId: "urgent-gpu", kind: "k", priority: 5, requires: ["gpu"] });
    d.ok("task.submit", { taskId: "needs-both", kind: "k", priority: 5, requires: ["gpu", "cuda"] });
    assert.deepEqual(
      claim(d, "plain", 10).map((l) => l.taskId),
      ["first", "second", "low"],
    );
    const gpu = claim(d, "gpu", 10);
    assert.deepEqual(
      gpu.map((l) => l.taskId),
      ["urgent-gpu"],
    );
    assert.deepEqual(gpu[0], { taskId: "urgent-gpu", kind: "k", payload: null, token: 4, expiresAt: d.nowMs + 30_000, attempt: 1 });
    assert.equal(d.state.leaseTokenSeq, 4);
    d.ok("task.submit", { taskId: "x1", kind: "k" });
    d.ok("task.submit", { taskId: "x2", kind: "k" });
    d.ok("task.submit", { taskId: "x3", kind: "k" });
    assert.equal(claim(d, "gpu").length, 1, "limit defaults to 1");
    assert.equal(claim(d, "gpu", 10).length, 1, "capacity 3, two held");
    assert.deepEqual(claim(d, "gpu", 10), [], "full");
  });

  test("ids break ties by UTF-16 code units, never by object key order", () => {
    // Only a crafted state can hold equal createdAt; the order must still be total.
    const base = createGenesisState({ clusterId: "c" });
    const hlc = "000000000001000-0000000001-n";
    const ids = ["10", "2", "1", "a", "", "__proto__", "😀", "\uffff"];
    const tasks: JsonObject = {};
    for (const id of ids) {
      Object.defineProperty(tasks, id, {
        value: { id, kind: "k", payload: null, priority: 0, dependsOn: [], requires: [], status: "queued", attempts: 0, maxAttempts: 3, createdAt: hlc, updatedAt: hlc },
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    const agents = { w: { id: "w", labels: [], capacity: 100, status: "ready", registeredAt: hlc, lastSeenAt: hlc } };
    const d = new Driver({ ...base, tasks, agents }, 1000);
    assert.deepEqual(
      claim(d, "w", 100).map((l) => l.taskId),
      [...ids].sort(),
    );
    // UTF-16 code units, not code points: the surrogate pair of 😀 (0xD83D…) sorts before U+FFFF.
    assert.deepEqual([...ids].sort(), ["", "1", "10", "2", "__proto__", "a", "😀", "\uffff"]);
  });

  test("needs phase active and the agent ready; unknown_agent", () => {
    const d = withAgent();
    d.refused("task.claim", { agentId: "nobody" }, "unknown_agent");
    d.ok("orchestrator.setPhase", { phase: "draining" });
    assert.deepEqual(d.refused("task.claim", { agentId: "w" }, "invalid_transition").details, { phase: "draining" });
    d.ok("orchestrator.setPhase", { phase: "active" });
    d.advance(60_000);
    d.ok("system.tick", {});
    assert.equal(d.state.agents.w?.status, "offline");
    d.refused("task.claim", { agentId: "w" }, "invalid_transition");
    d.ok("agent.heartbeat", { agentId: "w" });
    assert.equal(d.state.agents.w?.status, "ready", "a heartbeat brings an offline agent back");
    claim(d, "w");
  });

  test("a lease is never handed out twice while live, even past its expiresAt before a tick", () => {
    const d = Driver.create({ leaseTtlMs: 100 });
    d.ok("agent.register", { agentId: "a" });
    d.ok("agent.register", { agentId: "b" });
    d.ok("task.submit", { taskId: "t", kind: "k" });
    const [lease] = claim(d, "a");
    d.advance(1000);
    assert.deepEqual(claim(d, "b"), []);
    d.ok("task.complete", { taskId: "t", token: lease?.token ?? 0 });
  });
});

describe("task.complete / task.fail", () => {
  test("complete needs the live token: stale_lease otherwise; unknown_task", () => {
    const d = withAgent({ leaseTtlMs: 100 });
    d.ok("task.submit", { taskId: "t", kind: "k" });
    d.refused("task.complete", { taskId: "t", token: 1 }, "stale_lease");
    const [first] = claim(d, "w");
    d.refused("task.complete", { taskId: "t", token: (first?.token ?? 0) + 1 }, "stale_lease");
    d.advance(100);
    assert.equal((d.ok("system.tick", {}) as { expired: number }).expired, 1, "expiresAt <= now expires");
    assert.deepEqual(d.refused("task.complete", { taskId: "t", token: first?.token ?? 0 }, "stale_lease").details, {
      taskId: "t",
      token: first?.token ?? 0,
      status: "queued",
    });
    const [second] = claim(d, "w");
    assert.equal(second?.attempt, 2);
    assert.ok((second?.token ?? 0) > (first?.token ?? 0));
    assert.deepEqual(d.ok("task.complete", { taskId: "t", token: second?.token ?? 0, result: { out: [1] } }), {
      taskId: "t",
      status: "succeeded",
      unblocked: 0,
    });
    assert.deepEqual(d.task("t").result, { out: [1] });
    assert.equal(d.task("t").lease, undefined);
    d.refused("task.complete", { taskId: "t", token: second?.token ?? 0 }, "stale_lease");
    d.refused("task.complete", { taskId: "nope", token: 1 }, "unknown_task");
    d.refused("task.fail", { taskId: "nope", token: 1, error: "x" }, "unknown_task");
  });

  test("fail retries with exponential backoff capped at backoffMaxMs, then fails", () => {
    const config = { maxAttempts: 4, backoffBaseMs: 1000, backoffMaxMs: 3000 };
    const d = withAgent(config);
    d.ok("task.submit", { taskId: "t", kind: "k" });
    d.ok("task.submit", { taskId: "child", kind: "k", dependsOn: ["t"] });
    const delays: number[] = [];
    for (let attempt = 1; attempt <= 3; attempt++) {
      const [lease] = claim(d, "w");
      assert.equal(lease?.attempt, attempt);
      const r = d.ok("task.fail", { taskId: "t", token: lease?.token ?? 0, error: { why: attempt } });
      assert.equal(r.status, "queued");
      assert.equal(r.attempts, attempt);
      delays.push((r.notBefore as number) - d.nowMs);
      assert.deepEqual(claim(d, "w"), [], "not before the backoff ends");
      d.advance((r.notBefore as number) - d.nowMs - 1);
      assert.deepEqual(claim(d, "w"), [], "still 1 ms early");
      d.advance(1);
    }
    assert.deepEqual(delays, [1000, 2000, 3000]);
    assert.deepEqual(delays, [1, 2, 3].map((a) => backoffDelayMs({ ...DEFAULT_CONFIG, ...config }, a)));
    const [last] = claim(d, "w");
    assert.equal(last?.attempt, 4);
    assert.deepEqual(d.ok("task.fail", { taskId: "t", token: last?.token ?? 0, error: "final" }), {
      taskId: "t",
      status: "failed",
      attempts: 4,
      cancelled: 1,
    });
    assert.equal(d.task("t").error, "final");
    assert.equal(d.task("child").status, "cancelled");
  });

  test("fail with retryable false fails at once", () => {
    const d = withAgent();
    d.ok("task.submit", { taskId: "t", kind: "k" });
    const [lease] = claim(d, "w");
    assert.equal(d.ok("task.fail", { taskId: "t", token: lease?.token ?? 0, error: null, retryable: false }).status, "failed");
    assert.equal(d.task("t").attempts, 1);
    assert.ok(!("error" in d.task("t")) || d.task("t").error === null);
  });

  test("backoff never overflows", () => {
    assert.equal(backoffDelayMs({ ...DEFAULT_CONFIG, backoffMaxMs: 5000 }, 1000), 5000);
    assert.equal(backoffDelayMs({ ...DEFAULT_CONFIG, backoffMaxMs: 5000 }, 53), 5000);
  });
});

describe("task.cancel", () => {
  test("cancels the task and every non-terminal descendant; a leased one loses its lease", () => {
    const d = withAgent();
    d.ok("task.submit", { taskId: "a", kind: "k" });
    d.ok("task.submit", { taskId: "b", kind: "k", dependsOn: ["a"] });
    d.ok("task.submit", { taskId: "c", kind: "k", dependsOn: ["b"] });
    d.ok("task.submit", { taskId: "d", kind: "k", dependsOn: ["a", "c"] });
    d.ok("task.submit", { taskId: "other", kind: "k" });
    const [lease] = claim(d, "w");
    assert.equal(lease?.taskId, "a");
    assert.deepEqual(d.ok("task.cancel", { taskId: "a", reason: "obsolete" }), { taskId: "a", cancelled: 4, taskIds: ["a", "b", "c", "d"] });
    assert.deepEqual(d.task("a").error, { code: "cancelled", reason: "obsolete" });
    assert.equal(d.task("a").attempts, 0, "a cancel is not a failed attempt");
    assert.deepEqual(d.task("d").error, { code: "dependency_cancelled", taskId: "a" });
    assert.equal(d.task("other").status, "queued");
    d.refused("task.complete", { taskId: "a", token: lease?.token ?? 0 }, "stale_lease");
    assert.deepEqual(d.refused("task.cancel", { taskId: "a" }, "invalid_transition").details, { taskId: "a", status: "cancelled" });
    d.refused("task.cancel", { taskId: "zzz" }, "unknown_task");
    assert.equal(claim(d, "w", 5).length, 1, "the cancelled lease freed capacity");
  });
});

describe("task.prune", () => {
  test("removes old terminal tasks that no live task depends on", () => {
    const d = withAgent();
    d.ok("task.submit", { taskId: "done", kind: "k" });
    d.ok("task.submit", { taskId: "needed", kind: "k" });
    d.ok("task.submit", { taskId: "blocker", kind: "k" });
    d.ok("task.submit", { taskId: "waiting", kind: "k", dependsOn: ["needed", "blocker"] });
    d.ok("task.submit", { taskId: "gone", kind: "k" });
    const leases = claim(d, "w", 2);
    for (const l of leases) d.ok("task.complete", { taskId: l.taskId, token: l.token });
    d.ok("task.cancel", { taskId: "gone" });
    const cutoff = d.nowMs + 1;
    d.advance(10);
    assert.deepEqual(d.ok("task.prune", { before: cutoff, statuses: ["cancelled"] }), { pruned: 1, taskIds: ["gone"] });
    assert.deepEqual(d.ok("task.prune", { before: cutoff - 1 }), { pruned: 0, taskIds: [] }, "before is exclusive");
    assert.deepEqual(d.ok("task.prune", { before: cutoff }), { pruned: 1, taskIds: ["done"] }, "needed is still needed by waiting");
    assert.ok(Object.prototype.hasOwnProperty.call(d.state.tasks, "needed"));
    d.ok("task.cancel", { taskId: "blocker" });
    assert.deepEqual(d.ok("task.prune", { before: d.nowMs + 1 }), { pruned: 3, taskIds: ["blocker", "needed", "waiting"] });
    assert.deepEqual(Object.keys(d.state.tasks), []);
    assert.equal((d.ok("task.submit", { taskId: "done", kind: "other" }) as JsonObject).created, true, "a pruned id is free again");
  });
});

describe("task.claim of large payloads", () => {
  test("stops once the leased payloads reach CLAIM_PAYLOAD_CHARS_MAX (one lease at least); the rest stay first in line", () => {
    const d = withAgent();
    const big = "p".repeat(Math.floor(CLAIM_PAYLOAD_CHARS_MAX * 0.45));
    for (const id of ["a", "b", "c"]) d.ok("task.submit", { taskId: id, kind: "k", payload: { big } });
    d.ok("task.submit", { taskId: "small", kind: "k" });
    assert.deepEqual(claim(d, "w", 4).map((l) => l.taskId), ["a", "b"], "a third 45% payload would pass the budget");
    assert.deepEqual(claim(d, "w", 4).map((l) => l.taskId), ["c", "small"], "then the next in claim order");
    const huge = "q".repeat(CLAIM_PAYLOAD_CHARS_MAX + 10);
    d.ok("task.submit", { taskId: "huge", kind: "k", payload: huge });
    d.ok("task.submit", { taskId: "tiny", kind: "k" });
    assert.deepEqual(claim(d, "w", 4).map((l) => l.taskId), ["huge"], "a payload over the budget comes alone");
  });
});

describe("task.prune with a limit", () => {
  test("removes at most `limit` (succeeded first, oldest first), says whether more are left, and goes on where it stopped", () => {
    const d = withAgent();
    for (const id of ["a", "b", "c", "d"]) d.ok("task.submit", { taskId: id, kind: "k" });
    const leases = claim(d, "w", 4);
    for (const id of ["c", "a", "d"]) {
      d.advance(5);
      const lease = leases.find((l) => l.taskId === id);
      assert.ok(lease);
      d.ok("task.complete", { taskId: id, token: lease.token });
    }
    d.advance(5);
    d.ok("task.cancel", { taskId: "b" });
    d.advance(5);
    const before = d.nowMs;
    assert.deepEqual(d.ok("task.prune", { before, limit: 2 }), { more: true, pruned: 2, taskIds: ["a", "c"] }, "the two oldest succeeded");
    assert.deepEqual(d.ok("task.prune", { before, limit: 2 }), { more: false, pruned: 2, taskIds: ["b", "d"] }, "then the last succeeded, then the cancelled");
    assert.deepEqual(d.ok("task.prune", { before, limit: 2 }), { more: false, pruned: 0, taskIds: [] });
    assert.deepEqual(Object.keys(d.state.tasks), []);
  });

  test("`more` counts only what this prune would remove", () => {
    const d = withAgent();
    d.ok("task.submit", { taskId: "x", kind: "k" });
    d.ok("task.submit", { taskId: "y", kind: "k" });
    d.ok("task.cancel", { taskId: "x" });
    d.ok("task.cancel", { taskId: "y" });
    d.advance(5);
    assert.deepEqual(d.ok("task.prune", { before: d.nowMs, statuses: ["succeeded"], limit: 1 }), { more: false, pruned: 0, taskIds: [] }, "no succeeded task");
    assert.deepEqual(d.ok("task.prune", { before: d.nowMs, statuses: ["cancelled"], limit: 1 }), { more: true, pruned: 1, taskIds: ["x"] });
    assert.deepEqual(d.ok("task.prune", { before: d.nowMs, limit: 1 }), { more: false, pruned: 1, taskIds: ["y"] });
  });
});

describe("orchestrator.setPhase / configure", () => {
  test("halted refuses everything but orchestrator.*, ticks included; resuming restarts the clocks", () => {
    const d = withAgent({ leaseTtlMs: 1000, heartbeatTimeoutMs: 2000 });
    d.ok("task.submit", { taskId: "t", kind: "k" });
    const [lease] = claim(d, "w");
    assert.deepEqual(d.ok("orchestrator.setPhase", { phase: "halted" }), { phase: "halted", previous: "active" });
    d.refused("system.tick", {}, "invalid_transition");
    d.refused("agent.heartbeat", { agentId: "w" }, "invalid_transition");
    d.refused("task.submit", { taskId: "u", kind: "k" }, "invalid_transition");
    d.refused("task.complete", { taskId: "t", token: lease?.token ?? 0 }, "invalid_transition");
    d.refused("task.claim", { agentId: "w" }, "invalid_transition");
    d.ok("orchestrator.configure", { leaseTtlMs: 1500 });
    d.advance(10_000);
    d.ok("orchestrator.setPhase", { phase: "active" });
    assert.equal(d.task("t").lease?.expiresAt, d.nowMs + 1500);
    assert.equal(d.task("t").lease?.token, lease?.token);
    const tick = d.ok("system.tick", {}) as { expired: number; offline: number };
    assert.deepEqual([tick.expired, tick.offline], [0, 0]);
    d.ok("task.complete", { taskId: "t", token: lease?.token ?? 0 });
  });

  test("configure merges a partial config and validates it", () => {
    const d = Driver.create();
    assert.deepEqual(d.ok("orchestrator.configure", { maxAttempts: 5 }), { config: { ...DEFAULT_CONFIG, maxAttempts: 5 } });
    d.refused("orchestrator.configure", { backoffBaseMs: 120_000 }, "bad_request");
    assert.equal((d.refused("orchestrator.configure", { backoffMaxMs: 10 }, "bad_request").details as JsonObject).path, "/backoffMaxMs");
    d.refused("orchestrator.configure", { leaseTtlMs: 0 }, "bad_request");
    d.refused("orchestrator.configure", { leaseTtlMs: 1.5 }, "bad_request");
    d.refused("orchestrator.configure", { nonsense: 1 }, "bad_request");
    d.ok("task.submit", { taskId: "t", kind: "k" });
    assert.equal(d.task("t").maxAttempts, 5, "new tasks take the configured default");
  });
});

describe("system.tick", () => {
  test("expiry at maxAttempts fails the task; silent agents go offline and release their leases", () => {
    const d = Driver.create({ leaseTtlMs: 1000, heartbeatTimeoutMs: 5000, maxAttempts: 2 });
    d.ok("agent.register", { agentId: "a", capacity: 2 });
    d.ok("task.submit", { taskId: "t", kind: "k" });
    d.ok("task.submit", { taskId: "dep", kind: "k", dependsOn: ["t"] });
    for (let attempt = 1; attempt <= 2; attempt++) {
      const [lease] = claim(d, "a");
      assert.equal(lease?.attempt, attempt);
      d.advance(1000);
      d.ok("agent.heartbeat", { agentId: "a" }); // the agent is alive but the lease was still running out...
      d.advance(1000);
      const tick = d.ok("system.tick", {}) as { expired: number; released: JsonObject };
      assert.equal(tick.expired, 1);
    }
    assert.equal(d.task("t").status, "failed");
    assert.equal(d.task("t").attempts, 2);
    assert.deepEqual(d.task("t").error, { code: "lease_expired", agentId: "a", token: 2 });
    assert.equal(d.task("dep").status, "cancelled");

    d.ok("task.submit", { taskId: "u", kind: "k" });
    claim(d, "a");
    d.ok("agent.register", { agentId: "quiet" });
    d.advance(4000);
    d.ok("agent.heartbeat", { agentId: "a" });
    d.advance(1000);
    assert.deepEqual(d.ok("system.tick", {}), { expired: 1, offline: 1, agentIds: ["quiet"], released: { requeued: 1, failed: 0, cancelled: 0 } });
    d.advance(1);
    claim(d, "a");
    d.advance(5000);
    // The lease (attempt 2 of 2) expires first, then the silent agent goes offline with nothing left to release.
    assert.deepEqual(d.ok("system.tick", {}), { expired: 1, offline: 1, agentIds: ["a"], released: { requeued: 0, failed: 1, cancelled: 0 } });
    assert.deepEqual(d.task("u").error, { code: "lease_expired", agentId: "a", token: 4 });
  });

  test("an agent going offline releases leases that have not expired yet", () => {
    const d = Driver.create({ leaseTtlMs: 10_000, heartbeatTimeoutMs: 2000, maxAttempts: 3 });
    d.ok("agent.register", { agentId: "a", capacity: 2 });
    d.ok("task.submit", { taskId: "t1", kind: "k" });
    d.ok("task.submit", { taskId: "t2", kind: "k" });
    const leases = claim(d, "a", 2);
    d.advance(1999);
    assert.equal((d.ok("system.tick", {}) as { offline: number }).offline, 0);
    d.advance(1);
    assert.deepEqual(d.ok("system.tick", {}), { expired: 0, offline: 1, agentIds: ["a"], released: { requeued: 2, failed: 0, cancelled: 0 } });
    assert.equal(d.state.agents.a?.status, "offline");
    assert.deepEqual(d.task("t1").error, { code: "agent_offline", agentId: "a", token: leases[0]?.token ?? 0 });
    assert.equal(d.task("t1").attempts, 1);
    assert.equal(d.task("t2").status, "queued");
    d.refused("task.complete", { taskId: "t1", token: leases[0]?.token ?? 0 }, "stale_lease");
  });

  test("nextDeadlineMs reports the earliest pending expiry, silence or backoff", () => {
    const d = Driver.create({ leaseTtlMs: 1000, heartbeatTimeoutMs: 5000, backoffBaseMs: 300 });
    assert.equal(nextDeadlineMs(d.model), undefined);
    d.ok("agent.register", { agentId: "a" });
    assert.equal(nextDeadlineMs(d.model), d.nowMs + 5000);
    d.ok("task.submit", { taskId: "t", kind: "k" });
    const [lease] = claim(d, "a");
    assert.equal(nextDeadlineMs(d.model), d.nowMs + 1000);
    d.ok("task.fail", { taskId: "t", token: lease?.token ?? 0, error: "x" });
    assert.equal(nextDeadlineMs(d.model), d.nowMs + 300);
  });
});

describe("claim index memory", () => {
  test("a requires-group no agent claims from is dropped, dead entries and all, once its last queued task is cancelled", () => {
    const d = Driver.create();
    // One group per label set; nobody has these labels, so nothing ever pops their heaps.
    for (let i = 0; i < 3000; i++) d.ok("task.submit", { taskId: `t${i}`, kind: "k", requires: [`host-${i % 300}`] });
    d.ok("task.submit", { taskId: "free", kind: "k" });
    assert.equal(d.model.queue.groupCount, 301);
    for (let i = 0; i < 3000; i++) d.ok("task.cancel", { taskId: `t${i}` });
    assert.equal(d.model.queue.groupCount, 1, "only the group that still holds a queued task is left");
    // Claims still see what is queued, and a group comes back with its next task.
    d.ok("agent.register", { agentId: "a", labels: ["host-7"], capacity: 10 });
    d.ok("task.submit", { taskId: "again", kind: "k", requires: ["host-7"] });
    assert.deepEqual((claim(d, "a", 10)).map((lease) => lease.taskId).sort(), ["again", "free"]);
    assert.equal(d.model.queue.groupCount, 0);
  });
});

describe("determinism of the model", () => {
  test("a view does not change when later commands run", () => {
    const d = withAgent();
    d.ok("task.submit", { taskId: "t", kind: "k" });
    const view = machine.view(d.model);
    const before = JSON.stringify(view);
    claim(d, "w");
    d.ok("orchestrator.configure", { maxAttempts: 7 });
    d.ok("agent.register", { agentId: "second" });
    assert.equal(JSON.stringify(view), before);
    assert.notEqual(JSON.stringify(machine.state(d.model)), before);
  });

  test("restore refuses states that break the schema or the invariants", () => {
    const good = createGenesisState({ clusterId: "c" });
    const hlc = "000000000001000-0000000001-n";
    const task = (fields: JsonObject) => ({
      id: "t",
      kind: "k",
      payload: null,
      priority: 0,
      dependsOn: [],
      requires: [],
      status: "queued",
      attempts: 0,
      maxAttempts: 3,
      createdAt: hlc,
      updatedAt: hlc,
      ...fields,
    });
    assert.throws(() => machine.restore({ ...good, schemaVersion: 2 }), /schemaVersion/);
    assert.throws(() => machine.restore({ ...good, tasks: { x: task({}) } }), /has id/);
    assert.throws(() => machine.restore({ ...good, tasks: { t: task({ status: "leased" }) } }), /lease/);
    assert.throws(() => machine.restore({ ...good, tasks: { t: task({ dependsOn: ["nope"] }) } }), /missing/);
    assert.throws(() => machine.restore({ ...good, tasks: { t: task({ requires: ["b", "a"] }) } }), /sorted/);
    assert.throws(() => machine.restore({ ...good, tasks: { t: task({ attempts: 4 }) } }), /attempts/);
    assert.throws(
      () => machine.restore({ ...good, tasks: { t: task({ status: "leased", lease: { agentId: "ghost", token: 1, expiresAt: 5 } }) } }),
      /unknown agent/,
    );
  });
});
