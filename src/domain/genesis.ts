/**
 * The genesis state of a new cluster (SPEC §4, §5): no agents, no tasks,
 * phase active, the default configuration overridden by `config`.
 */
import { SwooshError } from "../core/errors.ts";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import type { JsonObject } from "../core/json.ts";
import { DEFAULT_CONFIG } from "./limits.ts";
import { ConfigSchema, OrchestratorStateSchema } from "./schemas.ts";
import type { OrchestratorConfig, OrchestratorState } from "./types.ts";

const configCheck = TypeCompiler.Compile(ConfigSchema);
const stateCheck = TypeCompiler.Compile(OrchestratorStateSchema);

export interface GenesisOptions {
  clusterId: string;
  config?: Partial<OrchestratorConfig>;
}

/** The genesis state; throws `SwooshError("bad_request")` naming the offending field. */
export function createGenesisState(options: GenesisOptions): JsonObject {
  const config: Record<string, unknown> = { ...DEFAULT_CONFIG };
  // An explicit undefined (an unset CLI flag) means "the default", not "no value".
  for (const [key, value] of Object.entries(options.config ?? {})) if (value !== undefined) config[key] = value;
  if (!configCheck.Check(config)) {
    const first = configCheck.Errors(config).First();
    throw new SwooshError("bad_request", `config ${first?.path ?? ""}: ${first?.message ?? "invalid"}`, { path: `/config${first?.path ?? ""}` });
  }
  if ((config.backoffBaseMs as number) > (config.backoffMaxMs as number)) {
    throw new SwooshError("bad_request", "config: backoffBaseMs exceeds backoffMaxMs", { path: "/config/backoffBaseMs" });
  }
  const state: OrchestratorState = {
    schemaVersion: 1,
    clusterId: options.clusterId,
    phase: "active",
    config: config as OrchestratorConfig,
    leaseTokenSeq: 0,
    agents: {},
    tasks: {},
  };
  if (!stateCheck.Check(state)) {
    const first = stateCheck.Errors(state).First();
    throw new SwooshError("bad_request", `genesis ${first?.path ?? ""}: ${first?.message ?? "invalid"}`, { path: first?.path ?? "" });
  }
  return state as unknown as JsonObject;
}
