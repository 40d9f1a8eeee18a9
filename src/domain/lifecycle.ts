/**
 * Task and lease transitions shared by the commands: enqueue, lease, end an
 * attempt, succeed, cancel with cascade, terminal bookkeeping, removal.
 *
 * Each function keeps the record and every index in step, so a command is a
 * validation followed by calls to these. None of them iterates a Set or Map in
 * a way whose order could show in the state: where several tasks change in one
 * command they all get the same `updatedAt` and a cause that does not depend on
 * the visiting order (the cascade's root, never "whichever parent came first").
 *
 * Retry policy (SPEC §6, and the decision for expiry and agent loss): every
 * lease that ends without success increments `attempts`. While attempts <
 * maxAttempts the task is queued again: after a `task.fail` with backoff
 * `min(backoffBaseMs * 2^(attempts-1), backoffMaxMs)`, after a lease expiry,
 * an agent going offline or being removed at once (the task did not fail; its
 * worker vanished). When attempts reaches maxAttempts the task fails and its
 * non-terminal dependents are cancelled. So attempts <= maxAttempts always
 * holds and no task is ever leased a (maxAttempts+1)-th time.
 */
import type { ApplyContext } from "../core/state-machine.ts";
import type { JsonValue } from "../core/json.ts";
import type { AgentSlot, OrchestratorModel, TaskSlot } from "./model.ts";
import { changeTask } from "./model.ts";
import type { OrchestratorConfig, Task } from "./types.ts";
import { isTerminal } from "./types.ts";

/** Counts of what releasing leases did, reported in command results. */
export interface Released {
  requeued: number;
  failed: number;
  cancelled: number;
}

export function noneReleased(): Released {
  // Keys in canonical order: results copy it as it is (see the outcome rows of a snapshot).
  return { cancelled: 0, failed: 0, requeued: 0 };
}

/** The retry delay after the `attempts`-th unsuccessful attempt (attempts >= 1). */
export function backoffDelayMs(config: OrchestratorConfig, attempts: number): number {
  const exponent = attempts - 1;
  // Past 2^52 the product is beyond any configurable backoffMaxMs anyway.
  if (exponent >= 52) return config.backoffMaxMs;
  return Math.min(config.backoffBaseMs * 2 ** exponent, config.backoffMaxMs);
}

/** Puts a queued task into the claim index. */
export function enqueue(m: OrchestratorModel, slot: TaskSlot): void {
  const t = slot.task;
  m.queue.enqueue(slot, t.id, t.priority, t.createdAt, t.requires, t.notBefore);
}

/** Leases a task just taken from the claim index to `agent`. */
export function leaseTo(m: OrchestratorModel, slot: TaskSlot, agent: AgentSlot, token: number, expiresAt: number, hlc: string): Task {
  const task = changeTask(slot.task, {
    status: "leased",
    lease: { agentId: agent.agent.id, expiresAt, token },
    notBefore: undefined,
    updatedAt: hlc,
  });
  m.putTask(slot, task);
  agent.leases.add(task.id);
  m.expiry.track(slot, expiresAt, token);
  return task;
}

/** Gives a leased task's lease a new expiry (heartbeat, resume from halted). */
export function extendLease(m: OrchestratorModel, slot: TaskSlot, expiresAt: number, hlc: string): void {
  const lease = slot.task.lease;
  if (lease === undefined) throw new Error(`task ${JSON.stringify(slot.task.id)} has no lease to extend`);
  m.putTask(slot, changeTask(slot.task, { lease: { agentId: lease.agentId, expiresAt, token: lease.token }, updatedAt: hlc }));
  m.expiry.track(slot, expiresAt, lease.token);
}

/** Detaches a task's live lease from the indexes (the record is rewritten by the caller). */
function dropLease(m: OrchestratorModel, slot: TaskSlot): void {
  const lease = slot.task.lease;
  if (lease === undefined) return;
  m.agents.get(lease.agentId)?.leases.delete(slot.task.id);
  slot.expiryEntry = null;
}

export interface AttemptEnd {
  /** `task.fail`'s retryable; always true for expiry and agent loss. */
  readonly retryable: boolean;
  /** Apply the retry backoff (task.fail) or requeue at once (expiry, agent loss). */
  readonly backoff: boolean;
}

/** Ends the live lease of a task without success: queued again or failed (see the module comment). */
export function endAttempt(m: OrchestratorModel, slot: TaskSlot, ctx: ApplyContext, error: JsonValue, how: AttemptEnd, tally: Released): Task {
  const t = slot.task;
  const attempts = t.attempts + 1;
  dropLease(m, slot);
  if (how.retryable && attempts < t.maxAttempts) {
    const notBefore = how.backoff ? ctx.nowMs + backoffDelayMs(m.state.config, attempts) : undefined;
    m.putTask(slot, changeTask(t, { status: "queued", attempts, lease: undefined, notBefore, error, updatedAt: ctx.hlc }));
    enqueue(m, slot);
    tally.requeued++;
  } else {
    m.putTask(slot, changeTask(t, { status: "failed", attempts, lease: undefined, notBefore: undefined, error, updatedAt: ctx.hlc }));
    becameTerminal(m, slot);
    tally.failed++;
    tally.cancelled += cancelDependents(m, slot, ctx.hlc).length;
  }
  return slot.task;
}

/** Ends every lease `agent` holds (agent removed or gone offline). */
export function releaseAgentLeases(m: OrchestratorModel, agent: AgentSlot, ctx: ApplyContext, code: "agent_removed" | "agent_offline", tally: Released): void {
  // Sorted so that the processing order is the same in every replica and after a restore.
  const ids = [...agent.leases].sort();
  for (const id of ids) {
    const slot = m.tasks.get(id);
    const lease = slot?.task.lease;
    if (slot === undefined || lease === undefined) throw new Error(`agent ${JSON.stringify(agent.agent.id)} holds a lease on ${JSON.stringify(id)} that is not live`);
    endAttempt(m, slot, ctx, { agentId: lease.agentId, code, token: lease.token }, { retryable: true, backoff: false }, tally);
  }
}

/** Completes a leased task and unblocks dependents whose last dependency this was; returns how many. */
export function succeed(m: OrchestratorModel, slot: TaskSlot, hlc: string, result: JsonValue | undefined): number {
  dropLease(m, slot);
  m.putTask(slot, changeTask(slot.task, { status: "succeeded", lease: undefined, notBefore: undefined, result, updatedAt: hlc }));
  becameTerminal(m, slot);
  let unblocked = 0;
  if (slot.dependents !== null) {
    for (const id of slot.dependents) {
      const dependent = m.tasks.get(id);
      if (dependent === undefined || dependent.task.status !== "blocked") continue;
      dependent.pendingDeps--;
      if (dependent.pendingDeps === 0) {
        m.putTask(dependent, changeTask(dependent.task, { status: "queued", updatedAt: hlc }));
        enqueue(m, dependent);
        unblocked++;
      }
    }
  }
  return unblocked;
}

/**
 * Cancels a non-terminal task and every non-terminal task that depends on it,
 * directly or not. Returns the ids cancelled, the task itself first.
 */
export function cancelTask(m: OrchestratorModel, slot: TaskSlot, hlc: string, reason: string | undefined): string[] {
  dropLease(m, slot);
  const error: JsonValue = reason === undefined ? { code: "cancelled" } : { code: "cancelled", reason };
  m.putTask(slot, changeTask(slot.task, { status: "cancelled", lease: undefined, notBefore: undefined, error, updatedAt: hlc }));
  becameTerminal(m, slot);
  return [slot.task.id, ...cancelDependents(m, slot, hlc)];
}

/**
 * Cancels every non-terminal descendant of `root`, which has just failed or
 * been cancelled. Each records the root as the cause, so the result does not
 * depend on the visiting order. Cost: proportional to the tasks cancelled.
 */
export function cancelDependents(m: OrchestratorModel, root: TaskSlot, hlc: string): string[] {
  if (root.dependents === null || root.dependents.size === 0) return [];
  const code = root.task.status === "failed" ? "dependency_failed" : "dependency_cancelled";
  const error: JsonValue = { code, taskId: root.task.id };
  const cancelled: string[] = [];
  const pending = [...root.dependents];
  while (pending.length > 0) {
    const id = pending.pop() as string;
    const slot = m.tasks.get(id);
    if (slot === undefined || isTerminal(slot.task.status)) continue;
    dropLease(m, slot);
    m.putTask(slot, changeTask(slot.task, { status: "cancelled", lease: undefined, notBefore: undefined, error, updatedAt: hlc }));
    if (slot.dependents !== null) for (const next of slot.dependents) pending.push(next);
    becameTerminal(m, slot);
    cancelled.push(id);
  }
  return cancelled;
}

/**
 * Bookkeeping for a task that has just become terminal: it leaves the claim
 * and expiry indexes, stops counting as a live dependent of its dependencies
 * (which may become prunable), and becomes prunable itself once nothing live
 * depends on it.
 */
export function becameTerminal(m: OrchestratorModel, slot: TaskSlot): void {
  m.queue.dequeue(slot);
  slot.expiryEntry = null;
  const task = slot.task;
  for (const depId of task.dependsOn) {
    const dep = m.tasks.get(depId);
    if (dep === undefined || dep.dependents === null) continue;
    dep.dependents.delete(task.id);
    if (dep.dependents.size === 0) {
      dep.dependents = null;
      trackIfPrunable(m, dep);
    }
  }
  trackIfPrunable(m, slot);
}

/** Adds a terminal task with no live dependents to the prune index. */
export function trackIfPrunable(m: OrchestratorModel, slot: TaskSlot): void {
  const task = slot.task;
  if (slot.dependents !== null || !isTerminal(task.status)) return;
  m.prunable.track(slot, task.status, task.id, task.updatedAt);
}

/** Registers `slot` (a new non-terminal task) as a live dependent of each of its dependencies. */
export function linkDependencies(m: OrchestratorModel, slot: TaskSlot): void {
  const id = slot.task.id;
  for (const depId of slot.task.dependsOn) {
    const dep = m.tasks.get(depId);
    if (dep === undefined) throw new Error(`dependency ${JSON.stringify(depId)} of ${JSON.stringify(id)} is missing`);
    if (dep.dependents === null) {
      dep.dependents = new Set();
      // A terminal dependency with a live dependent must not be pruned.
      dep.pruneEntry = null;
    }
    dep.dependents.add(id);
  }
}

/** Removes a terminal task that no live task depends on (task.prune). */
export function removeTask(m: OrchestratorModel, slot: TaskSlot): void {
  const id = slot.task.id;
  if (!isTerminal(slot.task.status) || slot.dependents !== null) throw new Error(`task ${JSON.stringify(id)} is not prunable`);
  slot.pruneEntry = null;
  m.deleteTask(slot);
}
