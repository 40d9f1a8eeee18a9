/** `swoosh genesis --cluster-id X [config flags]`: prints a genesis document (SPEC §4). */
import type { Command } from "commander";
import { createGenesisState } from "../../domain/index.ts";
import { createGenesis } from "../../engine/genesis.ts";
import { CliError, EXIT_BAD_INPUT } from "../exit-codes.ts";

interface GenesisFlags {
  clusterId: string;
  genesisTime?: string;
  leaseTtlMs?: string;
  heartbeatTimeoutMs?: string;
  maxAttempts?: string;
  backoffBaseMs?: string;
  backoffMaxMs?: string;
}

function positiveInteger(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 1) throw new CliError(`--${name} must be a positive integer, got ${JSON.stringify(text)}`, EXIT_BAD_INPUT);
  return value;
}

export function registerGenesis(program: Command): void {
  program
    .command("genesis")
    .description("print a genesis document for a new cluster")
    .requiredOption("--cluster-id <id>", "the cluster's id")
    .option("--genesis-time <iso>", "creation time (ISO-8601); default now")
    .option("--lease-ttl-ms <ms>", "how long a lease lasts without a heartbeat")
    .option("--heartbeat-timeout-ms <ms>", "silence after which an agent goes offline")
    .option("--max-attempts <n>", "default attempts per task")
    .option("--backoff-base-ms <ms>", "first retry delay")
    .option("--backoff-max-ms <ms>", "longest retry delay")
    .action((flags: GenesisFlags) => {
      const genesisTime = flags.genesisTime ?? new Date().toISOString();
      if (Number.isNaN(Date.parse(genesisTime))) throw new CliError(`--genesis-time must be an ISO-8601 time`, EXIT_BAD_INPUT);
      const config: Record<string, number> = {};
      const entries: Array<[string, string, string | undefined]> = [
        ["leaseTtlMs", "lease-ttl-ms", flags.leaseTtlMs],
        ["heartbeatTimeoutMs", "heartbeat-timeout-ms", flags.heartbeatTimeoutMs],
        ["maxAttempts", "max-attempts", flags.maxAttempts],
        ["backoffBaseMs", "backoff-base-ms", flags.backoffBaseMs],
        ["backoffMaxMs", "backoff-max-ms", flags.backoffMaxMs],
      ];
      for (const [field, flag, text] of entries) {
        const value = positiveInteger(flag, text);
        if (value !== undefined) config[field] = value;
      }
      let state;
      try {
        state = createGenesisState({ clusterId: flags.clusterId, config });
      } catch (error) {
        throw new CliError((error as Error).message, EXIT_BAD_INPUT);
      }
      process.stdout.write(`${JSON.stringify(createGenesis(flags.clusterId, state, new Date(genesisTime).toISOString()), null, 2)}\n`);
    });
}
