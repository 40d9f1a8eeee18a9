/**
 * `swoosh serve`: runs the HTTP server (SPEC §7) on a data directory until
 * SIGTERM or SIGINT, then closes it cleanly and exits 0. A signal during a
 * long recovery stops it there (exit 0, nothing written).
 *
 * Every flag has an environment variable; a flag on the command line wins.
 * Startup prints one block to stdout (URL, data dir, genesis hash, recovered
 * index) so scripts can read the URL when `--port 0` picked a free port; every
 * log line goes to stderr. Exit codes: 2 for bad flags, a bad genesis file, a
 * genesis refused by the data dir, or a data dir that fails recovery; 1 for any
 * other failure (port in use, data dir locked by a live process, a WAL flush
 * failing while running).
 */
import { isLoopbackAddress } from "../../server/host-guard.ts";
import { Option } from "commander";
import type { Command } from "commander";
import { DataDirNotDirectoryError, DiskSpaceError, RecoveryError } from "../../engine/errors.ts";
import { LogAccessError, isAccessRefusal } from "../../storage/errors.ts";
import type { RunningServer, ServerOptions } from "../../server/index.ts";
import { createLogger } from "../../server/logger.ts";
import { CliError, EXIT_BAD_INPUT, EXIT_RUNTIME_FAILURE } from "../exit-codes.ts";
import { integerIn, nonEmpty, parsePort } from "../flags.ts";
import { LOG_LEVELS, parseNodeId, serverOptionsFrom } from "../serve-options.ts";
import type { ServeFlags } from "../serve-options.ts";
import { watchShutdownSignals } from "../shutdown.ts";
import { packageVersion } from "../version.ts";

/** After close() resolved, how long open handles may keep the process alive before it exits anyway. */
const EXIT_GRACE_MS = 5_000;


/** The startup block on stdout: one `key: value` per line, stable for scripts. */
export function startupBlock(server: RunningServer, options: ServerOptions): string {
  const genesis = server.genesisHash ?? "none yet: waiting for a genesis document on POST /state";
  const auth = options.token !== undefined ? "bearer token required (all but /healthz)" : "none";
  return [
    `swoosh ${packageVersion()} serving`,
    `  url:             ${server.url}`,
    `  data dir:        ${server.dataDir}`,
    `  genesis hash:    ${genesis}`,
    `  recovered index: ${server.recoveredIndex}`,
    `  auth:            ${auth}`,
    "",
  ].join("\n");
}

/** Turns a startup failure into a CLI error with SPEC §9's exit code. */
export function startupError(error: unknown, options: Pick<ServerOptions, "dataDir" | "host" | "port">): unknown {
  // Its message names the data dir and the file in the way; the "bad_request" code would add nothing for an operator.
  if (error instanceof DataDirNotDirectoryError) return new CliError(error.message, EXIT_BAD_INPUT);
  // Its message names the dir and the free space; "unavailable" would add nothing.
  if (error instanceof DiskSpaceError) return new CliError(error.message, EXIT_RUNTIME_FAILURE);
  // Its message names the WAL's dir, the file and what this user lacks (read, or write): "cannot be written" would say less.
  if (error instanceof LogAccessError) return new CliError(error.message, EXIT_RUNTIME_FAILURE);
  if (error instanceof RecoveryError) {
    return new CliError(
      `data dir ${options.dataDir} failed recovery: ${error.message}\n` +
        `  run \`swoosh verify --data-dir ${options.dataDir}\` for a full report; DURABILITY.md "Recovery procedures" says what to do`,
      EXIT_BAD_INPUT,
    );
  }
  const { code, syscall } = (error ?? {}) as NodeJS.ErrnoException;
  // EACCES is also what a data dir this user cannot write gives: only listen's own failures are about the address.
  // A --host that names no address at all is bad usage; one that cannot be had now (in use, not this machine's) a runtime failure.
  if (syscall === "getaddrinfo" || code === "ENOTFOUND") {
    return new CliError(`cannot listen on ${options.host}:${options.port}: --host is not an address or a name this machine resolves (${(error as Error).message})`, EXIT_BAD_INPUT);
  }
  if (syscall === "listen" || syscall === "bind" || code === "EADDRINUSE" || code === "EADDRNOTAVAIL") {
    return new CliError(`cannot listen on ${options.host}:${options.port}: ${(error as Error).message}`, EXIT_RUNTIME_FAILURE);
  }
  if (code === "ENOSPC") {
    return new CliError(`data dir ${options.dataDir} cannot be written: the disk is full (${(error as Error).message}); free space on its file system, then start again`, EXIT_RUNTIME_FAILURE);
  }
  if (isAccessRefusal(code)) {
    return new CliError(`data dir ${options.dataDir} cannot be written: ${(error as Error).message}`, EXIT_RUNTIME_FAILURE);
  }
  // A data dir path that is a file, or under one: bad usage, named as such.
  if (code === "ENOTDIR" || code === "EEXIST") return new CliError(`data dir ${options.dataDir} is not a directory (${(error as Error).message})`, EXIT_BAD_INPUT);
  return error;
}

/** Why a startup was aborted: the shutdown signal that came first. */
class StartupStopped extends Error {
  constructor(readonly signal: string) {
    super(`${signal} received during startup`);
  }
}

async function serve(flags: ServeFlags): Promise<void> {
  const options = await serverOptionsFrom(flags);
  // The command's own lines go out as the server's do: JSON lines on stderr, at the same level (silent is silent).
  const logger = createLogger(options.logger);
  if (options.token === undefined && !isLoopbackAddress(flags.host)) {
    logger.warn(`listening on ${flags.host} without a token: anyone who can reach it can change the state (set --token-file or SWOOSH_TOKEN)`);
  }
  // A WAL flush failing while running is left to the server's default onFatal:
  // it logs, lets in-flight requests get their 503, and exits 1 (SPEC G1).
  const signals = watchShutdownSignals((line, level) => logger[level](line));
  // A first Ctrl-C during a long recovery stops it: there is nothing to close yet, and recovery writes nothing.
  const startup = new AbortController();
  void signals.requested.then((signal) => startup.abort(new StartupStopped(signal)));
  let server: RunningServer;
  try {
    // Loaded here, not at the top: `swoosh hash` and friends need no HTTP stack.
    const { startServer } = await import("../../server/index.ts");
    server = await startServer({ ...options, signal: startup.signal });
  } catch (error) {
    signals.dispose();
    if (error instanceof StartupStopped) {
      logger.info(`${error.signal} received during startup: stopped before serving (the data dir is as it was)`);
      return;
    }
    throw startupError(error, options);
  }
  process.stdout.write(startupBlock(server, options));
  await signals.requested;
  try {
    await server.close();
  } finally {
    signals.dispose();
  }
  // The server logged "swoosh stopped".
  // A handle the server forgot must not keep a stopped server's process alive.
  setTimeout(() => {
    logger.warn(`still running ${EXIT_GRACE_MS} ms after close: exiting`);
    process.exit(process.exitCode ?? 0);
  }, EXIT_GRACE_MS).unref();
}

export function registerServe(program: Command): void {
  program
    .command("serve")
    .description("run the HTTP API on a data directory until SIGTERM, SIGINT or SIGHUP (an empty data dir gets a default genesis)")
    .addOption(new Option("--data-dir <dir>", "the data directory (genesis.json, wal/, snapshots/)").env("SWOOSH_DATA_DIR").default("./data").argParser(nonEmpty))
    .addOption(new Option("--host <host>", "address to bind; keep 127.0.0.1 unless a token is set").env("SWOOSH_HOST").default("127.0.0.1").argParser(nonEmpty))
    .addOption(new Option("--port <port>", "TCP port; 0 picks a free one (the URL is printed)").env("SWOOSH_PORT").default(7777).argParser(parsePort))
    .addOption(new Option("--genesis <file>", "initialize an empty data dir with this genesis document (`swoosh genesis` prints one); on an initialized dir it must be the same genesis").env("SWOOSH_GENESIS"))
    .addOption(new Option("--await-genesis", "on an empty data dir, wait for a genesis on POST /state instead of creating a default one"))
    .addOption(new Option("--token-file <file>", "require `Authorization: Bearer <token>` with the token in this file (SWOOSH_TOKEN holds the token itself)").env("SWOOSH_TOKEN_FILE"))
    .addOption(new Option("--snapshot-every <n>", "take a snapshot after at least N commands (with a large state, about one per 256 bytes of the last snapshot); 0 only at shutdown (default 10000)").env("SWOOSH_SNAPSHOT_EVERY").argParser(integerIn(0, Number.MAX_SAFE_INTEGER)))
    .addOption(new Option("--node-id <id>", "this node's id in HLC stamps, [A-Za-z0-9_.-]{1,64} (default node-1)").env("SWOOSH_NODE_ID").argParser(parseNodeId))
    .addOption(new Option("--max-drift-ms <ms>", "refuse a client HLC further ahead of local time than this (default 60000)").env("SWOOSH_MAX_DRIFT_MS").argParser(integerIn(0, Number.MAX_SAFE_INTEGER)))
    .addOption(new Option("--body-limit-bytes <bytes>", "largest request body; larger is 413 (default 1048576)").env("SWOOSH_BODY_LIMIT_BYTES").argParser(integerIn(1, 2 ** 30)))
    .addOption(new Option("--log-level <level>", "server log level; logs are JSON lines on stderr").env("SWOOSH_LOG_LEVEL").choices(LOG_LEVELS).default("info"))
    .action((flags: ServeFlags) => serve(flags));
}
