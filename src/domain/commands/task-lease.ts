/**
 * `task.claim`, `task.complete`, `task.fail` (SPEC §6): the lease protocol.
 *
 * A claim takes the best claimable tasks from the ready queue (priority desc,
 * createdAt asc, id asc, requires ⊆ labels, notBefore <= now) and leases each
 * with a fresh fencing token: `leaseTokenSeq + 1`, so tokens strictly increase
 * over all leases ever. It stops early once the leased payloads reach
 * CLAIM_PAYLOAD_CHARS_MAX characters of canonical JSON (a function of the state
 * alone, so replay and restore decide alike). Complete and fail must present the token of the live
 * lease; anything else — an expired-and-requeued lease, a lease released by
 * agent loss, a task never leased — is `stale_lease`.
 */
import { canonicalJSON } from "../../core/json.ts";
import type { ApplyContext, ApplyOutcome } from "../../core/state-machine.ts";
import { CLAIM_PAYLOAD_CHARS_MAX } from "../limits.ts";
import { endAttempt, leaseTo, noneReleased, succeed } from "../lifecycle.ts";
import { TaskSlot } from "../model.ts";
import type { OrchestratorModel } from "../model.ts";
import type { QueueEntry } from "../indexes/ready-queue.ts";
import type { CommandPayload, CommandResult } from "../schemas.ts";
import { accept, refuse } from "../validate.ts";
import type { Refusal } from "../validate.ts";

export function claim(m: OrchestratorModel, p: CommandPayload<"task.claim">, ctx: ApplyContext): ApplyOutcome {
  const agent = m.agents.get(p.agentId);
  if (agent === undefined) return refuse("unknown_agent", `agent ${JSON.stringify(p.agentId)} is not registered`, { agentId: p.agentId });
  if (m.state.phase !== "active") {
    return refuse("invalid_transition", `no claims while the orchestrator is ${m.state.phase}`, { phase: m.state.phase });
  }
  if (agent.agent.status !== "ready") {
    return refuse("invalid_transition", `agent ${JSON.stringify(p.agentId)} is ${agent.agent.status}`, { agentId: p.agentId, status: agent.agent.status });
  }
  const free = agent.agent.capacity - agent.leases.size;
  const wanted = Math.min(p.limit ?? 1, free);
  const leases: CommandResult<"task.claim">["leases"] = [];
  if (wanted > 0) {
    m.queue.promote(ctx.nowMs);
    const groups = m.queue.matching(agent);
    const expiresAt = ctx.nowMs + m.state.config.leaseTtlMs;
    let token = m.state.leaseTokenSeq;
    let payloadChars = 0;
    let admitted = 0;
    // The answer carries every payload: it stops at CLAIM_PAYLOAD_CHARS_MAX (one lease at least).
    const fitsTheAnswer = (entry: QueueEntry): boolean => {
      const slot = entry.owner as TaskSlot;
      slot.payloadChars ??= canonicalJSON(slot.task.payload ?? null).length;
      if (admitted > 0 && payloadChars + slot.payloadChars > CLAIM_PAYLOAD_CHARS_MAX) return false;
      payloadChars += slot.payloadChars;
      admitted++;
      return true;
    };
    // Leasing touches no ready queue: taking them all first picks the same tasks in the same order.
    for (const entry of m.queue.takeUpTo(groups, wanted, fitsTheAnswer)) {
      const slot = entry.owner as TaskSlot;
      token++;
      const task = leaseTo(m, slot, agent, token, expiresAt, ctx.hlc);
      leases.push({ attempt: task.attempts + 1, expiresAt, kind: task.kind, payload: task.payload, taskId: task.id, token });
    }
    m.state.leaseTokenSeq = token;
  }
  const result: CommandResult<"task.claim"> = { leases };
  return accept(result);
}

/** The task's slot when `token` is its live lease, else the refusal. */
function liveLease(m: OrchestratorModel, taskId: string, token: number): TaskSlot | Refusal {
  const slot = m.tasks.get(taskId);
  if (slot === undefined) return refuse("unknown_task", `task ${JSON.stringify(taskId)} does not exist`, { taskId });
  const lease = slot.task.lease;
  if (slot.task.status !== "leased" || lease === undefined || lease.token !== token) {
    return refuse("stale_lease", `token ${token} is not the live lease of task ${JSON.stringify(taskId)}`, {
      taskId,
      token,
      status: slot.task.status,
    });
  }
  return slot;
}

export function complete(m: OrchestratorModel, p: CommandPayload<"task.complete">, ctx: ApplyContext): ApplyOutcome {
  const slot = liveLease(m, p.taskId, p.token);
  if (!(slot instanceof TaskSlot)) return slot;
  const unblocked = succeed(m, slot, ctx.hlc, p.result);
  const result: CommandResult<"task.complete"> = { status: "succeeded", taskId: p.taskId, unblocked };
  return accept(result);
}

export function fail(m: OrchestratorModel, p: CommandPayload<"task.fail">, ctx: ApplyContext): ApplyOutcome {
  const slot = liveLease(m, p.taskId, p.token);
  if (!(slot instanceof TaskSlot)) return slot;
  const tally = noneReleased();
  const task = endAttempt(m, slot, ctx, p.error, { retryable: p.retryable ?? true, backoff: true }, tally);
  const status = task.status === "queued" ? "queued" : "failed";
  const result: CommandResult<"task.fail"> =
    task.notBefore === undefined
      ? { attempts: task.attempts, cancelled: tally.cancelled, status, taskId: p.taskId }
      : { attempts: task.attempts, cancelled: tally.cancelled, notBefore: task.notBefore, status, taskId: p.taskId };
  return accept(result);
}
