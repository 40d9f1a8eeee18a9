/**
 * `system.tick` (SPEC §6): the passage of time, as recorded in the log.
 *
 * Expiry depends on the log alone: a lease past its expiresAt stays live (and
 * can still be completed or heartbeated) until a tick at or after that time
 * ends it. A tick first ends every lease with expiresAt <= now (oldest first,
 * then by token), then takes offline every agent not seen for
 * heartbeatTimeoutMs (oldest first, then by id), releasing its leases. Both
 * use min-heaps, so a tick costs O(log n) per thing it changes. Released
 * leases follow the retry policy in lifecycle.ts.
 */
import type { ApplyContext, ApplyOutcome } from "../../core/state-machine.ts";
import { endAttempt, noneReleased, releaseAgentLeases } from "../lifecycle.ts";
import { RESULT_IDS_MAX } from "../limits.ts";
import type { AgentSlot, OrchestratorModel, TaskSlot } from "../model.ts";
import type { CommandResult } from "../schemas.ts";
import { accept } from "../validate.ts";

export function tick(m: OrchestratorModel, ctx: ApplyContext): ApplyOutcome {
  const released = noneReleased();
  m.queue.promote(ctx.nowMs);

  let expired = 0;
  for (let owner = m.expiry.popExpired(ctx.nowMs); owner !== undefined; owner = m.expiry.popExpired(ctx.nowMs)) {
    const slot = owner as TaskSlot;
    const lease = slot.task.lease;
    if (lease === undefined) throw new Error(`expiry index points at task ${JSON.stringify(slot.task.id)} without a lease`);
    endAttempt(m, slot, ctx, { agentId: lease.agentId, code: "lease_expired", token: lease.token }, { retryable: true, backoff: false }, released);
    expired++;
  }

  const agentIds: string[] = [];
  let offline = 0;
  const timeoutMs = m.state.config.heartbeatTimeoutMs;
  for (let owner = m.liveness.popSilent(ctx.nowMs, timeoutMs); owner !== undefined; owner = m.liveness.popSilent(ctx.nowMs, timeoutMs)) {
    const slot = owner as AgentSlot;
    m.putAgent(slot, { ...slot.agent, status: "offline" });
    releaseAgentLeases(m, slot, ctx, "agent_offline", released);
    if (agentIds.length < RESULT_IDS_MAX) agentIds.push(slot.agent.id);
    offline++;
  }
  agentIds.sort();
  const result: CommandResult<"system.tick"> = { agentIds, expired, offline, released: { ...released } };
  return accept(result);
}
