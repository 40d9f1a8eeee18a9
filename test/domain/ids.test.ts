/**
 * SPEC §3: ids are arbitrary strings. `__proto__`, `constructor`, `toString`,
 * emoji and the empty string must be ordinary keys of `agents` and `tasks`:
 * stored as own keys, never touching a prototype, round-tripping through JSON,
 * restore and the state hash. The hash is cross-checked against an
 * independent RFC 8785 implementation (npm `canonicalize`).
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";
import canonicalize from "canonicalize";
import { computeStateHash } from "../../src/core/hash.ts";
import { canonicalJSON } from "../../src/core/json.ts";
import type { JsonObject } from "../../src/core/json.ts";
import { orchestratorMachine as machine } from "../../src/domain/index.ts";
import { Driver, replay, roundTrip } from "./harness.ts";

const WEIRD = ["__proto__", "constructor", "toString", "hasOwnProperty", "valueOf", "", "🚀", "😀 space", "1", "0", "-1", "a\nb", "\u0000"];

function independentHash(state: unknown): string {
  const text = canonicalize(JSON.parse(JSON.stringify(state)));
  assert.ok(text !== undefined);
  return createHash("sha256").update(text, "utf8").digest("hex");
}

test("weird ids are ordinary keys through every command, JSON, restore and the hash", () => {
  const d = Driver.create();
  for (const id of WEIRD) d.ok("agent.register", { agentId: id, labels: [id], capacity: 2 });
  for (const id of WEIRD) d.ok("task.submit", { taskId: id, kind: "k", requires: [id], payload: { [id]: id } });
  // Each weird task depends on the previous one's sibling chain: exercise the dependents index.
  d.ok("task.submit", { taskId: "join", kind: "k", dependsOn: WEIRD });

  const state = d.state;
  assert.equal(Object.getPrototypeOf(state.tasks), null);
  assert.equal(Object.getPrototypeOf(state.agents), null);
  assert.deepEqual(Object.keys(state.agents).sort(), [...WEIRD].sort());
  assert.deepEqual(Object.keys(state.tasks).sort(), [...WEIRD, "join"].sort());
  for (const id of WEIRD) {
    assert.ok(Object.prototype.hasOwnProperty.call(state.tasks, id));
    assert.equal(state.tasks[id]?.id, id);
    assert.equal(state.agents[id]?.id, id);
  }
  // Nothing leaked onto a prototype.
  assert.equal(({} as Record<string, unknown>).kind, undefined);
  assert.equal(Object.getPrototypeOf({}), Object.prototype);

  // Claims by each agent get exactly its own task (requires = [its id]).
  for (const id of WEIRD) {
    const leases = (d.ok("task.claim", { agentId: id, limit: 2 }) as { leases: { taskId: string; token: number }[] }).leases;
    assert.deepEqual(
      leases.map((l) => l.taskId),
      [id],
    );
    d.ok("task.complete", { taskId: id, token: leases[0]?.token ?? 0, result: { [id]: true } });
  }
  assert.equal(d.task("join").status, "queued");

  const hash = d.hash();
  assert.equal(hash, independentHash(machine.state(d.model)));
  assert.equal(hash, computeStateHash(roundTrip(machine.state(d.model))));
  const text = canonicalJSON(machine.state(d.model));
  assert.ok(text.includes('"__proto__":{"attempts"'), "the __proto__ task is serialized as an ordinary member");

  const restored = machine.restore(roundTrip(machine.state(d.model)));
  assert.equal(computeStateHash(machine.state(restored)), hash);
  assert.equal(Object.getPrototypeOf((machine.state(restored) as JsonObject).tasks), null);
  const view = machine.view(d.model);
  assert.equal(computeStateHash(view), hash);
  assert.equal(Object.keys(view.tasks as JsonObject).length, WEIRD.length + 1);

  assert.equal(computeStateHash(machine.state(replay(d.genesis, d.log))), hash);

  // Removal and pruning of weird ids.
  d.ok("agent.remove", { agentId: "__proto__" });
  assert.ok(!Object.prototype.hasOwnProperty.call(d.state.agents, "__proto__"));
  d.ok("task.cancel", { taskId: "join" });
  d.advance(1);
  const pruned = d.ok("task.prune", { before: d.nowMs });
  assert.equal(pruned.pruned, WEIRD.length + 1);
  assert.deepEqual(Object.keys(d.state.tasks), []);
  assert.equal(d.hash(), independentHash(machine.state(d.model)));
});

test("a state whose dictionaries are plain objects with an own __proto__ key restores", () => {
  const d = Driver.create();
  d.ok("agent.register", { agentId: "__proto__" });
  d.ok("task.submit", { taskId: "__proto__", kind: "k" });
  const parsed = roundTrip(machine.state(d.model));
  assert.equal(Object.getPrototypeOf(parsed.tasks), Object.prototype);
  assert.ok(Object.prototype.hasOwnProperty.call(parsed.tasks, "__proto__"));
  const restored = machine.restore(parsed);
  const result = machine.apply(restored, { type: "task.claim", payload: { agentId: "__proto__" } }, d.nextContext());
  assert.ok(result.ok);
  assert.equal((result.result as { leases: { taskId: string }[] }).leases[0]?.taskId, "__proto__");
});

test("task and agent records list their keys in canonical order, so the state hash can serialize them natively", () => {
  const d = Driver.create();
  d.apply("agent.register", { agentId: "a", labels: ["linux"], capacity: 2 });
  d.apply("task.submit", { taskId: "t1", kind: "build", payload: { z: 1, a: 2 }, requires: ["linux"] });
  d.apply("task.submit", { taskId: "t2", kind: "build", dependsOn: ["t1"] });
  d.apply("task.claim", { agentId: "a", limit: 2 });
  const state = machine.state(d.model) as { tasks: Record<string, object>; agents: Record<string, object> };
  d.apply("task.fail", { taskId: "t1", token: (state.tasks["t1"] as { lease: { token: number } }).lease.token, error: "boom" });
  const records = [...Object.values(machine.state(d.model).tasks as object), ...Object.values(machine.state(d.model).agents as object)] as object[];
  for (const record of records) {
    const keys = Object.keys(record);
    assert.deepEqual(keys, [...keys].sort(), JSON.stringify(record));
    const lease = (record as { lease?: object }).lease;
    if (lease) assert.deepEqual(Object.keys(lease), ["agentId", "expiresAt", "token"]);
  }
});
