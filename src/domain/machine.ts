/**
 * The orchestrator as a `StateMachine` (src/core/state-machine.ts): dispatch,
 * phase gate, and the model accessors.
 *
 * `apply` never throws for a bad command: an unknown type, an invalid payload
 * or a refused transition comes back as `{ok: false, error}` with the model
 * untouched, because every handler validates completely before its first
 * change. A throw means a broken invariant (a bug), and the engine must stop.
 */
import { hlcWallMs, isHlc } from "../core/hlc.ts";
import type { JsonObject, JsonValue } from "../core/json.ts";
import type { ApplyContext, ApplyOutcome, Command, StateMachine } from "../core/state-machine.ts";
import { drain, heartbeat, register, remove } from "./commands/agents.ts";
import { configure, setPhase } from "./commands/orchestrator.ts";
import { tick } from "./commands/system.ts";
import { cancel, prune } from "./commands/task-admin.ts";
import { claim, complete, fail } from "./commands/task-lease.ts";
import { submit } from "./commands/task-submit.ts";
import type { OrchestratorModel } from "./model.ts";
import { createDictionary } from "./model.ts";
import { restoreModel } from "./restore.ts";
import type { CommandPayload, CommandType } from "./schemas.ts";
import { isCommandType, refuse, validatePayload } from "./validate.ts";

type Handler<T extends CommandType> = (m: OrchestratorModel, payload: CommandPayload<T>, ctx: ApplyContext) => ApplyOutcome;

const HANDLERS: { [T in CommandType]: Handler<T> } = {
  "agent.register": register,
  "agent.heartbeat": heartbeat,
  "agent.drain": drain,
  "agent.remove": remove,
  "task.submit": submit,
  "task.claim": claim,
  "task.complete": complete,
  "task.fail": fail,
  "task.cancel": cancel,
  "task.prune": prune,
  "orchestrator.setPhase": setPhase,
  "orchestrator.configure": configure,
  "system.tick": (m, _payload, ctx) => tick(m, ctx),
};

function apply(m: OrchestratorModel, command: Command, ctx: ApplyContext): ApplyOutcome {
  // The context comes from the engine, not the client: a bad one is a bug there.
  if (!isHlc(ctx.hlc) || hlcWallMs(ctx.hlc) !== ctx.nowMs) throw new Error(`apply: context ${JSON.stringify(ctx)} is not a stamped HLC with its wall ms`);
  const type = command.type;
  if (typeof type !== "string" || !isCommandType(type)) {
    return refuse("unknown_command", `unknown command type ${JSON.stringify(type)}`, { type: typeof type === "string" ? type : null });
  }
  const checked = validatePayload(type, command.payload, ctx.payloadIsJson === true);
  if (!checked.ok) return checked;
  // Halted: only orchestrator.* runs (see commands/orchestrator.ts for why ticks stop too).
  if (m.state.phase === "halted" && !type.startsWith("orchestrator.")) {
    return refuse("invalid_transition", `the orchestrator is halted; ${type} is refused`, { phase: "halted" });
  }
  return (HANDLERS[type] as Handler<CommandType>)(m, checked.payload, ctx);
}

function copyDictionary<T>(dict: Record<string, T>): Record<string, T> {
  // Object.assign onto a null-prototype target defines `__proto__` as an own key.
  return Object.assign(createDictionary<T>(), dict);
}

/**
 * A kept result's weight: the characters of the payloads a claim's leases
 * carry (JSON text); other results weigh nothing (they are small, and the
 * table's count bounds them). Reads the result alone, whatever its shape.
 */
export function claimedPayloadChars(result: JsonValue): number {
  const leases = typeof result === "object" && result !== null && !Array.isArray(result) ? (result as { leases?: unknown }).leases : undefined;
  if (!Array.isArray(leases)) return 0;
  let chars = 0;
  for (const lease of leases) {
    const payload = typeof lease === "object" && lease !== null ? (lease as { payload?: unknown }).payload : undefined;
    chars += JSON.stringify(payload ?? null).length;
  }
  return chars;
}

export const orchestratorMachine: StateMachine<OrchestratorModel> = {
  name: "orchestrator",
  restore: restoreModel,
  apply,
  state: (m) => m.state as unknown as JsonObject,
  view: (m) => {
    const s = m.state;
    return { ...s, config: { ...s.config }, agents: copyDictionary(s.agents), tasks: copyDictionary(s.tasks) } as unknown as JsonObject;
  },
  capture: (m) => m.capture(),
  outcomeWeight: claimedPayloadChars,
};

/**
 * The earliest wall ms at which a `system.tick` would change something (a
 * lease expiring, an agent going silent) or a backoff ends, or undefined when
 * nothing is pending. Lets the engine tick only when needed. Reads the
 * indexes only (it may discard dead index entries, never state).
 */
export function nextDeadlineMs(m: OrchestratorModel): number | undefined {
  let next: number | undefined;
  for (const candidate of [m.queue.nextDueMs(), m.expiry.nextExpiryMs(), m.liveness.nextSilentMs(m.state.config.heartbeatTimeoutMs)]) {
    if (candidate !== undefined && (next === undefined || candidate < next)) next = candidate;
  }
  return next;
}
