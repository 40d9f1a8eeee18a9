/**
 * The library's public surface (SPEC §10): embed the engine without HTTP,
 * with the same guarantees.
 *
 *     import { openSwoosh, computeStateHash, canonicalJSON } from "swoosh";
 *     const swoosh = await openSwoosh({ dataDir: "./data" });
 *     await swoosh.submit({ type: "task.submit", payload: { taskId: "t1", kind: "build" } });
 */
import { randomUUID } from "node:crypto";
import { createGenesisState, orchestratorMachine } from "./domain/index.ts";
import type { OrchestratorModel } from "./domain/index.ts";
import type { CommandInput, CommandOutcome, Engine, SubmitOptions } from "./engine/engine.ts";
import type { CommandPayload, CommandResult, CommandType } from "./domain/schemas.ts";
import { createGenesis } from "./engine/genesis.ts";
import { openEngine } from "./engine/open.ts";
import { siblingModuleUrl } from "./core/module-url.ts";
import type { OpenEngineOptions } from "./engine/open.ts";

export { canonicalJSON, assertJsonValue, JsonValueError } from "./core/json.ts";
export type { JsonValue, JsonObject } from "./core/json.ts";
export { computeStateHash } from "./core/hash.ts";
export { HybridClock, encodeHlc, decodeHlc } from "./core/hlc.ts";
export type { Clock, HlcTimestamp } from "./core/hlc.ts";
export { SwooshError, ERROR_STATUS } from "./core/errors.ts";
export type { ErrorCode, ErrorBody } from "./core/errors.ts";
export type { StateMachine, Command, ApplyContext, ApplyOutcome } from "./core/state-machine.ts";
export { Engine } from "./engine/engine.ts";
export type { CommandInput, CommandOutcome, AppliedEvent, SubmitOptions } from "./engine/engine.ts";
export type { CommandPayload, CommandResult, CommandType } from "./domain/schemas.ts";
export { openEngine, initializeDataDir } from "./engine/open.ts";
export { createGenesis, checkGenesis } from "./engine/genesis.ts";
export type { GenesisDocument } from "./engine/genesis.ts";
// The shapes of the orchestrator's state (SPEC §5), for reading what readState and results hold.
export type { OrchestratorState, OrchestratorConfig, Agent, AgentStatus, Task, TaskStatus, TerminalStatus, Lease, Phase } from "./domain/types.ts";
export { FinalSnapshotError, RecoveryError } from "./engine/errors.ts";
export { verifyDataDir } from "./engine/verify.ts";
export { startTicker } from "./engine/ticker.ts";
export type { TickerSettings, TickerLog } from "./engine/ticker.ts";
export { orchestratorMachine, createGenesisState } from "./domain/index.ts";

export type SwooshOptions = Omit<OpenEngineOptions<OrchestratorModel>, "machine">;

/** A genesis for a new cluster with the default configuration. */
export function defaultGenesis(clusterId = `swoosh-${randomUUID().slice(0, 8)}`) {
  return createGenesis(clusterId, createGenesisState({ clusterId }), new Date().toISOString());
}

/** Where a time-travel worker thread finds the orchestrator's reducer. */
const ORCHESTRATOR_MACHINE_MODULE = { module: siblingModuleUrl("./domain/machine", import.meta.url), exportName: "orchestratorMachine" };

/** An orchestrator command (SPEC §6) whose payload is checked against its type's schema at compile time. */
export interface SwooshCommand<T extends CommandType = CommandType> extends CommandInput {
  readonly type: T;
  readonly payload: CommandPayload<T>;
}

/** What `submit` resolves with for a command of type `T`: its result in the shape SPEC §6 gives for that type. */
export interface SwooshOutcome<T extends CommandType = CommandType> extends CommandOutcome {
  readonly result: CommandResult<T>;
}

/**
 * The engine `openSwoosh` gives: an `Engine` whose `submit` knows the
 * orchestrator's commands, so a payload is checked while compiling and a
 * result needs no cast. A command whose type is only known at run time (a
 * `string`) still goes through the untyped overload; the engine validates
 * every payload at run time either way.
 */
export interface Swoosh extends Engine<OrchestratorModel> {
  submit<T extends CommandType>(input: SwooshCommand<T>, options?: SubmitOptions): Promise<SwooshOutcome<T>>;
  // Not for a literal command type: one that fails the typed overload above must stay an error, not fall through to here.
  submit<S extends string>(input: CommandInput & { readonly type: S extends CommandType ? never : S }, options?: SubmitOptions): Promise<CommandOutcome>;
}

/** Opens (recovering) or initializes an orchestrator in `dataDir`. */
export function openSwoosh(options: SwooshOptions): Promise<Swoosh> {
  // Only the types narrow: the results the reducer gives are the shapes its result schemas describe (test/domain holds them to it).
  return openEngine<OrchestratorModel>({ defaultGenesis: () => defaultGenesis(), timeTravelMachine: ORCHESTRATOR_MACHINE_MODULE, ...options, machine: orchestratorMachine }) as Promise<Swoosh>;
}
