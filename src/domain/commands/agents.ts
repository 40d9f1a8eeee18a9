/**
 * `agent.register`, `agent.heartbeat`, `agent.drain`, `agent.remove` (SPEC §6).
 *
 * Decisions beyond the spec:
 *  - `agent.register` is a full declaration: omitted labels/capacity mean the
 *    defaults ([] and 1), not "keep the old ones". Re-registering keeps
 *    `registeredAt` and the agent's leases; a lower capacity only limits
 *    future claims.
 *  - Only register and heartbeat count as signs of life (`lastSeenAt`).
 *  - A heartbeat from an offline agent brings it back to ready (its old leases
 *    were released when it went offline; a late complete gets `stale_lease`).
 *  - `agent.drain` of a draining or offline agent changes nothing.
 */
import type { ApplyContext, ApplyOutcome } from "../../core/state-machine.ts";
import { extendLease, noneReleased, releaseAgentLeases } from "../lifecycle.ts";
import { AgentSlot } from "../model.ts";
import type { OrchestratorModel } from "../model.ts";
import type { CommandPayload, CommandResult } from "../schemas.ts";
import type { Agent } from "../types.ts";
import { accept, refuse } from "../validate.ts";

/** Labels as stored: unique and sorted by UTF-16 code units. */
export function normalizeLabels(labels: readonly string[] | undefined): string[] {
  if (labels === undefined || labels.length === 0) return [];
  return [...new Set(labels)].sort();
}

function sameLabels(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((label, i) => label === b[i]);
}

function unknownAgent(agentId: string) {
  return refuse("unknown_agent", `agent ${JSON.stringify(agentId)} is not registered`, { agentId });
}

export function register(m: OrchestratorModel, p: CommandPayload<"agent.register">, ctx: ApplyContext): ApplyOutcome {
  const existing = m.agents.get(p.agentId);
  let labels = normalizeLabels(p.labels);
  // Keep the same array when nothing changed, so the agent's claim-match memo survives.
  if (existing !== undefined && sameLabels(existing.agent.labels, labels)) labels = existing.agent.labels;
  // Keys in canonical order (see buildTask).
  const agent: Agent = {
    capacity: p.capacity ?? 1,
    id: p.agentId,
    labels,
    lastSeenAt: ctx.hlc,
    registeredAt: existing?.agent.registeredAt ?? ctx.hlc,
    status: "ready",
  };
  const slot = existing ?? new AgentSlot(agent);
  if (existing === undefined) m.agents.set(agent.id, slot);
  m.putAgent(slot, agent);
  m.liveness.track(slot, agent.id, ctx.nowMs);
  const result: CommandResult<"agent.register"> = { agentId: agent.id, created: existing === undefined };
  return accept(result);
}

/** Marks an agent seen now and extends all its leases to now + leaseTtlMs; returns the new expiry. */
export function refreshAgent(m: OrchestratorModel, slot: AgentSlot, ctx: ApplyContext): number {
  const status = slot.agent.status === "offline" ? "ready" : slot.agent.status;
  m.putAgent(slot, { ...slot.agent, status, lastSeenAt: ctx.hlc });
  m.liveness.track(slot, slot.agent.id, ctx.nowMs);
  const expiresAt = ctx.nowMs + m.state.config.leaseTtlMs;
  for (const taskId of slot.leases) {
    const task = m.tasks.get(taskId);
    if (task === undefined) throw new Error(`agent ${JSON.stringify(slot.agent.id)} holds a lease on missing task ${JSON.stringify(taskId)}`);
    extendLease(m, task, expiresAt, ctx.hlc);
  }
  return expiresAt;
}

export function heartbeat(m: OrchestratorModel, p: CommandPayload<"agent.heartbeat">, ctx: ApplyContext): ApplyOutcome {
  const slot = m.agents.get(p.agentId);
  if (slot === undefined) return unknownAgent(p.agentId);
  const expiresAt = refreshAgent(m, slot, ctx);
  // offlineAt tells a worker how often it must beat (heartbeatTimeoutMs may be far shorter than the lease TTL).
  const offlineAt = ctx.nowMs + m.state.config.heartbeatTimeoutMs;
  const result: CommandResult<"agent.heartbeat"> = { agentId: p.agentId, expiresAt, leases: slot.leases.size, offlineAt, status: slot.agent.status };
  return accept(result);
}

export function drain(m: OrchestratorModel, p: CommandPayload<"agent.drain">): ApplyOutcome {
  const slot = m.agents.get(p.agentId);
  if (slot === undefined) return unknownAgent(p.agentId);
  if (slot.agent.status === "ready") m.putAgent(slot, { ...slot.agent, status: "draining" });
  const result: CommandResult<"agent.drain"> = { agentId: p.agentId, status: slot.agent.status };
  return accept(result);
}

export function remove(m: OrchestratorModel, p: CommandPayload<"agent.remove">, ctx: ApplyContext): ApplyOutcome {
  const slot = m.agents.get(p.agentId);
  if (slot === undefined) return unknownAgent(p.agentId);
  const released = noneReleased();
  releaseAgentLeases(m, slot, ctx, "agent_removed", released);
  slot.livenessEntry = null;
  m.deleteAgent(p.agentId);
  const result: CommandResult<"agent.remove"> = { agentId: p.agentId, released: { ...released } };
  return accept(result);
}
