/**
 * The storage seams the engine stands on (SPEC §8, §11).
 *
 * `CommandLog` is the write-ahead log as an interface: append with an expected
 * next index, read a range, follow from an index. The LMDB log implements it
 * today (follow through the shared helper in follow.ts), an in-memory
 * twin backs tests, and an etcd log will implement it later; all run the one
 * contract suite in test/conformance.
 *
 * `SnapshotStore` keeps snapshot files; `FileSystem` is the narrow file layer
 * snapshots and the genesis file go through, so that a fault-injecting twin
 * can drop what was not fsynced.
 */
import type { JsonValue } from "../core/json.ts";
import type { LogRecord } from "../core/log-record.ts";

export interface CommandLog {
  /** Index of the newest record; 0 for a log that never held one. */
  lastIndex(): number;
  /** Index of the oldest retained record; `lastIndex() + 1` when none is held. */
  firstIndex(): number;
  /**
   * Appends records whose indexes run consecutively from `lastIndex() + 1`
   * (anything else rejects with `LogConflictError` and writes nothing). Resolves
   * only after the flush covering every record returned (fdatasync/fsync). A
   * failed flush rejects with `LogFlushError` and poisons the log: it is never
   * retried, and every later call rejects with that same error.
   */
  append(records: readonly LogRecord[]): Promise<void>;
  /** Up to `limit` records from index `from` on, in index order; [] past the end. */
  read(from: number, limit: number): Promise<LogRecord[]>;
  /**
   * Optional: up to this index, each record after the log's first is known
   * to chain onto the record before it (its hash is SHA-256 of that record's
   * hash and its own body), checked by another reader of the same bytes
   * (the LMDB log's probe child); a replay need not hash those again. 0 when
   * none is known to.
   */
  chainCheckedThrough?(): number;
  /**
   * Every record from index `from` on, in index order, without end: those held
   * now, then each new one once the flush of its append has returned (never
   * before: G1). A `from` past `lastIndex() + 1` waits for that index. Records
   * are read in bounded chunks as the consumer asks, so a slow consumer costs
   * one chunk of memory, never a backlog. Throws a RangeError at the call for
   * a `from` that is not a positive integer. The iteration:
   * - rejects with `signal.reason` once `signal` aborts (as node's `events.on`
   *   and this codebase's waits do), yielding nothing more, even if the
   *   consumer was holding a record when it aborted;
   * - ends quietly when the consumer stops (break, `return()`), even while it
   *   waits for an append, leaving no waiter or abort listener behind;
   * - rejects with `LogTruncatedError` when `from` is below `firstIndex()`, or
   *   when a truncation removed the next record it needs while it was behind:
   *   it never skips a record;
   * - rejects with `StorageClosedError` once the log is closed, and with the
   *   log's `LogFlushError` once it is poisoned, also while waiting (records
   *   it had read before may come first: they were durable).
   * Each iteration of the returned iterable starts again from `from`.
   */
  follow(from: number, signal?: AbortSignal): AsyncIterable<LogRecord>;
  /** Durably deletes records with index < `before`; the newest record is always kept. */
  truncateBefore(before: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * A JSON array read one element at a time: what a snapshot writer takes when
 * copying every element up front would stall (100,000 outcome rows).
 */
export interface JsonRows {
  readonly length: number;
  row(i: number): JsonValue;
}

/**
 * The genesis a snapshot descends from (formatVersion 2 on): the genesis
 * document's `stateHash` and `genesisTime`. With `clusterId` they are what
 * tells one genesis from another (`sameGenesis`); recovery and verify
 * compare them with genesis.json, which nothing else ties to the history
 * once the WAL no longer holds entry 1.
 */
export interface SnapshotGenesis {
  readonly genesisStateHash: string;
  readonly genesisTime: string;
}

/** The fields of a snapshot file other than the state itself (SPEC §8). */
export interface SnapshotHeader extends SnapshotGenesis {
  readonly clusterId: string;
  readonly lastAppliedIndex: number;
  readonly lastAppliedHlc: string;
  /** Hash of the WAL entry at `lastAppliedIndex` (the genesis state hash at 0). */
  readonly logHash: string;
  /** Idempotency outcomes retained at this index (engine-defined JSON; rows are written as a JSON array). */
  readonly outcomes: JsonValue | JsonRows;
}

/**
 * A snapshot file: `{formatVersion, clusterId, genesisStateHash, genesisTime,
 * state, stateHash, lastAppliedIndex, lastAppliedHlc, logHash, outcomes,
 * metaHash}`, where `stateHash = computeStateHash(state)` and `metaHash` = hex
 * SHA-256 of the canonical JSON of every field but `state` and `metaHash`.
 * Files of formatVersion 1 (written before the genesis fields) have neither
 * `genesisStateHash` nor `genesisTime`; they still load.
 */
export interface SnapshotDocument extends Omit<SnapshotHeader, keyof SnapshotGenesis>, Partial<SnapshotGenesis> {
  readonly outcomes: JsonValue;
  readonly formatVersion: 1 | 2;
  readonly state: { [key: string]: JsonValue };
  readonly stateHash: string;
  readonly metaHash: string;
}

/** What `SnapshotStore.save` wrote. */
export interface SavedSnapshot {
  readonly stateHash: string;
  /** Bytes of the file: its header, its idempotency rows and its state (what the next snapshot is paced by). */
  readonly fileBytes: number;
}

export interface SnapshotStore {
  /** Indexes of the complete snapshot files present, newest first (temp files are ignored). */
  list(): Promise<number[]>;
  /**
   * Writes a snapshot whose state is the concatenation of `statePieces`
   * (canonical JSON). Temp file → fsync(file) → rename → fsync(dir); resolves
   * with the state hash and the file's size only after the directory fsync returned.
   */
  save(header: SnapshotHeader, statePieces: AsyncIterable<string> | Iterable<string>): Promise<SavedSnapshot>;
  /** Reads and verifies one snapshot; throws `SnapshotCorruptError` naming the file. */
  load(lastAppliedIndex: number): Promise<SnapshotDocument>;
  /** Deletes one snapshot file (and fsyncs the directory). */
  remove(lastAppliedIndex: number): Promise<void>;
  /** Optional: the snapshot file's size in bytes (what the next automatic snapshot is paced by, as after a save). */
  fileBytes?(lastAppliedIndex: number): Promise<number>;
}

/** An open file of the `FileSystem` layer. */
export interface FileHandleLike {
  write(data: string | Uint8Array): Promise<void>;
  /** fsync(2): the file's data and metadata are durable when it resolves. */
  sync(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The file operations Swoosh's own files (snapshots, genesis) use. The node
 * implementation calls node:fs; a strict in-memory twin forgets everything not
 * fsynced when it "crashes", to test that every durable step is in place.
 */
export interface FileSystem {
  mkdirp(dir: string): Promise<void>;
  /** Creates (or truncates) a file for writing. */
  create(path: string): Promise<FileHandleLike>;
  readFile(path: string): Promise<Buffer>;
  /** The file's size in bytes (stat(2)). */
  fileSize(path: string): Promise<number>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  readdir(dir: string): Promise<string[]>;
  /** fsync of a directory: makes creations, renames and deletions in it durable. */
  syncDir(dir: string): Promise<void>;
  exists(path: string): Promise<boolean>;
}
