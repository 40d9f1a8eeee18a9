/**
 * Test driver for the orchestrator reducer: stamps commands with strictly
 * increasing HLCs under a controllable wall clock, keeps the log of accepted
 * commands, and offers the naive, scan-based reference answers the property
 * tests hold the indexed reducer to.
 */
import assert from "node:assert/strict";
import { computeStateHash } from "../../src/core/hash.ts";
import { encodeHlc, hlcWallMs } from "../../src/core/hlc.ts";
import type { JsonObject, JsonValue } from "../../src/core/json.ts";
import type { ApplyContext, ApplyOutcome } from "../../src/core/state-machine.ts";
import { createGenesisState, orchestratorMachine as machine } from "../../src/domain/index.ts";
import type { OrchestratorConfig, OrchestratorModel, OrchestratorState, Task, TerminalStatus } from "../../src/domain/index.ts";

export interface LoggedCommand {
  readonly type: string;
  readonly payload: JsonValue;
  readonly ctx: ApplyContext;
}

export class Driver {
  readonly model: OrchestratorModel;
  /** Accepted commands, as the engine would log them. */
  readonly log: LoggedCommand[] = [];
  nowMs: number;
  private counter = 0;
  private index = 0;

  constructor(
    readonly genesis: JsonObject,
    startMs = 1_000_000,
  ) {
    this.model = machine.restore(genesis);
    this.nowMs = startMs;
  }

  static create(config?: Partial<OrchestratorConfig>, startMs?: number): Driver {
    return new Driver(createGenesisState({ clusterId: "test", config }), startMs);
  }

  /** The next context: same wall ms bumps the HLC counter, as a real HLC does. */
  nextContext(): ApplyContext {
    this.counter++;
    return { hlc: encodeHlc({ wallMs: this.nowMs, counter: this.counter, nodeId: "node-1" }), index: this.index + 1, nowMs: this.nowMs };
  }

  advance(ms: number): void {
    this.nowMs += ms;
  }

  apply(type: string, payload: JsonValue): ApplyOutcome {
    const ctx = this.nextContext();
    const outcome = machine.apply(this.model, { type, payload }, ctx);
    if (outcome.ok) {
      this.index++;
      this.log.push({ type, payload, ctx });
    }
    return outcome;
  }

  /** Applies and asserts success; returns the result. */
  ok(type: string, payload: JsonValue): JsonObject {
    const outcome = this.apply(type, payload);
    if (!outcome.ok) assert.fail(`${type} ${JSON.stringify(payload)} refused: ${JSON.stringify(outcome.error)}`);
    return outcome.result as JsonObject;
  }

  /** Applies, asserts refusal with `code`, and that the state hash did not move. */
  refused(type: string, payload: JsonValue, code: string): JsonObject {
    const before = this.hash();
    const outcome = this.apply(type, payload);
    if (outcome.ok) assert.fail(`${type} ${JSON.stringify(payload)} accepted, expected ${code}: ${JSON.stringify(outcome.result)}`);
    assert.equal(outcome.error.code, code, JSON.stringify(outcome.error));
    assert.equal(this.hash(), before, "a refused command changed the state");
    return outcome.error as unknown as JsonObject;
  }

  get state(): OrchestratorState {
    return machine.state(this.model) as unknown as OrchestratorState;
  }

  task(id: string): Task {
    const task = Object.prototype.hasOwnProperty.call(this.state.tasks, id) ? this.state.tasks[id] : undefined;
    assert.ok(task !== undefined, `task ${JSON.stringify(id)} missing`);
    return task;
  }

  hash(): string {
    return computeStateHash(machine.state(this.model));
  }
}

/** JSON round trip, as a snapshot file does. */
export function roundTrip(state: JsonObject): JsonObject {
  return JSON.parse(JSON.stringify(state)) as JsonObject;
}

/** Replays `log` from `genesis`, asserting every command is accepted again with the same result. */
export function replay(genesis: JsonObject, log: readonly LoggedCommand[], expectedResults?: readonly JsonValue[]): OrchestratorModel {
  const model = machine.restore(genesis);
  log.forEach((entry, i) => {
    const outcome = machine.apply(model, { type: entry.type, payload: entry.payload }, entry.ctx);
    assert.ok(outcome.ok, `replay of ${entry.type} at ${i} refused: ${JSON.stringify(outcome)}`);
    if (expectedResults) assert.deepEqual(outcome.result, expectedResults[i]);
  });
  return model;
}

// ---------------------------------------------------------------- naive reference answers (scans)

function entries<T>(dict: Record<string, T>): T[] {
  return Object.keys(dict).map((k) => dict[k] as T);
}

/** The tasks a claim must return, in order: a scan and a sort of every eligible queued task. */
export function referenceClaim(state: OrchestratorState, agentId: string, limit: number, nowMs: number): string[] {
  const agent = state.agents[agentId];
  if (agent === undefined) return [];
  let held = 0;
  for (const t of entries(state.tasks)) if (t.status === "leased" && t.lease?.agentId === agentId) held++;
  const n = Math.min(limit, agent.capacity - held);
  if (n <= 0) return [];
  const labels = new Set(agent.labels);
  const eligible = entries(state.tasks).filter(
    (t) => t.status === "queued" && (t.notBefore === undefined || t.notBefore <= nowMs) && t.requires.every((r) => labels.has(r)),
  );
  eligible.sort((a, b) => {
    if (a.priority !== b.priority) return b.priority - a.priority;
    if (a.createdAt !== b.createdAt) return a.createdAt < b.createdAt ? -1 : 1;
    return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
  });
  return eligible.slice(0, n).map((t) => t.id);
}

/** Leases a tick must expire and agents it must take offline. */
export function referenceTick(state: OrchestratorState, nowMs: number): { expired: number; offline: string[] } {
  const expired = entries(state.tasks).filter((t) => t.status === "leased" && (t.lease?.expiresAt ?? Infinity) <= nowMs).length;
  const offline = entries(state.agents)
    .filter((a) => a.status !== "offline" && hlcWallMs(a.lastSeenAt) + state.config.heartbeatTimeoutMs <= nowMs)
    .map((a) => a.id)
    .sort();
  return { expired, offline };
}

const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);

const PRUNE_ORDER = ["succeeded", "failed", "cancelled"];

/**
 * Ids a prune must remove (sorted), and whether a `limit` leaves some: with
 * one, the first `limit` in status order (succeeded, failed, cancelled),
 * oldest `updatedAt` first, then id.
 */
export function referencePrune(state: OrchestratorState, beforeMs: number, statuses?: readonly TerminalStatus[], limit?: number): { ids: string[]; more: boolean } {
  const wanted = new Set<string>(statuses ?? PRUNE_ORDER);
  const needed = new Set<string>();
  for (const t of entries(state.tasks)) if (!TERMINAL.has(t.status)) for (const d of t.dependsOn) needed.add(d);
  const matching = entries(state.tasks)
    .filter((t) => wanted.has(t.status) && hlcWallMs(t.updatedAt) < beforeMs && !needed.has(t.id))
    .sort((a, b) => PRUNE_ORDER.indexOf(a.status) - PRUNE_ORDER.indexOf(b.status) || (a.updatedAt < b.updatedAt ? -1 : a.updatedAt > b.updatedAt ? 1 : a.id < b.id ? -1 : 1));
  const removed = limit === undefined ? matching : matching.slice(0, limit);
  return { ids: removed.map((t) => t.id).sort(), more: removed.length < matching.length };
}

/**
 * The invariants of SPEC §5/§6 that hold after every command, checked by scan.
 * `heldBefore` maps agent id → leases held before the command (capacity may
 * have been lowered by a re-register while leases were held; then the count
 * must at least not grow).
 */
export function checkInvariants(state: OrchestratorState, heldBefore: ReadonlyMap<string, number>): Map<string, number> {
  const tasks = state.tasks;
  const held = new Map<string, number>();
  const tokens = new Set<number>();
  for (const t of entries(tasks)) {
    assert.ok(t.attempts <= t.maxAttempts, `task ${JSON.stringify(t.id)} attempts ${t.attempts} > maxAttempts ${t.maxAttempts}`);
    assert.equal(t.status === "leased", t.lease !== undefined, `task ${JSON.stringify(t.id)}: lease iff leased`);
    if (t.lease !== undefined) {
      assert.ok(state.agents[t.lease.agentId] !== undefined, `task ${JSON.stringify(t.id)} leased to a missing agent`);
      assert.ok(Object.prototype.hasOwnProperty.call(state.agents, t.lease.agentId));
      assert.notEqual(state.agents[t.lease.agentId]?.status, "offline", "offline agent holds a lease");
      assert.ok(t.lease.token <= state.leaseTokenSeq, "live token beyond leaseTokenSeq");
      assert.ok(!tokens.has(t.lease.token), "two live leases share a token");
      tokens.add(t.lease.token);
      held.set(t.lease.agentId, (held.get(t.lease.agentId) ?? 0) + 1);
    }
    if (TERMINAL.has(t.status)) continue;
    let pending = 0;
    for (const d of t.dependsOn) {
      assert.ok(Object.prototype.hasOwnProperty.call(tasks, d), `live task ${JSON.stringify(t.id)} depends on missing ${JSON.stringify(d)}`);
      const dep = tasks[d] as Task;
      assert.ok(dep.status !== "failed" && dep.status !== "cancelled", `task ${JSON.stringify(t.id)} is ${t.status} with a ${dep.status} dependency`);
      if (dep.status !== "succeeded") pending++;
    }
    if (t.status === "blocked") assert.ok(pending > 0, `task ${JSON.stringify(t.id)} blocked although every dependency succeeded`);
    else assert.equal(pending, 0, `task ${JSON.stringify(t.id)} is ${t.status} with unfinished dependencies`);
  }
  for (const [agentId, count] of held) {
    const agent = state.agents[agentId];
    assert.ok(agent !== undefined);
    if (count > agent.capacity) {
      assert.ok(count <= (heldBefore.get(agentId) ?? 0), `agent ${JSON.stringify(agentId)} holds ${count} leases > capacity ${agent.capacity}`);
    }
  }
  return held;
}
