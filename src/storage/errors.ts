/**
 * Typed storage errors, each with a stated policy (what the caller does next).
 *
 * | error                  | raised by                      | policy                                                        |
 * | ---------------------- | ------------------------------ | ------------------------------------------------------------- |
 * | `LogConflictError`     | `CommandLog.append`            | Nothing was written; the log stays usable. The caller catches |
 * |                        |                                | up from `actualIndex` (scale-out) or has a bug (one writer).  |
 * | `LogFlushError`        | `append`, `truncateBefore`     | Fatal for the writer: the log is poisoned, the batch is never |
 * |                        |                                | retried or acknowledged; stop taking writes, exit non-zero,   |
 * |                        |                                | and let a restart recover from disk (SPEC G1).                |
 * | `LogCorruptError`      | `open`, `read`                 | Recovery stops and names the file and index; no auto-repair.  |
 * | `LogAccessError`       | `LmdbCommandLog.open`          | The files are not this process's to read (or write): no fault |
 * |                        |                                | of the data; a runtime failure (exit 1), never "damaged".     |
 * | `LogTruncatedError`    | `CommandLog.follow`            | The follower cannot go on from the log alone: it starts again |
 * |                        |                                | from a snapshot at or after `firstIndex - 1`, or reports the  |
 * |                        |                                | history as pruned. Records are never skipped silently.        |
 * | `SnapshotCorruptError` | `SnapshotStore.load`           | Recovery falls back to an older snapshot; `verify` fails.     |
 * | `SnapshotOtherCluster… | `SnapshotStore.load`           | As corrupt, unless the snapshot is of this WAL's history:     |
 * |  Error`                |                                | then genesis.json is refused (recovery, `verify`).            |
 * | `StorageClosedError`   | any call after `close()`       | A shutdown race or a bug; never retried.                      |
 * | `LogReadOnlyError`     | `append`, `truncateBefore` on  | A bug: only `swoosh verify` opens a log read-only, and it     |
 * |                        | a log opened `readOnly`        | never writes. Nothing was written; never retried.             |
 *
 * Messages name the file and the index so an operator can find the damage.
 */
import type { SnapshotDocument } from "./types.ts";

/** The common base, so callers can tell storage failures from everything else. */
export abstract class StorageError extends Error {
  abstract readonly kind: string;
}

/** An append whose first index is not `lastIndex() + 1`, or whose records are not consecutive. */
export class LogConflictError extends StorageError {
  readonly kind = "log_conflict";
  constructor(
    /** The index the log expected next (`lastIndex() + 1`, or the successor of the previous record). */
    readonly expectedIndex: number,
    /** The index the caller supplied at that position. */
    readonly actualIndex: number,
    readonly file = "",
  ) {
    super(`log ${file || "(memory)"}: append expected index ${expectedIndex}, got ${actualIndex}; nothing was written`);
    this.name = "LogConflictError";
  }
}

/**
 * A commit or flush of the log failed. The log that raised it is poisoned: every
 * later call rejects with this same error. Whether the failed batch reached disk
 * is unknown until a restart reads it back; it was never acknowledged.
 */
export class LogFlushError extends StorageError {
  readonly kind = "log_flush";
  constructor(
    readonly file: string,
    /** What was being made durable: an append of `firstIndex..lastIndex`, or a truncation below `firstIndex`. */
    readonly operation: "append" | "truncate",
    readonly firstIndex: number,
    readonly lastIndex: number,
    options: { cause: unknown },
  ) {
    const what = operation === "append" ? `append of indexes ${firstIndex}..${lastIndex}` : `truncation below index ${firstIndex}`;
    super(`log ${file}: flush of ${what} failed, log poisoned: ${describe(options.cause)}`, options);
    this.name = "LogFlushError";
  }
}

/** The log's LMDB file itself is damaged: LMDB cannot open it or read every record (lmdb-probe.ts). */
export class LogFileDamagedError extends StorageError {
  readonly kind = "log_file_damaged";
  constructor(
    readonly file: string,
    readonly detail: string,
  ) {
    super(`log ${file}: ${detail}`);
    this.name = "LogFileDamagedError";
  }
}

/** The errno codes by which a file system refuses this process a file (mode, owner, a read-only mount): nothing is wrong with the data. */
export type AccessRefusalCode = "EACCES" | "EPERM" | "EROFS";

/** True for an errno code that refuses access (AccessRefusalCode), as opposed to one that says something failed. */
export function isAccessRefusal(code: unknown): code is AccessRefusalCode {
  return code === "EACCES" || code === "EPERM" || code === "EROFS";
}

/**
 * The log's directory or one of its LMDB files is not readable (or not
 * writable, for a log opened to write) by this process: wrong owner, mode or
 * a read-only mount. Checked before LMDB sees the files, since lmdb-js
 * reports such a failure as a crash or a bare "cannot read", which would read
 * as a damaged file. `code` is the errno (EACCES, EPERM, EROFS), so callers
 * that map a file system's refusal to a runtime failure map this one alike.
 */
export class LogAccessError extends StorageError {
  readonly kind = "log_access";
  constructor(
    /** The log's directory. */
    readonly dir: string,
    /** The file (or the directory) access was refused to. */
    readonly file: string,
    readonly code: AccessRefusalCode,
    /** What the process needs of the files: "read" (read-only) or "read and write". */
    readonly needs: "read" | "read and write",
    readonly detail: string,
  ) {
    super(`the WAL in ${dir} cannot be ${needs === "read" ? "read" : "read and written"} by this process (uid ${process.getuid?.() ?? "?"}): ${detail}`);
    this.name = "LogAccessError";
  }
}

/** A stored log record whose shape is wrong (the engine checks the hash chain itself). */
export class LogCorruptError extends StorageError {
  readonly kind = "log_corrupt";
  constructor(
    readonly file: string,
    readonly index: number,
    readonly detail: string,
  ) {
    super(`log ${file}: record at index ${index} is corrupt: ${detail}`);
    this.name = "LogCorruptError";
  }
}

/**
 * A follower needs a record the log no longer holds: `from` was below
 * `firstIndex()`, or `truncateBefore` removed the next record while the
 * follower was behind. (`read` answers such a range from the first index held;
 * a follower must not, or it would skip the removed records unawares.)
 */
export class LogTruncatedError extends StorageError {
  readonly kind = "log_truncated";
  constructor(
    readonly file: string,
    /** The index the follower needed next. */
    readonly index: number,
    /** The oldest index the log held when the follower looked. */
    readonly firstIndex: number,
  ) {
    super(`log ${file}: index ${index} was truncated away; the first index held is ${firstIndex}`);
    this.name = "LogTruncatedError";
  }
}

/** A snapshot file that does not verify: unparseable, wrong hash, wrong index or cluster. */
export class SnapshotCorruptError extends StorageError {
  readonly kind = "snapshot_corrupt";
  readonly expectedHash: string | undefined;
  readonly actualHash: string | undefined;
  constructor(
    readonly file: string,
    readonly index: number,
    readonly detail: string,
    hashes: { expectedHash?: string; actualHash?: string } = {},
  ) {
    const hashText = hashes.expectedHash === undefined ? "" : ` (expected ${hashes.expectedHash}, actual ${hashes.actualHash ?? "none"})`;
    super(`snapshot ${file} (index ${index}) is corrupt: ${detail}${hashText}`);
    this.name = "SnapshotCorruptError";
    this.expectedHash = hashes.expectedHash;
    this.actualHash = hashes.actualHash;
  }
}

/**
 * A snapshot that verifies whole (its hashes, its index) but names another
 * cluster than the store's. It carries the document: one of this data dir's
 * history (its logHash is the WAL's) shows genesis.json is the stranger, not
 * the snapshot, which recovery and `verify` then say.
 */
export class SnapshotOtherClusterError extends SnapshotCorruptError {
  constructor(
    file: string,
    index: number,
    detail: string,
    readonly doc: SnapshotDocument,
  ) {
    super(file, index, detail);
    this.name = "SnapshotOtherClusterError";
  }
}

/** A call on a log or store after `close()`. */
export class StorageClosedError extends StorageError {
  readonly kind = "storage_closed";
  constructor(readonly file: string) {
    super(`${file || "(memory)"} is closed`);
    this.name = "StorageClosedError";
  }
}

/** A write to a log opened read-only (`swoosh verify` on a dir it cannot write). */
export class LogReadOnlyError extends StorageError {
  readonly kind = "log_read_only";
  constructor(
    readonly file: string,
    readonly operation: "append" | "truncate",
  ) {
    super(`log ${file}: opened read-only, refusing to ${operation}; nothing was written`);
    this.name = "LogReadOnlyError";
  }
}

function describe(cause: unknown): string {
  return cause instanceof Error ? cause.message : String(cause);
}
