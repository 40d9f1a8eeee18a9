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

/**
 * Exit code for a path the user named that cannot be used: missing, or a
 * directory where a file belongs (or the reverse), is bad usage (2); any other
 * failure to read it (EIO, EACCES…) is a runtime failure (1).
 */
export function exitCodeForPath(error: unknown): number {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return code === "ENOENT" || code === "EISDIR" || code === "ENOTDIR" ? EXIT_BAD_INPUT : EXIT_RUNTIME_FAILURE;
}
