/**
 * A tiny state machine that drives the engine in tests, so the engine's tests
 * never depend on the orchestrator domain. State: a counter and a map of
 * string keys (ids like `__proto__` included) to numbers.
 */
import type { JsonObject, JsonValue } from "../../src/core/json.ts";
import type { ApplyContext, ApplyOutcome, Command, StateMachine } from "../../src/core/state-machine.ts";

export interface CounterState extends JsonObject {
  clusterId: string;
  count: number;
  /** Sum of every index applied: catches an entry applied twice or skipped. */
  indexSum: number;
  lastNowMs: number;
  values: { [key: string]: number };
}

function nullProto<T extends object>(from: T): T {
  return Object.assign(Object.create(null) as T, Object.fromEntries(Object.entries(from))) as T;
}

export function counterGenesisState(clusterId: string): CounterState {
  return { clusterId, count: 0, indexSum: 0, lastNowMs: 0, values: Object.create(null) as { [key: string]: number } };
}

const refuse = (message: string): ApplyOutcome => ({ ok: false, error: { code: "bad_request", message } });

export const counterMachine: StateMachine<CounterState> = {
  name: "counter",
  restore(state: JsonObject): CounterState {
    const s = state as CounterState;
    // Null-prototype map: a "__proto__" key is an ordinary own key.
    const values = Object.create(null) as { [key: string]: number };
    for (const [k, v] of Object.entries(s.values)) values[k] = v;
    return { ...s, values };
  },
  apply(state: CounterState, command: Command, context: ApplyContext): ApplyOutcome {
    const payload = command.payload as { [key: string]: JsonValue };
    switch (command.type) {
      case "counter.add": {
        const amount = payload.amount;
        if (typeof amount !== "number" || !Number.isSafeInteger(amount)) return refuse("amount must be an integer");
        state.count += amount;
        break;
      }
      case "counter.set": {
        const { key, value } = payload;
        if (typeof key !== "string" || typeof value !== "number") return refuse("key must be a string and value a number");
        // A collection (first level) may change in place; view() copies it (reducer rule 2).
        Object.defineProperty(state.values, key, { value, enumerable: true, writable: true, configurable: true });
        break;
      }
      case "counter.expect": {
        // Refused unless the count equals `equals`: a validation that depends on state.
        if (payload.equals !== state.count) return refuse(`count is ${state.count}, not ${String(payload.equals)}`);
        break;
      }
      default:
        return { ok: false, error: { code: "unknown_command", message: `unknown command ${command.type}` } };
    }
    state.indexSum += context.index;
    state.lastNowMs = context.nowMs;
    return { ok: true, result: { count: state.count, index: context.index } };
  },
  state: (s) => s,
  view: (s) => ({ ...s, values: nullProto(s.values) }),
};
