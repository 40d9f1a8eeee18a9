/**
 * `orchestrator.setPhase` and `orchestrator.configure` (SPEC §6).
 *
 * Phases: `active` serves everything; `draining` refuses claims; `halted`
 * refuses every command but `orchestrator.*` (system.tick included: while
 * halted nothing expires, because agents cannot heartbeat). Leaving `halted`
 * therefore restarts the clocks the halt froze: every agent not offline is
 * seen now and every live lease expires at now + leaseTtlMs, as if each agent
 * had heartbeated at the moment of resumption. Without that, the first tick
 * after a long halt would expire every lease and take every agent offline for
 * a silence the orchestrator itself imposed.
 *
 * Configure takes any subset of the config fields. Each is range-checked by
 * the schema; the merged config must keep backoffBaseMs <= backoffMaxMs.
 * Changes apply from the next command on: existing leases keep their expiry,
 * existing tasks keep their maxAttempts; heartbeatTimeoutMs applies at once.
 */
import type { ApplyContext, ApplyOutcome } from "../../core/state-machine.ts";
import { canonicalConfig } from "../model.ts";
import type { OrchestratorModel } from "../model.ts";
import type { CommandPayload, CommandResult } from "../schemas.ts";
import type { OrchestratorConfig } from "../types.ts";
import { accept, refuse } from "../validate.ts";
import { refreshAgent } from "./agents.ts";

export function setPhase(m: OrchestratorModel, p: CommandPayload<"orchestrator.setPhase">, ctx: ApplyContext): ApplyOutcome {
  const previous = m.state.phase;
  m.state.phase = p.phase;
  if (previous === "halted" && p.phase !== "halted") {
    for (const agent of m.agents.values()) {
      // Order-free: each agent and lease gets the same now-based values.
      if (agent.agent.status !== "offline") refreshAgent(m, agent, ctx);
    }
  }
  const result: CommandResult<"orchestrator.setPhase"> = { phase: p.phase, previous };
  return accept(result);
}

export function configure(m: OrchestratorModel, p: CommandPayload<"orchestrator.configure">): ApplyOutcome {
  const config: OrchestratorConfig = canonicalConfig({ ...m.state.config, ...p });
  if (config.backoffBaseMs > config.backoffMaxMs) {
    const path = p.backoffBaseMs !== undefined ? "/backoffBaseMs" : "/backoffMaxMs";
    return refuse("bad_request", `orchestrator.configure: backoffBaseMs ${config.backoffBaseMs} exceeds backoffMaxMs ${config.backoffMaxMs}`, {
      path,
      message: "backoffBaseMs must not exceed backoffMaxMs",
    });
  }
  m.state.config = config;
  const result: CommandResult<"orchestrator.configure"> = { config: { ...config } };
  return accept(result);
}
