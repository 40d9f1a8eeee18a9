/**
 * What an applied command seen on `GET /watch` means to one worker: work may
 * have become claimable, something happened to this agent, the lease TTL
 * changed, or a task it runs was cancelled. Pure: the worker acts on it.
 *
 * Work may be claimable after a submit whose `requires` this agent carries, a
 * completion (dependents unblock), a tick (expired leases requeued, backoffs
 * over), another agent's removal (its leases requeued), or the phase turning
 * active. Not after a failure: a retry waits out its backoff, and the tick
 * the server issues when the backoff is due wakes the workers then (waking
 * every idle worker at the failure only sent claims that found nothing).
 */
import type { LogEntry } from "../types.ts";

export type EventMeaning =
  | { readonly kind: "work" }
  | { readonly kind: "agent-removed" }
  | { readonly kind: "agent-drained" }
  | { readonly kind: "agent-registered" }
  | { readonly kind: "config"; readonly leaseTtlMs?: number; readonly heartbeatTimeoutMs?: number }
  | { readonly kind: "task-cancelled"; readonly taskId: string }
  | { readonly kind: "none" };

const NONE: EventMeaning = { kind: "none" };
const WORK: EventMeaning = { kind: "work" };

function carries(labels: ReadonlySet<string>, required: unknown): boolean {
  if (!Array.isArray(required)) return true;
  return required.every((label) => typeof label === "string" && labels.has(label));
}

export function readEvent(entry: LogEntry, agentId: string, labels: ReadonlySet<string>): EventMeaning {
  const payload = (typeof entry.payload === "object" && entry.payload !== null && !Array.isArray(entry.payload) ? entry.payload : {}) as Record<string, unknown>;
  const ours = payload.agentId === agentId;
  switch (entry.type) {
    case "task.submit":
      return carries(labels, payload.requires) ? WORK : NONE;
    case "task.complete":
    case "system.tick":
      return WORK;
    case "agent.remove":
      return ours ? { kind: "agent-removed" } : WORK;
    case "agent.drain":
      return ours ? { kind: "agent-drained" } : NONE;
    case "agent.register":
      return ours ? { kind: "agent-registered" } : NONE;
    case "orchestrator.setPhase":
      return payload.phase === "active" ? WORK : NONE;
    case "orchestrator.configure":
      return {
        kind: "config",
        ...(typeof payload.leaseTtlMs === "number" ? { leaseTtlMs: payload.leaseTtlMs } : {}),
        ...(typeof payload.heartbeatTimeoutMs === "number" ? { heartbeatTimeoutMs: payload.heartbeatTimeoutMs } : {}),
      };
    case "task.cancel":
      return typeof payload.taskId === "string" ? { kind: "task-cancelled", taskId: payload.taskId } : NONE;
    default:
      return NONE;
  }
}
