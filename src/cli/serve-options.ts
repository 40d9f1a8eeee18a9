/**
 * `swoosh serve` flags (after commander parsed them, environment variables
 * included) turned into the server's options: the token and the genesis
 * document are read here, so every problem with them is a one-line exit 2
 * before anything starts.
 */
import path from "node:path";
import { InvalidArgumentError } from "commander";
import { NODE_ID_PATTERN } from "../core/hlc.ts";
import type { ServerOptions } from "../server/index.ts";
import { CliError, EXIT_BAD_INPUT } from "./exit-codes.ts";
import { readGenesisDocument } from "./genesis-file.ts";
import { resolveToken } from "./token.ts";

export const LOG_LEVELS = ["silent", "fatal", "error", "warn", "info", "debug", "trace"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface ServeFlags {
  dataDir: string;
  host: string;
  port: number;
  genesis?: string;
  awaitGenesis?: boolean;
  tokenFile?: string;
  snapshotEvery?: number;
  nodeId?: string;
  maxDriftMs?: number;
  bodyLimitBytes?: number;
  logLevel: LogLevel;
}

export function parseNodeId(text: string): string {
  if (!NODE_ID_PATTERN.test(text)) throw new InvalidArgumentError("expected 1 to 64 characters from [A-Za-z0-9_.-].");
  return text;
}

/** The server's logger setting for a level: pino's JSON lines (on stderr, the server's default), or nothing. */
export function loggerFor(level: LogLevel): ServerOptions["logger"] {
  return level === "silent" ? false : { level };
}

/** ServerOptions from parsed flags: reads the token and the genesis file. */
export async function serverOptionsFrom(flags: ServeFlags): Promise<ServerOptions> {
  if (flags.genesis !== undefined && flags.awaitGenesis) {
    throw new CliError("--genesis and --await-genesis exclude each other: one initializes the data dir now, the other waits for POST /state", EXIT_BAD_INPUT);
  }
  const options: ServerOptions = {
    dataDir: path.resolve(flags.dataDir),
    host: flags.host,
    port: flags.port,
    logger: loggerFor(flags.logLevel),
  };
  const token = resolveToken(flags.tokenFile);
  if (token !== undefined) options.token = token;
  if (flags.genesis !== undefined) options.genesis = await readGenesisDocument(flags.genesis);
  if (flags.awaitGenesis) options.awaitGenesis = true;
  if (flags.snapshotEvery !== undefined) options.snapshotEvery = flags.snapshotEvery;
  if (flags.nodeId !== undefined) options.nodeId = flags.nodeId;
  if (flags.maxDriftMs !== undefined) options.maxDriftMs = flags.maxDriftMs;
  if (flags.bodyLimitBytes !== undefined) options.bodyLimitBytes = flags.bodyLimitBytes;
  return options;
}
