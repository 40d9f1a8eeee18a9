/**
 * The live model: the canonical state plus the indexes derived from it.
 *
 * `state` is the SPEC §5 object itself, kept current command by command, so
 * `state(model)` costs nothing. Its `agents` and `tasks` are null-prototype
 * dictionaries: `tasks["__proto__"] = t` then stores an ordinary own key
 * instead of changing a prototype. Records below them are never mutated, only
 * replaced (reducer rule 2), which `putTask`/`putAgent` enforce by construction.
 *
 * Beside each record sits a slot with the index bookkeeping for it; a slot is
 * the `owner` the lazy-deletion heaps point back to.
 */
import type { JsonValue } from "../core/json.ts";
import { DictionaryCapture } from "../core/state-capture.ts";
import type { StateCapture } from "../core/state-capture.ts";
import { AgentLivenessIndex } from "./indexes/agent-liveness.ts";
import type { LivenessEntry } from "./indexes/agent-liveness.ts";
import { LeaseExpiryIndex } from "./indexes/lease-expiry.ts";
import type { ExpiryEntry } from "./indexes/lease-expiry.ts";
import { PruneIndex } from "./indexes/prune-index.ts";
import type { PruneEntry } from "./indexes/prune-index.ts";
import { ReadyQueue } from "./indexes/ready-queue.ts";
import type { MatchCache, QueueEntry } from "./indexes/ready-queue.ts";
import type { Agent, Lease, OrchestratorConfig, OrchestratorState, Task, TaskStatus } from "./types.ts";

export class TaskSlot {
  /** Live entry in the ready queue (queued tasks only). */
  queueEntry: QueueEntry | null = null;
  /** Live entry in the lease-expiry heap (leased tasks only). */
  expiryEntry: ExpiryEntry | null = null;
  /** Live entry in the prune index (terminal tasks no live task depends on). */
  pruneEntry: PruneEntry | null = null;
  /** Dependencies not yet succeeded (meaningful while blocked). */
  pendingDeps = 0;
  /** Ids of the non-terminal tasks that list this one in `dependsOn`. */
  dependents: Set<string> | null = null;
  /**
   * When the slot was made, counted from the model's construction (0 for a
   * restored task): an open capture taken before it never saw this task, so
   * writes to it need no journal entry.
   */
  born = 0;
  /** Length of the payload's canonical JSON, computed when first claimed (the payload never changes). */
  payloadChars: number | null = null;

  constructor(public task: Task) {}
}

export class AgentSlot {
  /** Ids of the tasks this agent holds a live lease on. */
  readonly leases = new Set<string>();
  labelSet: ReadonlySet<string>;
  match: MatchCache | null = null;
  livenessEntry: LivenessEntry | null = null;

  constructor(public agent: Agent) {
    this.labelSet = new Set(agent.labels);
  }
}

export class OrchestratorModel {
  readonly tasks = new Map<string, TaskSlot>();
  readonly agents = new Map<string, AgentSlot>();
  readonly queue = new ReadyQueue();
  readonly expiry = new LeaseExpiryIndex();
  readonly liveness = new AgentLivenessIndex();
  readonly prunable = new PruneIndex();

  /** Open captures (snapshots being written); each hears of every record write first. */
  private captures: Array<{ readonly tasks: DictionaryCapture; readonly agents: DictionaryCapture; readonly born: number }> = [];
  /** Task slots made so far (see TaskSlot.born). */
  private births = 0;

  constructor(readonly state: OrchestratorState) {}

  /** A new task: its slot and record (task.submit). */
  addTask(slot: TaskSlot): void {
    slot.born = ++this.births;
    this.tasks.set(slot.task.id, slot);
    this.state.tasks[slot.task.id] = slot.task;
  }

  putTask(slot: TaskSlot, task: Task): void {
    for (const capture of this.captures) if (slot.born <= capture.born) capture.tasks.beforeWrite(task.id);
    slot.task = task;
    this.state.tasks[task.id] = task;
  }

  deleteTask(slot: TaskSlot): void {
    const id = slot.task.id;
    for (const capture of this.captures) if (slot.born <= capture.born) capture.tasks.beforeWrite(id);
    this.tasks.delete(id);
    delete this.state.tasks[id];
  }

  putAgent(slot: AgentSlot, agent: Agent): void {
    for (const capture of this.captures) capture.agents.beforeWrite(agent.id);
    if (agent.labels !== slot.agent.labels) {
      slot.labelSet = new Set(agent.labels);
      slot.match = null;
    }
    slot.agent = agent;
    this.state.agents[agent.id] = agent;
  }

  deleteAgent(id: string): void {
    for (const capture of this.captures) capture.agents.beforeWrite(id);
    this.agents.delete(id);
    delete this.state.agents[id];
  }

  /**
   * The state as of now, in O(1): the top-level fields are copied (they are
   * few, and replaced rather than mutated), the two collections are captured
   * (state-capture.ts). Every write to them goes through the methods above,
   * which is what keeps a capture exact; a task made after the capture is
   * left out of it by its slot's birth, with no journal entry.
   */
  capture(): StateCapture {
    const born = this.births;
    const tasks = new DictionaryCapture(this.state.tasks as unknown as { [id: string]: JsonValue }, () => this.taskIdsBornBy(born));
    const agents = new DictionaryCapture(this.state.agents as unknown as { [id: string]: JsonValue }, () => this.agents.keys());
    const entry = { tasks, agents, born };
    this.captures = [...this.captures, entry];
    return {
      top: { ...(this.state as unknown as { [key: string]: JsonValue }), tasks, agents },
      release: () => {
        this.captures = this.captures.filter((open) => open !== entry);
      },
    };
  }

  /** Live task ids whose slot was made by birth `born` (a Map lists ids added later too, at its end). */
  private *taskIdsBornBy(born: number): Generator<string> {
    for (const [id, slot] of this.tasks) if (slot.born <= born) yield id;
  }
}

/**
 * The config with its keys in canonical (sorted) order — the order a state
 * read back from a snapshot or the genesis file has — so a fresh model and a
 * restored one list them alike (GET /state, JSON.stringify of the state).
 */
export function canonicalConfig(c: OrchestratorConfig): OrchestratorConfig {
  return {
    backoffBaseMs: c.backoffBaseMs,
    backoffMaxMs: c.backoffMaxMs,
    heartbeatTimeoutMs: c.heartbeatTimeoutMs,
    leaseTtlMs: c.leaseTtlMs,
    maxAttempts: c.maxAttempts,
  };
}

/** A dictionary that treats every string, `__proto__` included, as an ordinary key. */
export function createDictionary<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}

/** The fields of a task record, with `undefined` meaning "absent". */
export interface TaskFields {
  id: string;
  kind: string;
  payload: JsonValue;
  priority: number;
  dependsOn: string[];
  requires: string[];
  status: TaskStatus;
  attempts: number;
  maxAttempts: number;
  notBefore?: number | undefined;
  lease?: Lease | undefined;
  result?: JsonValue | undefined;
  error?: JsonValue | undefined;
  createdAt: string;
  updatedAt: string;
}

/**
 * Builds a task record with optional fields absent rather than undefined
 * (canonicalJSON refuses undefined). Keys are assigned in sorted (canonical)
 * order: JSON.stringify of such a record already is its canonical JSON, which
 * lets the state hash and snapshots serialize it natively.
 */
export function buildTask(f: TaskFields): Task {
  const task = {} as Task;
  task.attempts = f.attempts;
  task.createdAt = f.createdAt;
  task.dependsOn = f.dependsOn;
  if (f.error !== undefined) task.error = f.error;
  task.id = f.id;
  task.kind = f.kind;
  if (f.lease !== undefined) task.lease = f.lease;
  task.maxAttempts = f.maxAttempts;
  if (f.notBefore !== undefined) task.notBefore = f.notBefore;
  task.payload = f.payload;
  task.priority = f.priority;
  task.requires = f.requires;
  if (f.result !== undefined) task.result = f.result;
  task.status = f.status;
  task.updatedAt = f.updatedAt;
  return task;
}

/** The fields a task's life changes; everything else is fixed at submit. */
export type TaskChange = Partial<Pick<TaskFields, "status" | "attempts" | "notBefore" | "lease" | "result" | "error" | "updatedAt">>;

/**
 * A new record: `task` with `change` applied. A key present with the value
 * undefined removes that optional field.
 */
export function changeTask(task: Task, change: TaskChange): Task {
  return buildTask({
    id: task.id,
    kind: task.kind,
    payload: task.payload,
    priority: task.priority,
    dependsOn: task.dependsOn,
    requires: task.requires,
    status: change.status ?? task.status,
    attempts: change.attempts ?? task.attempts,
    maxAttempts: task.maxAttempts,
    notBefore: "notBefore" in change ? change.notBefore : task.notBefore,
    lease: "lease" in change ? change.lease : task.lease,
    result: "result" in change ? change.result : task.result,
    error: "error" in change ? change.error : task.error,
    createdAt: task.createdAt,
    updatedAt: change.updatedAt ?? task.updatedAt,
  });
}
