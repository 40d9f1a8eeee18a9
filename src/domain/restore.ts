/**
 * Builds a live model from a canonical state (genesis or a verified snapshot).
 *
 * Every index is derived from the state alone, and each index's pop order
 * depends only on the set of live entries (see indexes/heap.ts), so the model
 * answers every later command exactly as one that reached this state by
 * applying commands (SPEC G2). Object key order is never used for meaning.
 *
 * The input is not modified; records are shared with it (they are never
 * mutated). The state is checked against the schema and against the
 * invariants the reducer maintains; a violation throws, because a state that
 * passed its hash check but breaks them was written by a bug.
 */
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { hlcWallMs } from "../core/hlc.ts";
import type { JsonObject } from "../core/json.ts";
import { enqueue, linkDependencies, trackIfPrunable } from "./lifecycle.ts";
import { AgentSlot, canonicalConfig, createDictionary, OrchestratorModel, TaskSlot } from "./model.ts";
import { OrchestratorStateSchema } from "./schemas.ts";
import type { Agent, OrchestratorState, Task } from "./types.ts";
import { isTerminal } from "./types.ts";

const stateCheck = TypeCompiler.Compile(OrchestratorStateSchema);

/** Thrown when a state to restore is malformed or breaks an invariant. */
export class InvalidStateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InvalidStateError";
  }
}

function isSortedUnique(list: readonly string[]): boolean {
  for (let i = 1; i < list.length; i++) if (!((list[i - 1] as string) < (list[i] as string))) return false;
  return true;
}


/** How errors name a task; built only on failure (for every task it cost ~0.4 µs each, and a large state restores a million). */
function taskNamed(key: string): string {
  return `state task ${JSON.stringify(key)}`;
}

export function restoreModel(input: JsonObject, lastAppliedHlc?: string): OrchestratorModel {
  if (!stateCheck.Check(input)) {
    const first = stateCheck.Errors(input).First();
    throw new InvalidStateError(`state ${first?.path || "(root)"}: ${first?.message ?? "invalid"}`);
  }
  const source = input as unknown as OrchestratorState;
  const state: OrchestratorState = {
    schemaVersion: 1,
    clusterId: source.clusterId,
    phase: source.phase,
    config: canonicalConfig(source.config),
    leaseTokenSeq: source.leaseTokenSeq,
    agents: createDictionary<Agent>(),
    tasks: createDictionary<Task>(),
  };
  if (state.config.backoffBaseMs > state.config.backoffMaxMs) throw new InvalidStateError("state config: backoffBaseMs exceeds backoffMaxMs");
  const m = new OrchestratorModel(state);

  // Object.keys lists own keys only, `__proto__` included when it is an own data property.
  for (const key of Object.keys(source.agents)) {
    const agent = source.agents[key] as Agent;
    if (agent.id !== key) throw new InvalidStateError(`state agent ${JSON.stringify(key)} has id ${JSON.stringify(agent.id)}`);
    if (!isSortedUnique(agent.labels)) throw new InvalidStateError(`state agent ${JSON.stringify(key)}: labels not sorted and unique`);
    const slot = new AgentSlot(agent);
    m.agents.set(key, slot);
    state.agents[key] = agent;
    if (agent.status !== "offline") m.liveness.track(slot, key, hlcWallMs(agent.lastSeenAt));
  }

  for (const key of Object.keys(source.tasks)) {
    const task = source.tasks[key] as Task;
    if (task.id !== key) throw new InvalidStateError(`${taskNamed(key)} has id ${JSON.stringify(task.id)}`);
    if (!isSortedUnique(task.requires)) throw new InvalidStateError(`${taskNamed(key)}: requires not sorted and unique`);
    if (task.dependsOn.length > 1 && new Set(task.dependsOn).size !== task.dependsOn.length) throw new InvalidStateError(`${taskNamed(key)}: duplicate dependsOn`);
    if (task.attempts > task.maxAttempts) throw new InvalidStateError(`${taskNamed(key)}: attempts exceed maxAttempts`);
    if ((task.status === "leased") !== (task.lease !== undefined)) throw new InvalidStateError(`${taskNamed(key)}: lease present iff leased`);
    const slot = new TaskSlot(task);
    m.tasks.set(key, slot);
    state.tasks[key] = task;
    const lease = task.lease;
    if (lease !== undefined) {
      const agent = m.agents.get(lease.agentId);
      if (agent === undefined) throw new InvalidStateError(`${taskNamed(key)}: leased to unknown agent ${JSON.stringify(lease.agentId)}`);
      if (lease.token > state.leaseTokenSeq) throw new InvalidStateError(`${taskNamed(key)}: token ${lease.token} beyond leaseTokenSeq`);
      agent.leases.add(key);
      m.expiry.track(slot, lease.expiresAt, lease.token);
    }
  }

  // Dependencies of live tasks: they must exist, and the status must agree with theirs.
  for (const [key, slot] of m.tasks) {
    const task = slot.task;
    if (isTerminal(task.status)) continue;
    let pending = 0;
    for (const depId of task.dependsOn) {
      const dep = m.tasks.get(depId);
      if (dep === undefined) throw new InvalidStateError(`state task ${JSON.stringify(key)}: dependency ${JSON.stringify(depId)} missing`);
      const status = dep.task.status;
      if (status === "failed" || status === "cancelled") {
        throw new InvalidStateError(`state task ${JSON.stringify(key)} is ${task.status} but dependency ${JSON.stringify(depId)} is ${status}`);
      }
      if (status !== "succeeded") pending++;
    }
    if ((task.status === "blocked") !== pending > 0) {
      throw new InvalidStateError(`state task ${JSON.stringify(key)} is ${task.status} with ${pending} unfinished dependencies`);
    }
    slot.pendingDeps = pending;
    linkDependencies(m, slot);
  }

  for (const slot of m.tasks.values()) {
    if (slot.task.status === "queued") enqueue(m, slot);
    else trackIfPrunable(m, slot);
  }
  // Backoffs that ended by the last applied command are claimable now (every
  // later claim or tick would promote them first). Left in the delayed heap,
  // they would read as a deadline already past, and the server would log a
  // system.tick that changes nothing after every restart from such a snapshot.
  if (lastAppliedHlc !== undefined && lastAppliedHlc !== "") m.queue.promote(hlcWallMs(lastAppliedHlc));
  return m;
}
