/** `swoosh genesis --cluster-id X [config flags]`: prints a genesis document (SPEC §4). */
import { InvalidArgumentError } from "commander";
import type { Command } from "commander";
import { createGenesisState } from "../../domain/index.ts";
import { createGenesis } from "../../engine/genesis.ts";
import { CliError, EXIT_BAD_INPUT } from "../exit-codes.ts";
import { integerIn } from "../flags.ts";

/** Decimal digits only (no 0x10, 1e3 or 1.0), as serve's flags. */
const positiveInteger = integerIn(1, Number.MAX_SAFE_INTEGER);

interface GenesisFlags {
  clusterId: string;
  genesisTime?: string;
  leaseTtlMs?: number;
  heartbeatTimeoutMs?: number;
  maxAttempts?: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
}

/** An ISO-8601 date and time with a zone, as `toISOString` writes it (seconds and fraction optional): no other date format. */
const ISO_TIME_PATTERN = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

function isoTime(text: string): string {
  if (!ISO_TIME_PATTERN.test(text) || Number.isNaN(Date.parse(text))) throw new InvalidArgumentError("expected an ISO-8601 time such as 2026-01-01T00:00:00Z.");
  return new Date(text).toISOString();
}

export function registerGenesis(program: Command): void {
  program
    .command("genesis")
    .description("print a genesis document for a new cluster")
    .requiredOption("--cluster-id <id>", "the cluster's id")
    .option("--genesis-time <iso>", "creation time (ISO-8601, e.g. 2026-01-01T00:00:00Z); default now", isoTime)
    .option("--lease-ttl-ms <ms>", "how long a lease lasts without a heartbeat", positiveInteger)
    .option("--heartbeat-timeout-ms <ms>", "silence after which an agent goes offline", positiveInteger)
    .option("--max-attempts <n>", "default attempts per task", positiveInteger)
    .option("--backoff-base-ms <ms>", "first retry delay", positiveInteger)
    .option("--backoff-max-ms <ms>", "longest retry delay", positiveInteger)
    .action((flags: GenesisFlags) => {
      const genesisTime = flags.genesisTime ?? new Date().toISOString();
      const config: Record<string, number> = {};
      for (const field of ["leaseTtlMs", "heartbeatTimeoutMs", "maxAttempts", "backoffBaseMs", "backoffMaxMs"] as const) {
        const value = flags[field];
        if (value !== undefined) config[field] = value;
      }
      let state;
      try {
        state = createGenesisState({ clusterId: flags.clusterId, config });
      } catch (error) {
        throw new CliError((error as Error).message, EXIT_BAD_INPUT);
      }
      process.stdout.write(`${JSON.stringify(createGenesis(flags.clusterId, state, genesisTime), null, 2)}\n`);
    });
}
