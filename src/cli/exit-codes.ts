/** SPEC §9 exit codes. */
export const EXIT_OK = 0;
export const EXIT_RUNTIME_FAILURE = 1;
export const EXIT_BAD_INPUT = 2;

/** A failure the CLI reports in one line and exits with `exitCode`. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
    this.name = "CliError";
  }
}

/**
 * Whoever read stdout closed it (`swoosh state | head`): not a failure. The
 * CLI stops writing and exits 0 without a message, as `cat` and `git log` do.
 */
export class StdoutClosed extends CliError {
  constructor() {
    super("stdout was closed by its reader", EXIT_OK);
    this.name = "StdoutClosed";
  }
}
