/**
 * The orchestrator domain (SPEC §5, §6): the reducer the engine runs, the
 * genesis state, and the schemas the HTTP layer publishes.
 */
export { orchestratorMachine, nextDeadlineMs } from "./machine.ts";
export { createGenesisState } from "./genesis.ts";
export type { GenesisOptions } from "./genesis.ts";
export { InvalidStateError } from "./restore.ts";
export type { OrchestratorModel } from "./model.ts";
export { backoffDelayMs } from "./lifecycle.ts";
export * from "./limits.ts";
export * from "./schemas.ts";
export type * from "./types.ts";
export { isTerminal, TERMINAL_STATUSES } from "./types.ts";
