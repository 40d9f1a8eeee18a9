/**
 * The `swoosh` CLI (SPEC §9). Exit codes: 0 ok, 1 runtime failure, 2 bad
 * usage or bad data. Errors are one line on stderr, never a stack trace.
 */
import { Command, CommanderError } from "commander";
import { SwooshError } from "../core/errors.ts";
import { RecoveryError } from "../engine/errors.ts";
import { registerCommand } from "./commands/command.ts";
import { registerGenesis } from "./commands/genesis.ts";
import { registerHash } from "./commands/hash.ts";
import { registerServe } from "./commands/serve.ts";
import { registerState } from "./commands/state.ts";
import { registerVerify } from "./commands/verify.ts";
import { CliError, EXIT_BAD_INPUT, EXIT_OK, EXIT_RUNTIME_FAILURE, StdoutClosed } from "./exit-codes.ts";
import { packageVersion } from "./version.ts";

export function buildProgram(): Command {
  const program = new Command();
  program
    .name("swoosh")
    .description("Swoosh: a deterministic, durable orchestration state machine")
    .version(packageVersion(), "-V, --version")
    .exitOverride()
    .showHelpAfterError("(run with --help for usage)")
    .addHelpText("after", "\nExit codes: 0 ok, 1 runtime failure, 2 bad usage or bad data.\nEvery command has --help; API_INTEGRATION.md documents the HTTP API.");
  registerServe(program);
  registerState(program);
  registerCommand(program);
  registerGenesis(program);
  registerHash(program);
  registerVerify(program);
  for (const command of program.commands) command.exitOverride();
  return program;
}

/** Runs the CLI on `argv` and returns the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  // A write to stdout that fails (EPIPE once a `| head` has read enough) also
  // emits 'error' on the stream, which unheard would crash with a stack
  // trace. Writes that wait for their callback see the error there.
  if (!process.stdout.listeners("error").includes(ignoreStdoutError)) process.stdout.on("error", ignoreStdoutError);
  try {
    await program.parseAsync([...argv]);
    return EXIT_OK;
  } catch (error) {
    if (error instanceof StdoutClosed) return EXIT_OK;
    if (error instanceof CommanderError) {
      // --help and --version end here with exit code 0; usage errors with 2.
      return error.exitCode === 0 ? EXIT_OK : EXIT_BAD_INPUT;
    }
    if (error instanceof CliError) {
      process.stderr.write(`swoosh: ${error.message}\n`);
      return error.exitCode;
    }
    if (error instanceof SwooshError) {
      process.stderr.write(`swoosh: ${error.code}: ${error.message}\n`);
      return error.status < 500 ? EXIT_BAD_INPUT : EXIT_RUNTIME_FAILURE;
    }
    if (error instanceof RecoveryError) {
      process.stderr.write(`swoosh: ${error.message}\n`);
      return EXIT_BAD_INPUT;
    }
    process.stderr.write(`swoosh: ${(error as Error).message ?? String(error)}\n`);
    return EXIT_RUNTIME_FAILURE;
  }
}

function ignoreStdoutError(): void {}
