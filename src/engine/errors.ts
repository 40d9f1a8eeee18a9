/**
 * Errors recovery and replay raise. Each names what is wrong and where, so an
 * operator can act on it; none is retried automatically.
 */
import { SwooshError } from "../core/errors.ts";
import { LogCorruptError, LogFileDamagedError } from "../storage/errors.ts";

/** A WAL record that does not continue the hash chain (policy: refuse to serve). */
export class WalChainError extends Error {
  constructor(
    readonly index: number,
    readonly detail: string,
    readonly file: string,
  ) {
    super(`WAL ${file}: entry ${index} breaks the hash chain: ${detail}`);
    this.name = "WalChainError";
  }
}

/** A logged command the reducer refuses on replay: the log and the code disagree. */
export class ReplayDivergenceError extends Error {
  constructor(
    readonly index: number,
    readonly detail: string,
  ) {
    super(`replay diverged at entry ${index}: ${detail}`);
    this.name = "ReplayDivergenceError";
  }
}

export interface RecoveryProblem {
  readonly file: string;
  readonly index?: number;
  readonly expectedHash?: string;
  readonly actualHash?: string;
  readonly detail: string;
  /** This process may not read (or write) the file: nothing is known to be wrong with the data (`swoosh verify` exits 1, not 2). */
  readonly accessDenied?: true;
}

/** A problem as one line: its file, ` @index` when it has one, and what is wrong. */
export function problemText(problem: RecoveryProblem): string {
  return `${problem.file}${problem.index === undefined ? "" : ` @${problem.index}`}: ${problem.detail}`;
}

/**
 * A data dir path that cannot be a directory: `file`, the path itself or a
 * directory on the way to it, is a file. Bad usage (`bad_request`), refused
 * before anything is written; `detail` is what `swoosh verify` reports of `file`.
 */
export class DataDirNotDirectoryError extends SwooshError {
  readonly detail: string;

  constructor(
    readonly dataDir: string,
    readonly file: string,
  ) {
    const itself = file === dataDir;
    super("bad_request", itself ? `data dir ${dataDir} is not a directory: a file is in its place` : `data dir ${dataDir} cannot be a directory: ${file} on its path is a file`, { dataDir, file });
    this.name = "DataDirNotDirectoryError";
    this.detail = itself ? "not a directory: a file is in its place" : `not a directory: a file is in its place, on the path to the data dir ${dataDir}`;
  }
}

/**
 * A new data dir refused before anything is written: its file system has less
 * free space than a data dir needs to start (open.ts, NEW_DATA_DIR_FREE_BYTES_MIN).
 */
export class DiskSpaceError extends SwooshError {
  constructor(
    readonly dataDir: string,
    readonly freeBytes: number,
    readonly neededBytes: number,
  ) {
    super(
      "unavailable",
      `data dir ${dataDir} is not created: its file system has ${formatBytes(freeBytes)} free, and a new data dir needs at least ${formatBytes(neededBytes)}; free space there, or use a data dir on another disk`,
      { dataDir, freeBytes, neededBytes },
    );
    this.name = "DiskSpaceError";
  }
}

function formatBytes(bytes: number): string {
  if (bytes >= 1024 * 1024) return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
  return `${(bytes / 1024).toFixed(1)} KiB`;
}

/**
 * The snapshot `close({ snapshot: true })` writes failed. Nothing is lost: the
 * WAL, closed as usual, holds every acknowledged command and the next start
 * replays it; the message says so, for an operator reading only this line.
 */
export class FinalSnapshotError extends Error {
  constructor(cause: Error) {
    super(`the final snapshot failed: ${cause.message}; nothing is lost: the WAL holds every acknowledged command and was closed, and the next start replays it`, { cause });
    this.name = "FinalSnapshotError";
  }
}

/** Nothing verifiable to start from; lists every candidate and why it failed. */
export class RecoveryError extends Error {
  constructor(
    message: string,
    readonly problems: readonly RecoveryProblem[],
  ) {
    super(`${message}${problems.length > 0 ? `:\n${problems.map((p) => `  - ${problemText(p)}`).join("\n")}` : ""}`);
    this.name = "RecoveryError";
  }
}

/**
 * The problem to report when opening the WAL failed because of what is on
 * disk (a record, or the LMDB file itself); null for any other failure.
 * `swoosh serve` (open.ts) and `swoosh verify` (verify.ts) report it alike.
 */
export function walOpenProblem(error: unknown): RecoveryProblem | null {
  if (error instanceof LogCorruptError) return { file: error.file, index: error.index, detail: error.detail };
  if (error instanceof LogFileDamagedError) return { file: error.file, detail: error.detail };
  return null;
}
