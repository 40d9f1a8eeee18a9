/**
 * `task.submit` (SPEC §6): create a task, blocked, queued or — when a
 * dependency already failed or was cancelled — cancelled at birth.
 *
 * `dependsOn` may only name tasks that exist, so the graph is acyclic by
 * construction. Submitting the same id with the same spec again is idempotent
 * (`created: false`, nothing changes); a different spec is `task_exists`. The
 * spec compared is kind, payload (canonical JSON), priority, dependsOn (in the
 * order given), requires (as a set) and maxAttempts when the resubmission
 * states one. An omitted maxAttempts is not compared: it means "the
 * configured default", which an operator may have changed since the task was
 * made, and a producer retrying the very request it sent before must not get
 * `task_exists` for that. (Only refusals change: replaying a log made before
 * this rule gives the same results.)
 * A pruned task is forgotten: its id can be submitted anew.
 */
import { canonicalJSON } from "../../core/json.ts";
import type { JsonValue } from "../../core/json.ts";
import type { ApplyContext, ApplyOutcome } from "../../core/state-machine.ts";
import { enqueue, linkDependencies, trackIfPrunable } from "../lifecycle.ts";
import { buildTask, TaskSlot } from "../model.ts";
import type { OrchestratorModel } from "../model.ts";
import type { CommandPayload, CommandResult } from "../schemas.ts";
import { RESULT_IDS_MAX } from "../limits.ts";
import type { Task, TaskStatus } from "../types.ts";
import { accept, refuse } from "../validate.ts";
import { normalizeLabels } from "./agents.ts";

/** Shared so that a million dependency-free tasks do not carry a million empty arrays. */
const NO_IDS: string[] = Object.freeze([]) as unknown as string[];

/** `maxAttempts` undefined: the resubmission states none, and any task's matches. */
function sameSpec(t: Task, kind: string, payload: JsonValue, priority: number, dependsOn: readonly string[], requires: readonly string[], maxAttempts: number | undefined): boolean {
  return (
    t.kind === kind &&
    t.priority === priority &&
    (maxAttempts === undefined || t.maxAttempts === maxAttempts) &&
    t.dependsOn.length === dependsOn.length &&
    t.dependsOn.every((id, i) => id === dependsOn[i]) &&
    t.requires.length === requires.length &&
    t.requires.every((label, i) => label === requires[i]) &&
    canonicalJSON(t.payload) === canonicalJSON(payload)
  );
}

export function submit(m: OrchestratorModel, p: CommandPayload<"task.submit">, ctx: ApplyContext): ApplyOutcome {
  const dependsOn = p.dependsOn === undefined || p.dependsOn.length === 0 ? NO_IDS : p.dependsOn;
  // One dependency (or none) cannot repeat: no Set to allocate for the common case.
  const seen = dependsOn.length > 1 ? new Set<string>() : null;
  for (let i = 0; seen !== null && i < dependsOn.length; i++) {
    const id = dependsOn[i] as string;
    if (seen.has(id)) {
      return refuse("bad_request", `task.submit: /dependsOn/${i}: duplicate dependency ${JSON.stringify(id)}`, {
        path: `/dependsOn/${i}`,
        message: "duplicate dependency",
      });
    }
    seen.add(id);
  }
  const requires = p.requires === undefined || p.requires.length === 0 ? NO_IDS : normalizeLabels(p.requires);
  const payload = p.payload ?? null;
  const priority = p.priority ?? 0;

  const existing = m.tasks.get(p.taskId);
  if (existing !== undefined) {
    if (!sameSpec(existing.task, p.kind, payload, priority, dependsOn, requires, p.maxAttempts)) {
      return refuse("task_exists", `task ${JSON.stringify(p.taskId)} exists with another spec`, { taskId: p.taskId });
    }
    const same: CommandResult<"task.submit"> = { created: false, status: existing.task.status, taskId: p.taskId };
    return accept(same);
  }

  const missing: string[] = [];
  let firstMissingIndex = -1;
  for (let i = 0; i < dependsOn.length; i++) {
    const id = dependsOn[i] as string;
    if (m.tasks.has(id)) continue;
    if (firstMissingIndex < 0) firstMissingIndex = i;
    if (missing.length < RESULT_IDS_MAX) missing.push(id);
  }
  if (missing.length > 0) {
    return refuse("unknown_task", `task.submit: dependency ${JSON.stringify(missing[0])} does not exist`, {
      path: `/dependsOn/${firstMissingIndex}`,
      missing,
    });
  }

  // Validated; from here on the model changes.
  let pendingDeps = 0;
  let error: JsonValue | undefined;
  for (const id of dependsOn) {
    const status = (m.tasks.get(id) as TaskSlot).task.status;
    if (status === "succeeded") continue;
    pendingDeps++;
    if (error === undefined && (status === "failed" || status === "cancelled")) {
      error = { code: status === "failed" ? "dependency_failed" : "dependency_cancelled", taskId: id };
    }
  }
  const status: TaskStatus = error !== undefined ? "cancelled" : pendingDeps > 0 ? "blocked" : "queued";
  const task = buildTask({
    id: p.taskId,
    kind: p.kind,
    payload,
    priority,
    dependsOn,
    requires,
    status,
    attempts: 0,
    maxAttempts: p.maxAttempts ?? m.state.config.maxAttempts,
    error,
    createdAt: ctx.hlc,
    updatedAt: ctx.hlc,
  });
  const slot = new TaskSlot(task);
  slot.pendingDeps = status === "blocked" ? pendingDeps : 0;
  m.addTask(slot);
  if (status === "cancelled") {
    trackIfPrunable(m, slot);
  } else {
    linkDependencies(m, slot);
    if (status === "queued") enqueue(m, slot);
  }
  const result: CommandResult<"task.submit"> = { created: true, status, taskId: task.id };
  return accept(result);
}
