/**
 * The write-ahead log on LMDB (npm `lmdb`, SPEC §8).
 *
 * Layout: an LMDB environment in the directory `path` (data.mdb, lock.mdb) with
 * one named database "log": key = record index (an integer, ordered-binary
 * encoded so ranges sort numerically), value = one string `hash + body` (64 hex
 * digits, then the canonical JSON body). Indexes are contiguous from the first
 * to the last key; `open` checks that with the entry count.
 *
 * Durability (see DURABILITY.md, "WAL and snapshot durability"):
 * - lmdb's durable defaults stay: no `noSync`, `noMetaSync` or `useWritemap`.
 * - `overlappingSync: false`: a commit writes its pages, fdatasyncs, and only
 *   then writes the meta page (through an O_DSYNC descriptor). A commit is thus
 *   never visible, to this process or after a restart, before it is durable, and
 *   a failed fdatasync leaves no trace of its batch. lmdb-js's default on Linux
 *   (overlapping) publishes the meta page first and syncs afterwards, which
 *   after a failed sync can bring an unflushed batch back on restart.
 * - `eventTurnBatching: false`: transactions hold exactly what we pass to one
 *   `ifNoExists` batch (no implicit event-turn batch whose internal promise
 *   would reject unhandled when a commit fails).
 * - `batchStartThreshold: 1`: lmdb-js hands a batch's transaction to its writer
 *   thread as soon as a few puts are queued (the thread reads the rest as they
 *   come) instead of at the next `setImmediate`, which waited behind a whole
 *   poll phase of socket events; in process +21% commands/s (medians of 5
 *   interleaved runs). The commit still comes after the batch's last put, so
 *   what is durable, and when, does not change.
 * - `append` awaits the batch's commit and then `db.flushed`; measured with
 *   strace, the commit promise already resolves after fdatasync returned, and
 *   `flushed` costs next to nothing, so it stays as a guard against a change of
 *   sync mode or of lmdb-js.
 *
 * One append = one write transaction = one flush. The batch is conditional on
 * "key `firstIndex` does not exist yet", checked inside the write transaction:
 * the compare-and-set of SPEC §11, which also catches a second writer on the
 * same environment.
 */
import { mkdir } from "node:fs/promises";
import { dirname, join, resolve, sep } from "node:path";
import { open } from "lmdb";
import type { Database, RootDatabase } from "lmdb";
import type { LogRecord } from "../core/log-record.ts";
import { LogConflictError, LogCorruptError, LogFileDamagedError, LogFlushError, LogReadOnlyError, StorageClosedError } from "./errors.ts";
import { AppendWakeups, followLog } from "./follow.ts";
import { RECORD_HASH_CHARS, checkAppendBatch, checkReadRange } from "./log-batch.ts";
import { startLmdbProbe } from "./lmdb-probe.ts";
import type { LmdbProbe, ProbeVerdict } from "./lmdb-probe.ts";
import { walAccessRefusal } from "./wal-access.ts";
import { syncDirectory } from "./node-fs.ts";
import { SerialQueue } from "./serial-queue.ts";
import type { CommandLog } from "./types.ts";

/**
 * Failpoints on both sides of the flush (etcd style), for crash and failure
 * tests. A throw or rejection becomes a `LogFlushError` and poisons the log.
 */
export interface LmdbLogFailpoints {
  /** After the write is checked, before it reaches LMDB: a throw here means nothing is written. */
  beforeFlush?: (write: LogWrite) => void | Promise<void>;
  /** After the flush returned, before the call resolves: a throw here leaves the write durable but unacknowledged. */
  afterFlush?: (write: LogWrite) => void | Promise<void>;
}

/** What a failpoint sees: the batch being appended, or the range being truncated. */
export type LogWrite =
  | { readonly kind: "append"; readonly records: readonly LogRecord[] }
  | { readonly kind: "truncate"; readonly firstIndex: number; readonly before: number };

export interface LmdbCommandLogOptions {
  readonly failpoints?: LmdbLogFailpoints;
  /** Called after every durable append with its duration (commit + flush), e.g. to log slow syncs. */
  readonly onFlush?: (durationMs: number, recordCount: number) => void;
  /**
   * Opens the environment read-only and creates nothing (`swoosh verify` on a
   * dir it cannot write: a backup on read-only media, another user's dir);
   * `append` and `truncateBefore` then throw `LogReadOnlyError`.
   */
  readonly readOnly?: boolean;
}

export interface LmdbLogMetrics {
  readonly appendCount: number;
  readonly recordCount: number;
  readonly flushMsTotal: number;
  readonly flushMsMax: number;
}

/** How long to wait for lmdb-js to hand over the errno behind a failed commit; the error is thrown either way. */
const COMMIT_ERROR_WAIT_MS = 1000;

/** The lmdb-js settings of the log environment (exported for the raw benchmark and the docs). */
export const LMDB_LOG_ENV_OPTIONS = {
  overlappingSync: false,
  eventTurnBatching: false,
  batchStartThreshold: 1,
  noSync: false,
  noMetaSync: false,
  useWritemap: false,
  maxDbs: 4,
} as const;

/** The log's database inside the environment (exported, like the settings above, for the benchmarks and for tests that damage it). */
export const LMDB_LOG_DB_OPTIONS = { name: "log", encoding: "string" } as const;

/** Records removed per truncation step (a few milliseconds of main-thread work). */
const TRUNCATE_STEP_RECORDS = 4096;

/** The file LMDB keeps the log environment in `dir` in (`open` creates it when missing). */
export function lmdbDataFile(dir: string): string {
  return join(resolve(dir), "data.mdb");
}

export class LmdbCommandLog implements CommandLog {
  private readonly queue = new SerialQueue();
  /** Set once: a failed flush, a damaged file the probe found, or a probe that could not start. */
  private poisoned: Error | undefined;
  private closing: Promise<void> | undefined;
  private metricsState = { appendCount: 0, recordCount: 0, flushMsTotal: 0, flushMsMax: 0 };
  private readonly appended = new AppendWakeups();

  private constructor(
    /** The data file, named in errors. */
    readonly file: string,
    private readonly env: RootDatabase,
    private readonly db: Database<string, number>,
    private first: number,
    private last: number,
    private readonly options: LmdbCommandLogOptions,
    /** The probe child reading the file (lmdb-probe.ts), or done with it. */
    private readonly probe: LmdbProbe,
  ) {
    void probe.finished.then((verdict) => {
      // Failed reads and waiting followers learn of it now; the verdict of a probe stopped by close() is not news.
      if (verdict !== null && this.closing === undefined) this.failWith(probeFailure(this.file, verdict));
    });
  }

  /**
   * Opens (creating if needed, unless `readOnly`) the log environment in
   * directory `path`. Resolves once the probe child has opened the file and
   * read both ends of the log; it goes on reading the rest (see `probed`).
   */
  static async open(path: string, options: LmdbCommandLogOptions = {}): Promise<LmdbCommandLog> {
    const dir = resolve(path);
    const file = lmdbDataFile(dir);
    const readOnly = options.readOnly === true;
    // Files this process may not use would fail in LMDB as if damaged: say so first.
    const refusal = walAccessRefusal(dir, readOnly);
    if (refusal !== null) throw refusal;
    // lmdb-js opens read-write (taking LMDB's locks) unless told otherwise, which a read-only mount refuses.
    const envOptions = readOnly ? { ...LMDB_LOG_ENV_OPTIONS, readOnly: true } : LMDB_LOG_ENV_OPTIONS;
    // A damaged file crashes the process that maps it (lmdb-probe.ts): a child
    // reads it first. It starts before this awaits anything, so a caller that
    // does not await this at once (openEngine) works meanwhile.
    const probe = startLmdbProbe(dir, { envOptions, dbOptions: LMDB_LOG_DB_OPTIONS, readOnly });
    let env: RootDatabase | undefined;
    try {
      const [created, mappable] = await Promise.all([readOnly ? undefined : mkdir(dir, { recursive: true }), probe.mappable]);
      if (mappable !== null) throw probeFailure(file, mappable);
      env = open({ path: dir, ...envOptions });
      const db = env.openDB<string, number>(LMDB_LOG_DB_OPTIONS);
      // LMDB fsyncs its files but never their directory: make data.mdb's entry
      // durable, and the entries of the directories mkdir just created. A
      // read-only open wrote nothing to make durable.
      if (!readOnly) await syncDirectory(dir);
      if (created !== undefined) await syncParentsUpTo(dir, created);
      const { first, last } = boundsOf(db, file);
      // The child waited with the file closed while this process opened it: it may read on now.
      probe.proceed();
      return new LmdbCommandLog(file, env, db, first, last, options, probe);
    } catch (error) {
      probe.stop();
      await env?.close();
      throw error;
    }
  }

  /**
   * Resolves once the probe child has read every record back (at once when
   * it already has); rejects with `LogFileDamagedError` when it could not.
   * Reads wait only for the records they touch, appends and truncation for
   * all of them; a caller that wants the verdict before it goes on (opening
   * an engine, `verify`) awaits this.
   */
  async probed(): Promise<void> {
    if (!this.probe.covers(Number.POSITIVE_INFINITY)) this.settle(await this.probe.finished);
  }

  /**
   * The records the probe child found to chain as it read them (each one's
   * hash SHA-256 of the one before's and its body), up to this index: the
   * same bytes this process reads, so a replay need not hash them again.
   * Records held when the log opened never change, so the answer stays true.
   */
  chainCheckedThrough(): number {
    return this.probe.chainedThrough();
  }

  lastIndex(): number {
    return this.last;
  }

  firstIndex(): number {
    return this.first;
  }

  /** Test hook: how many followers wait for an append right now. */
  followersWaiting(): number {
    return this.appended.waiting;
  }

  /** Counters for /metrics: appends, records, and time spent in commit + flush. */
  metrics(): LmdbLogMetrics {
    return { ...this.metricsState };
  }

  append(records: readonly LogRecord[]): Promise<void> {
    return this.queue.run(async () => {
      this.guard();
      this.refuseIfReadOnly("append");
      // A write touches pages anywhere (the B-tree's path, reused pages): only after the whole file read back.
      if (!this.probe.covers(Number.POSITIVE_INFINITY)) await this.probed();
      checkAppendBatch(records, this.last + 1, this.file);
      if (records.length === 0) return;
      const firstIndex = (records[0] as LogRecord).index;
      const lastIndex = (records[records.length - 1] as LogRecord).index;
      const startedMs = performance.now();
      const failpoints = this.options.failpoints;
      let written: boolean;
      try {
        if (failpoints?.beforeFlush) await failpoints.beforeFlush({ kind: "append", records });
        written = await this.db.ifNoExists(firstIndex, () => {
          for (const record of records) void this.db.put(record.index, storedValue(record));
        });
        if (written) {
          await this.db.flushed;
          if (failpoints?.afterFlush) await failpoints.afterFlush({ kind: "append", records });
        }
      } catch (cause) {
        this.poison(new LogFlushError(this.file, "append", firstIndex, lastIndex, { cause: await commitFailureOf(cause) }));
      }
      if (!written) {
        // Another writer got there first: nothing of ours was written. Catch up.
        const bounds = boundsOf(this.db, this.file);
        this.first = bounds.first;
        this.last = bounds.last;
        // The other writer's records are durable: followers may have them.
        this.appended.wake();
        throw new LogConflictError(this.last + 1, firstIndex, this.file);
      }
      // Only now, with the flush returned, may followers see the batch (G1).
      this.last = lastIndex;
      this.appended.wake();
      const durationMs = performance.now() - startedMs;
      const metrics = this.metricsState;
      metrics.appendCount += 1;
      metrics.recordCount += records.length;
      metrics.flushMsTotal += durationMs;
      if (durationMs > metrics.flushMsMax) metrics.flushMsMax = durationMs;
      this.options.onFlush?.(durationMs, records.length);
    });
  }

  /**
   * Up to `limit` records from `from` on (fewer only past the end). While the
   * probe child still reads the file, this waits until it has read past them.
   */
  async read(from: number, limit: number): Promise<LogRecord[]> {
    this.guard();
    checkReadRange(from, limit);
    const out: LogRecord[] = [];
    if (limit === 0 || from > this.last) return out;
    // lmdb-js moves its cursor one record past the last it returns: that one must have read back too.
    const touched = Math.min(from + limit, this.last);
    if (!this.probe.covers(touched)) this.settle(await this.probe.reach(touched));
    for (const { key, value } of this.db.getRange({ start: from, limit })) out.push(decodeRecord(key, value, this.file));
    return out;
  }

  follow(from: number, signal?: AbortSignal): AsyncIterable<LogRecord> {
    return followLog(this, this.appended, from, { file: this.file, signal });
  }

  /**
   * Removes records below `before`, TRUNCATE_STEP_RECORDS per write: each step
   * is queued like an append, so appends wait behind at most one step (the
   * removes are issued on the main thread; 100,000 in one batch stalled it for
   * tens of milliseconds). A crash between steps leaves a longer log, which is
   * harmless: the next truncation goes on from the new first index.
   */
  async truncateBefore(before: number): Promise<void> {
    for (;;) {
      const finished = await this.queue.run(async () => {
        this.guard();
        this.refuseIfReadOnly("truncate");
        if (!this.probe.covers(Number.POSITIVE_INFINITY)) await this.probed();
        if (!Number.isSafeInteger(before)) throw new RangeError(`truncateBefore ${before}: not an integer`);
        // The newest record always stays, so the chain's tip survives any truncation.
        const cut = Math.min(before, this.last);
        if (cut <= this.first) return true;
        const from = this.first;
        const to = Math.min(cut, from + TRUNCATE_STEP_RECORDS);
        const failpoints = this.options.failpoints;
        try {
          if (failpoints?.beforeFlush) await failpoints.beforeFlush({ kind: "truncate", firstIndex: from, before: to });
          await this.db.batch(() => {
            // Indexes are contiguous (checked at open), so no key scan is needed.
            for (let index = from; index < to; index++) void this.db.remove(index);
          });
          await this.db.flushed;
          if (failpoints?.afterFlush) await failpoints.afterFlush({ kind: "truncate", firstIndex: from, before: to });
        } catch (cause) {
          this.poison(new LogFlushError(this.file, "truncate", to, to, { cause: await commitFailureOf(cause) }));
        }
        this.first = to;
        return to === cut;
      });
      if (finished) return;
    }
  }

  close(): Promise<void> {
    if (this.closing) return this.closing;
    // A probe still reading is of no use now; waiters wake and meet StorageClosedError.
    this.probe.stop();
    this.closing = (async () => {
      // Calls already running finish; calls queued behind them see StorageClosedError.
      await this.queue.idle();
      await this.env.close();
    })();
    // Waiting followers look again and meet StorageClosedError.
    this.appended.wake();
    return this.closing;
  }

  /** Poisons the log with `error` (every later call rejects with it) and throws it. */
  private poison(error: LogFlushError): never {
    throw this.failWith(error);
  }

  /** Every later call rejects with `error` (or with the failure before it); returns the failure that stands. */
  private failWith(error: Error): Error {
    this.poisoned ??= error;
    // Waiting followers look again and meet the error.
    this.appended.wake();
    return this.poisoned;
  }

  /** Throws what a probe verdict other than "read back" means, after the log's own closed or poisoned state. */
  private settle(verdict: ProbeVerdict): void {
    this.guard();
    if (verdict !== null) throw this.failWith(probeFailure(this.file, verdict));
  }

  /** A read-only environment has no write methods: a write would fail inside the flush and poison the log as if the disk had refused it. */
  private refuseIfReadOnly(operation: "append" | "truncate"): void {
    if (this.options.readOnly === true) throw new LogReadOnlyError(this.file, operation);
  }

  private guard(): void {
    if (this.poisoned) throw this.poisoned;
    if (this.closing) throw new StorageClosedError(this.file);
  }
}

/** The error a probe verdict other than "read back" stands for. */
function probeFailure(file: string, verdict: Exclude<ProbeVerdict, null>): Error {
  if ("damage" in verdict) return new LogFileDamagedError(file, verdict.damage);
  if ("startError" in verdict) return verdict.startError;
  return new StorageClosedError(file);
}

/** fsyncs the parent of every directory from `deepest` up to and including `topmost`. */
async function syncParentsUpTo(deepest: string, topmost: string): Promise<void> {
  let dir = deepest;
  // Bounded by the path's depth, in case `topmost` is not an ancestor after all.
  for (let depth = deepest.split(sep).length; depth > 0; depth--) {
    await syncDirectory(dirname(dir));
    if (dir === topmost) return;
    dir = dirname(dir);
  }
}

/** First and last index held by `db`, checked to be contiguous. */
/**
 * What a record is stored as: `hash + body`, given as the UTF-8 bytes the
 * engine sealed it with when it has them (no second encoding). lmdb-js stores
 * a Uint8Array as it is whatever the database's encoding, and reads these
 * bytes back as the same string; the cast is only for its typing.
 */
function storedValue(record: LogRecord): string {
  return record.bytes === undefined ? record.hash + record.body : (record.bytes as unknown as string);
}

function boundsOf(db: Database<string, number>, file: string): { first: number; last: number } {
  let first: unknown;
  let last: unknown;
  for (const key of db.getKeys({ limit: 1 })) first = key;
  for (const key of db.getKeys({ reverse: true, limit: 1 })) last = key;
  if (first === undefined || last === undefined) return { first: 1, last: 0 };
  if (!isIndex(first)) throw new LogCorruptError(file, 0, `first key ${String(first)} is not a log index`);
  if (!isIndex(last)) throw new LogCorruptError(file, 0, `last key ${String(last)} is not a log index`);
  const count = (db.getStats() as { entryCount: number }).entryCount;
  if (count !== last - first + 1) {
    throw new LogCorruptError(file, first, `holds ${count} records between indexes ${first} and ${last}: indexes are not contiguous`);
  }
  return { first, last };
}

function decodeRecord(key: unknown, value: unknown, file: string): LogRecord {
  if (!isIndex(key)) throw new LogCorruptError(file, 0, `key ${String(key)} is not a log index`);
  if (typeof value !== "string" || value.length <= RECORD_HASH_CHARS) throw new LogCorruptError(file, key, "value is too short to hold a hash and a body");
  const hash = value.slice(0, RECORD_HASH_CHARS);
  // The hash's content is not checked here: on the hot path of replay it is
  // compared with the recomputed hash anyway (openRecord), which catches garbage.
  return { index: key, hash, body: value.slice(RECORD_HASH_CHARS) };
}

function isIndex(key: unknown): key is number {
  return typeof key === "number" && Number.isSafeInteger(key) && key >= 1;
}

/**
 * lmdb-js rejects a failed commit with a generic "Commit failed" whose
 * `commitError` promise carries the errno (ENOSPC, EIO). Wait briefly for it,
 * and always consume it, so that it never surfaces as an unhandled rejection.
 */
async function commitFailureOf(error: unknown): Promise<unknown> {
  const detail = (error as { commitError?: unknown } | null)?.commitError;
  if (!(detail instanceof Promise)) return error;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<unknown>((resolve) => {
    timer = setTimeout(() => resolve(error), COMMIT_ERROR_WAIT_MS);
  });
  try {
    return await Promise.race([detail.then(() => error, (cause: unknown) => cause), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
