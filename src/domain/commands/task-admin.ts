/**
 * `task.cancel` and `task.prune` (SPEC §6).
 *
 * Cancel reaches every non-terminal descendant through the reverse-dependency
 * index, at a cost proportional to what it cancels; a leased task's lease ends
 * (a later complete is `stale_lease`) without counting as an attempt, since the
 * task did not fail. Prune removes terminal tasks last updated before `before`
 * that no live task depends on, oldest first, using the prune index; with a
 * `limit`, at most that many, so that each command holds the event loop for a
 * bounded time (`more` tells the caller to go on).
 */
import type { ApplyContext, ApplyOutcome } from "../../core/state-machine.ts";
import { cancelTask, removeTask } from "../lifecycle.ts";
import { RESULT_IDS_MAX } from "../limits.ts";
import type { OrchestratorModel, TaskSlot } from "../model.ts";
import type { CommandPayload, CommandResult } from "../schemas.ts";
import { isTerminal, TERMINAL_STATUSES } from "../types.ts";
import { accept, refuse } from "../validate.ts";

export function cancel(m: OrchestratorModel, p: CommandPayload<"task.cancel">, ctx: ApplyContext): ApplyOutcome {
  const slot = m.tasks.get(p.taskId);
  if (slot === undefined) return refuse("unknown_task", `task ${JSON.stringify(p.taskId)} does not exist`, { taskId: p.taskId });
  if (isTerminal(slot.task.status)) {
    return refuse("invalid_transition", `task ${JSON.stringify(p.taskId)} is already ${slot.task.status}`, {
      taskId: p.taskId,
      status: slot.task.status,
    });
  }
  const ids = cancelTask(m, slot, ctx.hlc, p.reason);
  ids.sort();
  const result: CommandResult<"task.cancel"> = { cancelled: ids.length, taskId: p.taskId, taskIds: ids.slice(0, RESULT_IDS_MAX) };
  return accept(result);
}

export function prune(m: OrchestratorModel, p: CommandPayload<"task.prune">): ApplyOutcome {
  const wanted = TERMINAL_STATUSES.filter((status) => p.statuses?.includes(status) ?? true);
  const limit = p.limit ?? Number.POSITIVE_INFINITY;
  let pruned = 0;
  const ids: string[] = [];
  // Fixed status order, oldest first within each: the same removals everywhere.
  for (const status of wanted) {
    while (pruned < limit) {
      const owner = m.prunable.popOlderThan(status, p.before);
      if (owner === undefined) break;
      const slot = owner as TaskSlot;
      if (ids.length < RESULT_IDS_MAX) ids.push(slot.task.id);
      removeTask(m, slot);
      pruned++;
    }
  }
  ids.sort();
  // `more` only with a limit, so the result of a prune without one stays as it
  // always was; keys in canonical order, as every result is built.
  const result: CommandResult<"task.prune"> =
    p.limit === undefined ? { pruned, taskIds: ids } : { more: wanted.some((status) => m.prunable.hasOlderThan(status, p.before)), pruned, taskIds: ids };
  return accept(result);
}
