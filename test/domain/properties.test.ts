/**
 * Property-based tests of the orchestrator reducer over random command
 * sequences (fast-check; a failure prints the seed and the shrunk sequence, and
 * SWOOSH_FC_SEED=… replays it). After every command:
 *  - the scan-checked invariants hold (harness.checkInvariants);
 *  - a refused command left the state hash unchanged;
 *  - a claim returned exactly what a naive scan-and-sort says, only tasks that
 *    were queued, with tokens above every token issued before;
 *  - a tick and a prune did exactly what a scan says;
 *  - the result matches its published schema and the state its schema;
 *  - models restored from JSON round trips of earlier states (snapshots)
 *    return the same outcomes and reach the same state hash;
 *  - a capture (what snapshots are written from) read a step at a time
 *    between later commands yields exactly the canonical state of its moment.
 * At the end a replay of the accepted log from genesis reaches the same hash
 * with the same results, and earlier views are unchanged.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import type { TypeCheck } from "@sinclair/typebox/compiler";
import type { TSchema } from "@sinclair/typebox";
import { computeStateHash } from "../../src/core/hash.ts";
import { canonicalJSON, deepFreeze, freezeRecords } from "../../src/core/json.ts";
import type { JsonObject, JsonValue } from "../../src/core/json.ts";
import { RecordTextCache } from "../../src/core/record-text-cache.ts";
import type { ApplyOutcome } from "../../src/core/state-machine.ts";
import { COMMAND_RESULT_SCHEMAS, OrchestratorStateSchema, orchestratorMachine as machine } from "../../src/domain/index.ts";
import type { OrchestratorModel, OrchestratorState, TerminalStatus } from "../../src/domain/index.ts";
import { checkInvariants, Driver, referenceClaim, referencePrune, referenceTick, replay, roundTrip } from "./harness.ts";

// A fixed default seed keeps CI reproducible; SWOOSH_FC_SEED=random explores, SWOOSH_FC_SEED=<n> replays a failure.
const RUNS = Number(process.env.SWOOSH_FC_RUNS ?? 1000);
const SEED_ENV = process.env.SWOOSH_FC_SEED ?? "20250117";
const SEED = SEED_ENV === "random" ? undefined : Number(SEED_ENV);

const AGENT_IDS = ["a", "__proto__", "constructor", "", "🚀", "toString"];
// Integer-like ids ("1", "2", "10") are where object key order differs from insertion order.
const TASK_IDS = ["t", "__proto__", "toString", "constructor", "", "😀", "1", "2", "10", "hasOwnProperty", "valueOf", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"];
const LABELS = ["gpu", "cpu", "__proto__", "x86"];
const STATUSES: TerminalStatus[] = ["succeeded", "failed", "cancelled"];

/**
 * A reference to an agent or task, resolved against the state when the command
 * runs: mostly one that exists and fits the command (so sequences do real
 * work), sometimes any id of the pool (so unknown ids are exercised too).
 */
interface Ref {
  readonly existing: boolean;
  readonly n: number;
}

type Op =
  | { op: "register"; agent: Ref; labels: string[]; capacity: number | null }
  | { op: "heartbeat" | "drain" | "remove"; agent: Ref }
  | {
      op: "submit";
      task: Ref;
      kind: string;
      priority: number | null;
      deps: Ref[];
      dupeDep: boolean;
      requires: string[];
      maxAttempts: number | null;
      payload: JsonValue;
    }
  | { op: "claim"; agent: Ref; limit: number | null }
  | { op: "complete"; task: Ref; token: TokenChoice }
  | { op: "fail"; task: Ref; token: TokenChoice; retryable: boolean | null }
  | { op: "cancel"; task: Ref; reason: string | null }
  | { op: "prune"; agoMs: number; statuses: TerminalStatus[] | null; limit: number | null }
  | { op: "phase"; phase: "active" | "draining" | "halted" }
  | { op: "configure"; patch: JsonObject }
  | { op: "tick" }
  | { op: "advance"; ms: number }
  | { op: "snapshot" }
  | { op: "garbage"; kind: number };

/** How a complete/fail picks its token: the live one, an earlier one, or any number. */
type TokenChoice = { mode: "live" } | { mode: "old"; pick: number } | { mode: "any"; value: number };

const refArb = (existingWeight: number): fc.Arbitrary<Ref> =>
  fc.record({ existing: fc.nat({ max: 99 }).map((x) => x < existingWeight), n: fc.nat({ max: 1000 }) });
const tokenArb: fc.Arbitrary<TokenChoice> = fc.oneof(
  { weight: 8, arbitrary: fc.constant({ mode: "live" as const }) },
  { weight: 2, arbitrary: fc.nat().map((pick) => ({ mode: "old" as const, pick })) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 60 }).map((value) => ({ mode: "any" as const, value })) },
);

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant("register" as const),
      agent: refArb(40),
      labels: fc.subarray(LABELS),
      capacity: fc.option(fc.integer({ min: 1, max: 3 })),
    }),
  },
  { weight: 3, arbitrary: fc.record({ op: fc.constant("heartbeat" as const), agent: refArb(90) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constantFrom("drain" as const, "remove" as const), agent: refArb(80) }) },
  {
    weight: 14,
    arbitrary: fc.record({
      op: fc.constant("submit" as const),
      task: refArb(15),
      kind: fc.constantFrom("build", "test"),
      priority: fc.option(fc.integer({ min: -1, max: 2 })),
      deps: fc.oneof(fc.constant<Ref[]>([]), fc.array(refArb(92), { minLength: 1, maxLength: 3 })),
      dupeDep: fc.nat({ max: 99 }).map((x) => x < 3),
      requires: fc.oneof(fc.constant<string[]>([]), fc.subarray(LABELS, { maxLength: 2 })),
      maxAttempts: fc.option(fc.integer({ min: 1, max: 3 })),
      payload: fc.oneof(fc.constant<JsonValue>(null), fc.constant<JsonValue>({ nested: { x: 1 } }), fc.integer(), fc.constant(JSON.parse('{"__proto__":{"a":[1]}}') as JsonValue)),
    }),
  },
  { weight: 8, arbitrary: fc.record({ op: fc.constant("claim" as const), agent: refArb(92), limit: fc.option(fc.integer({ min: 1, max: 4 })) }) },
  { weight: 6, arbitrary: fc.record({ op: fc.constant("complete" as const), task: refArb(92), token: tokenArb }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant("fail" as const), task: refArb(92), token: tokenArb, retryable: fc.option(fc.boolean()) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("cancel" as const), task: refArb(85), reason: fc.option(fc.constantFrom("stop", "")) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant("prune" as const),
      agoMs: fc.integer({ min: -10, max: 5000 }),
      statuses: fc.option(fc.subarray(STATUSES, { minLength: 1 })),
      limit: fc.option(fc.integer({ min: 1, max: 4 })),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("phase" as const),
      phase: fc.constantFrom("active" as const, "active" as const, "active" as const, "draining" as const, "halted" as const),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("configure" as const),
      patch: fc.oneof(
        fc.record({ leaseTtlMs: fc.integer({ min: 100, max: 3000 }) }),
        fc.record({ heartbeatTimeoutMs: fc.integer({ min: 500, max: 6000 }) }),
        fc.record({ maxAttempts: fc.integer({ min: 1, max: 4 }) }),
        fc.record({ backoffBaseMs: fc.integer({ min: 1, max: 800 }) }),
        fc.record({ backoffMaxMs: fc.integer({ min: 1, max: 2000 }) }),
        fc.constant({ leaseTtlMs: 0 }),
      ) as fc.Arbitrary<JsonObject>,
    }),
  },
  { weight: 3, arbitrary: fc.constant({ op: "tick" as const }) },
  { weight: 5, arbitrary: fc.record({ op: fc.constant("advance" as const), ms: fc.constantFrom(0, 0, 1, 10, 50, 99, 250, 400, 700, 1500) }) },
  { weight: 1, arbitrary: fc.constant({ op: "snapshot" as const }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("garbage" as const), kind: fc.nat({ max: 4 }) }) },
);

const resultChecks = new Map<string, TypeCheck<TSchema>>(Object.entries(COMMAND_RESULT_SCHEMAS).map(([type, schema]) => [type, TypeCompiler.Compile(schema)]));
const stateCheck = TypeCompiler.Compile(OrchestratorStateSchema);

/** Turns a generated op into a command against the current state (refs and tokens are resolved now). */
function toCommand(op: Op, state: OrchestratorState, issued: readonly number[], nowMs: number): { type: string; payload: JsonValue } | null {
  const own = (dict: object, key: string) => Object.prototype.hasOwnProperty.call(dict, key);
  const taskIds = (keep: (status: string) => boolean) => Object.keys(state.tasks).filter((id) => keep(state.tasks[id]?.status ?? "")).sort();
  const pick = (ref: Ref, candidates: readonly string[], pool: readonly string[]): string =>
    ref.existing && candidates.length > 0 ? (candidates[ref.n % candidates.length] as string) : (pool[ref.n % pool.length] as string);
  const agent = (ref: Ref) => pick(ref, Object.keys(state.agents).sort(), AGENT_IDS);
  const token = (taskId: string, choice: TokenChoice): number => {
    if (choice.mode === "any") return choice.value;
    if (choice.mode === "old") return issued.length === 0 ? 1 : (issued[choice.pick % issued.length] as number);
    return own(state.tasks, taskId) ? (state.tasks[taskId]?.lease?.token ?? 1) : 1;
  };
  switch (op.op) {
    case "register": {
      const payload: JsonObject = { agentId: agent(op.agent), labels: op.labels };
      if (op.capacity !== null) payload.capacity = op.capacity;
      return { type: "agent.register", payload };
    }
    case "heartbeat":
    case "drain":
    case "remove":
      return { type: `agent.${op.op}`, payload: { agentId: agent(op.agent) } };
    case "submit": {
      const all = taskIds(() => true);
      const deps = [...new Set(op.deps.map((ref) => pick(ref, all, TASK_IDS)))];
      if (op.dupeDep && deps.length > 0) deps.push(deps[0] as string);
      const payload: JsonObject = {
        taskId: pick(op.task, all, TASK_IDS),
        kind: op.kind,
        payload: op.payload,
        dependsOn: deps,
        requires: op.requires,
      };
      if (op.priority !== null) payload.priority = op.priority;
      if (op.maxAttempts !== null) payload.maxAttempts = op.maxAttempts;
      return { type: "task.submit", payload };
    }
    case "claim": {
      const agentId = agent(op.agent);
      return { type: "task.claim", payload: op.limit === null ? { agentId } : { agentId, limit: op.limit } };
    }
    case "complete": {
      const taskId = pick(op.task, taskIds((s) => s === "leased"), TASK_IDS);
      return { type: "task.complete", payload: { taskId, token: token(taskId, op.token), result: { by: "test" } } };
    }
    case "fail": {
      const taskId = pick(op.task, taskIds((s) => s === "leased"), TASK_IDS);
      const payload: JsonObject = { taskId, token: token(taskId, op.token), error: { message: "boom" } };
      if (op.retryable !== null) payload.retryable = op.retryable;
      return { type: "task.fail", payload };
    }
    case "cancel": {
      const taskId = pick(op.task, taskIds((s) => s !== "succeeded" && s !== "failed" && s !== "cancelled"), TASK_IDS);
      return { type: "task.cancel", payload: op.reason === null ? { taskId } : { taskId, reason: op.reason } };
    }
    case "prune": {
      const payload: JsonObject = { before: nowMs - op.agoMs };
      if (op.statuses !== null) payload.statuses = op.statuses;
      if (op.limit !== null) payload.limit = op.limit;
      return { type: "task.prune", payload };
    }
    case "phase":
      return { type: "orchestrator.setPhase", payload: { phase: op.phase } };
    case "configure":
      return { type: "orchestrator.configure", payload: op.patch };
    case "tick":
      return { type: "system.tick", payload: {} };
    case "garbage":
      return [
        { type: "task.explode", payload: {} },
        { type: "task.claim", payload: { agentId: "a", limit: 0 } },
        { type: "task.submit", payload: { taskId: "t", kind: "k", surprise: true } },
        { type: "agent.register", payload: { agentId: "a", labels: ["\ud800"] } },
        { type: "task.submit", payload: { taskId: "t", kind: "k", dependsOn: ["b", "b"] } },
      ][op.kind] as { type: string; payload: JsonValue };
    case "advance":
    case "snapshot":
      return null;
  }
}

/** A capture being read one step per later command, and the text it must produce. */
interface OpenCapture {
  readonly expected: string;
  readonly pieces: Generator<string>;
  readonly release: () => void;
  text: string;
}

interface Shadow {
  readonly model: OrchestratorModel;
  readonly view: JsonObject;
  readonly viewHash: string;
}

/** What the generated sequences exercised, so that a generator that stops doing real work fails loudly. */
const coverage = new Map<string, number>();
function bump(key: string): void {
  coverage.set(key, (coverage.get(key) ?? 0) + 1);
}

function runSequence(ops: readonly Op[]): void {
  const d = Driver.create({ leaseTtlMs: 1000, heartbeatTimeoutMs: 3000, maxAttempts: 2, backoffBaseMs: 100, backoffMaxMs: 400 });
  const shadows: Shadow[] = [];
  const results: JsonValue[] = [];
  const issued: number[] = [];
  let held = new Map<string, number>();
  let lastTokenSeq = 0;
  const captures: OpenCapture[] = [];
  const texts = new RecordTextCache();
  const stepCaptures = (): void => {
    for (const open of captures) {
      const step = open.pieces.next();
      if (step.done !== true) open.text += step.value;
    }
  };

  for (const op of ops) {
    if (op.op === "advance") {
      d.advance(op.ms);
      continue;
    }
    if (op.op === "snapshot") {
      if (shadows.length < 3) {
        const state = machine.state(d.model);
        const view = machine.view(d.model);
        // Every other shadow is restored as recovery restores a snapshot (with the last applied HLC, which promotes ended backoffs).
        const lastAppliedHlc = shadows.length % 2 === 0 ? d.log[d.log.length - 1]?.ctx.hlc : undefined;
        shadows.push({ model: machine.restore(roundTrip(state), lastAppliedHlc), view, viewHash: computeStateHash(view) });
      }
      if (captures.length < 3) {
        const capture = (machine.capture as NonNullable<typeof machine.capture>)(d.model);
        // One member per piece and two ids per step: later commands land between the smallest steps.
        captures.push({ expected: canonicalJSON(machine.view(d.model)), pieces: texts.capturedPieces(capture, 1, 2), release: () => capture.release(), text: "" });
      }
      continue;
    }
    const state = d.state;
    const command = toCommand(op, state, issued, d.nowMs);
    if (command === null) continue;
    const before = d.hash();
    const ctx = d.nextContext();
    // Reference answers from the state before the command.
    const expectClaim =
      command.type === "task.claim" && state.phase === "active"
        ? referenceClaim(state, (command.payload as JsonObject).agentId as string, ((command.payload as JsonObject).limit as number | undefined) ?? 1, ctx.nowMs)
        : null;
    const expectTick = command.type === "system.tick" ? referenceTick(state, ctx.nowMs) : null;
    const prunePayload = command.payload as { before: number; statuses?: TerminalStatus[]; limit?: number };
    const expectPrune = command.type === "task.prune" ? referencePrune(state, prunePayload.before, prunePayload.statuses, prunePayload.limit) : null;
    const queuedBefore = new Set(Object.keys(state.tasks).filter((id) => state.tasks[id]?.status === "queued"));
    const tasksBefore = machine.view(d.model).tasks as unknown as OrchestratorState["tasks"];

    // Rule 2 (records are replaced, never mutated), enforced: every record is frozen, as the engine
    // freezes the records of a state read and the results and events it hands out.
    freezeRecords(machine.view(d.model));
    deepFreeze(command.payload);
    const outcome: ApplyOutcome = machine.apply(d.model, command, ctx);
    deepFreeze(outcome);
    stepCaptures();
    for (const shadow of shadows) {
      assert.deepEqual(machine.apply(shadow.model, command, ctx), outcome, `restored model disagrees on ${command.type}`);
    }

    bump(`${command.type}:${outcome.ok ? "ok" : outcome.error.code}`);
    if (command.type === "task.claim" && outcome.ok) bump(`claimed:${Math.min(2, (outcome.result as { leases: unknown[] }).leases.length)}`);
    if (!outcome.ok) {
      assert.equal(d.hash(), before, `refused ${command.type} (${outcome.error.code}) changed the state`);
      continue;
    }
    d.log.push({ type: command.type, payload: command.payload, ctx });
    results.push(outcome.result);
    const resultCheck = resultChecks.get(command.type);
    assert.ok(resultCheck?.Check(outcome.result), `${command.type} result ${JSON.stringify(outcome.result)} breaks its schema`);
    // Results are built with their keys in canonical order: the outcome rows of a
    // snapshot are then serialized by one JSON.stringify, not a sorted copy.
    assert.equal(JSON.stringify(outcome.result), canonicalJSON(outcome.result), `${command.type} result keys are not in canonical order`);

    const after = d.state;
    if (command.type === "task.claim") {
      const leases = (outcome.result as { leases: { taskId: string; token: number; attempt: number }[] }).leases;
      const agentStatus = state.agents[(command.payload as JsonObject).agentId as string]?.status;
      assert.deepEqual(
        leases.map((l) => l.taskId),
        agentStatus === "ready" ? expectClaim : [],
        "claim differs from the scan-and-sort reference",
      );
      for (const lease of leases) {
        assert.ok(queuedBefore.has(lease.taskId), `claim handed out ${JSON.stringify(lease.taskId)}, which was not queued`);
        assert.ok(lease.token > lastTokenSeq, "fencing token did not increase");
        lastTokenSeq = lease.token;
        issued.push(lease.token);
        assert.equal(lease.attempt, (after.tasks[lease.taskId]?.attempts ?? -1) + 1);
      }
    }
    assert.ok(after.leaseTokenSeq >= lastTokenSeq && after.leaseTokenSeq === (issued.at(-1) ?? 0), "leaseTokenSeq out of step");
    if (expectTick !== null) {
      const r = outcome.result as { expired: number; offline: number; agentIds: string[] };
      assert.equal(r.expired, expectTick.expired, "tick expired a different number of leases than the scan");
      assert.deepEqual(r.agentIds, expectTick.offline, "tick took different agents offline than the scan");
    }
    if (expectPrune !== null) {
      const r = outcome.result as { pruned: number; taskIds: string[]; more?: boolean };
      assert.deepEqual(r.taskIds, expectPrune.ids, "prune removed different tasks than the scan");
      assert.equal(r.pruned, expectPrune.ids.length);
      assert.equal(r.more, prunePayload.limit === undefined ? undefined : expectPrune.more, "more: whether the limit left matching tasks");
      if (r.more !== undefined && r.pruned > 0) bump(r.more ? "pruned:limited, more left" : "pruned:limited, none left");
      for (const id of expectPrune.ids) assert.ok(!Object.prototype.hasOwnProperty.call(after.tasks, id));
    }
    // No task is ever lost: only a prune removes one, and only a terminal one, whose record never changed since it ended.
    const prunedIds = command.type === "task.prune" ? new Set((outcome.result as { taskIds: string[] }).taskIds) : new Set<string>();
    for (const id of Object.keys(tasksBefore)) {
      const before = tasksBefore[id];
      const now = Object.prototype.hasOwnProperty.call(after.tasks, id) ? after.tasks[id] : undefined;
      if (now === undefined) assert.ok(prunedIds.has(id), `task ${JSON.stringify(id)} vanished during ${command.type}`);
      else if (before !== undefined && ["succeeded", "failed", "cancelled"].includes(before.status)) assert.equal(now, before, `terminal task ${JSON.stringify(id)} changed`);
    }
    held = checkInvariants(after, held);
    assert.ok(stateCheck.Check(after), "state breaks its schema");
    const hash = d.hash();
    for (const shadow of shadows) assert.equal(computeStateHash(machine.state(shadow.model)), hash, "restored model's hash diverged");
  }

  for (const open of captures) {
    for (const piece of open.pieces) open.text += piece;
    open.release();
    assert.equal(open.text, open.expected, "a capture read between later commands differs from the state at its moment");
  }
  // Replay from genesis: same results, same final hash; views taken earlier did not move.
  const replayed = replay(d.genesis, d.log, results);
  assert.equal(computeStateHash(machine.state(replayed)), d.hash(), "replay from genesis diverged");
  for (const shadow of shadows) assert.equal(computeStateHash(shadow.view), shadow.viewHash, "a view changed after later commands");
  // A restore of the final state answers a final claim round like the live model.
  const restored = machine.restore(roundTrip(machine.state(d.model)), d.log[d.log.length - 1]?.ctx.hlc);
  for (const agentId of AGENT_IDS) {
    const ctx = d.nextContext();
    const cmd = { type: "task.claim", payload: { agentId, limit: 3 } };
    assert.deepEqual(machine.apply(restored, cmd, ctx), machine.apply(d.model, cmd, ctx));
  }
}

test("random command sequences keep every invariant and replay identically", () => {
  fc.assert(
    fc.property(fc.array(opArb, { minLength: 1, maxLength: 120, size: "max" }), (ops) => {
      runSequence(ops);
    }),
    { numRuns: RUNS, seed: SEED, verbose: 1 },
  );
});

test("long sequences with few ids exercise retries, expiry and pruning", () => {
  const focused = fc.array(opArb, { minLength: 150, maxLength: 400, size: "max" });
  fc.assert(
    fc.property(focused, (ops) => {
      runSequence(ops);
    }),
    { numRuns: Math.max(1, Math.floor(RUNS / 10)), seed: SEED === undefined ? undefined : SEED + 1, verbose: 1 },
  );
});

test("the generated sequences exercised every command and every refusal", () => {
  const expected = [
    ...["agent.register", "agent.heartbeat", "agent.drain", "agent.remove", "task.submit", "task.claim", "task.complete", "task.fail"].map((t) => `${t}:ok`),
    ...["task.cancel", "task.prune", "orchestrator.setPhase", "orchestrator.configure", "system.tick"].map((t) => `${t}:ok`),
    "claimed:0",
    "claimed:1",
    "claimed:2",
    "pruned:limited, more left",
    "pruned:limited, none left",
    "task.explode:unknown_command",
    "task.submit:bad_request",
    "task.submit:task_exists",
    "task.submit:unknown_task",
    "task.claim:unknown_agent",
    "task.claim:invalid_transition",
    "task.complete:stale_lease",
    "task.fail:stale_lease",
    "task.cancel:invalid_transition",
    "orchestrator.configure:bad_request",
  ];
  for (const key of expected) assert.ok((coverage.get(key) ?? 0) > 0, `no generated command produced ${key}`);
});
