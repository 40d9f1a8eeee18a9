/**
 * TypeScript types of the canonical state, derived from the schemas so the
 * two cannot drift apart.
 */
import type { Static } from "@sinclair/typebox";
import type {
  AgentSchema,
  AgentStatusSchema,
  ConfigSchema,
  LeaseSchema,
  OrchestratorStateSchema,
  PhaseSchema,
  TaskSchema,
  TaskStatusSchema,
  TerminalStatusSchema,
} from "./schemas.ts";

export type OrchestratorConfig = Static<typeof ConfigSchema>;
export type Phase = Static<typeof PhaseSchema>;
export type Agent = Static<typeof AgentSchema>;
export type AgentStatus = Static<typeof AgentStatusSchema>;
export type Lease = Static<typeof LeaseSchema>;
export type Task = Static<typeof TaskSchema>;
export type TaskStatus = Static<typeof TaskStatusSchema>;
export type TerminalStatus = Static<typeof TerminalStatusSchema>;
/**
 * The canonical state. `agents` and `tasks` are null-prototype dictionaries in a
 * live model (so `__proto__` is an ordinary key); canonicalJSON accepts them.
 */
export type OrchestratorState = Static<typeof OrchestratorStateSchema>;

export const TERMINAL_STATUSES: readonly TerminalStatus[] = ["succeeded", "failed", "cancelled"];

export function isTerminal(status: TaskStatus): status is TerminalStatus {
  return status === "succeeded" || status === "failed" || status === "cancelled";
}
