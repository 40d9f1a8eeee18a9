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
  const match = ISO_TIME_PATTERN.exec(text);
  const ms = Date.parse(text);
  if (match === null || Number.isNaN(ms)) throw new InvalidArgumentError("expected an ISO-8601 time such as 2026-01-01T00:00:00Z.");
  // Date.parse rolls an impossible date or time over (2026-02-30 → 2026-03-02, 24:00 → the next day): the fields must read back as written.
  const zone = match[3] as string;
  const offsetMinutes = zone === "Z" ? 0 : (zone.startsWith("-") ? -1 : 1) * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6)));
  const written = text.slice(0, match[1] === undefined ? 16 : 19);
  if (new Date(ms + offsetMinutes * 60_000).toISOString().slice(0, written.length) !== written) {
    throw new InvalidArgumentError(`${text} is not a date and time that exists (expected an ISO-8601 time such as 2026-01-01T00:00:00Z).`);
  }
  return new Date(ms).toISOString();
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
