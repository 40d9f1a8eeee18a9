/**
 * The in-memory `CommandLog` twin. NOT FOR PRODUCTION: nothing reaches a disk.
 *
 * Same contract as the LMDB log (it runs the same conformance suite): index
 * continuity with `LogConflictError`, serialized appends, truncation that keeps
 * the newest record, and poisoning after a failed "flush". The records live in
 * a `MemoryLogDisk` that outlives a log instance, so a test can "restart" by
 * opening a new `MemoryCommandLog` on the same disk. `failNextFlush()` is the
 * test hook that makes the next append or truncation fail; `followersWaiting()`
 * tells a test whether a stopped follower left a waiter behind.
 */
import type { LogRecord } from "../core/log-record.ts";
import { LogFlushError, StorageClosedError } from "./errors.ts";
import { AppendWakeups, followLog } from "./follow.ts";
import { checkAppendBatch, checkReadRange } from "./log-batch.ts";
import { SerialQueue } from "./serial-queue.ts";
import type { CommandLog } from "./types.ts";

const FILE = "(memory)";

/** What "survives a restart" of a memory log: records `firstIndex..lastIndex`, contiguous (`lastIndex = firstIndex - 1` when empty). */
export class MemoryLogDisk {
  records: LogRecord[] = [];
  firstIndex = 1;

  get lastIndex(): number {
    return this.firstIndex + this.records.length - 1;
  }
}

export class MemoryCommandLog implements CommandLog {
  private readonly queue = new SerialQueue();
  private poisoned: LogFlushError | undefined;
  private closed = false;
  private pendingFailure: Error | undefined;
  private readonly appended = new AppendWakeups();

  constructor(readonly disk: MemoryLogDisk = new MemoryLogDisk()) {}

  /** Test hook: the next append or truncation fails its flush (nothing written) and poisons the log. */
  failNextFlush(cause: Error = new Error("injected flush failure")): void {
    this.pendingFailure = cause;
  }

  /** Test hook: how many followers wait for an append right now. */
  followersWaiting(): number {
    return this.appended.waiting;
  }

  lastIndex(): number {
    return this.disk.lastIndex;
  }

  firstIndex(): number {
    return this.disk.firstIndex;
  }

  append(records: readonly LogRecord[]): Promise<void> {
    return this.queue.run(async () => {
      this.guard();
      checkAppendBatch(records, this.lastIndex() + 1, FILE);
      if (records.length === 0) return;
      // The "flush": a real await, so callers see the same asynchrony as on disk.
      await Promise.resolve();
      this.flushOrPoison("append", (records[0] as LogRecord).index, (records[records.length - 1] as LogRecord).index);
      for (const record of records) this.disk.records.push({ index: record.index, hash: record.hash, body: record.body });
      this.appended.wake();
    });
  }

  async read(from: number, limit: number): Promise<LogRecord[]> {
    this.guard();
    checkReadRange(from, limit);
    const start = Math.max(from, this.disk.firstIndex) - this.disk.firstIndex;
    return this.disk.records.slice(start, start + limit);
  }

  follow(from: number, signal?: AbortSignal): AsyncIterable<LogRecord> {
    return followLog(this, this.appended, from, { file: FILE, signal });
  }

  truncateBefore(before: number): Promise<void> {
    return this.queue.run(async () => {
      this.guard();
      if (!Number.isSafeInteger(before)) throw new RangeError(`truncateBefore ${before}: not an integer`);
      // The newest record always stays, so the chain's tip survives any truncation.
      const cut = Math.min(before, this.lastIndex());
      if (cut <= this.disk.firstIndex) return;
      await Promise.resolve();
      this.flushOrPoison("truncate", cut, cut);
      this.disk.records = this.disk.records.slice(cut - this.disk.firstIndex);
      this.disk.firstIndex = cut;
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    // Waiting followers look again and meet StorageClosedError.
    this.appended.wake();
    await this.queue.idle();
  }

  private flushOrPoison(operation: "append" | "truncate", firstIndex: number, lastIndex: number): void {
    const cause = this.pendingFailure;
    if (cause === undefined) return;
    this.pendingFailure = undefined;
    this.poisoned = new LogFlushError(FILE, operation, firstIndex, lastIndex, { cause });
    // Waiting followers look again and meet the poisoning error.
    this.appended.wake();
    throw this.poisoned;
  }

  private guard(): void {
    if (this.poisoned) throw this.poisoned;
    if (this.closed) throw new StorageClosedError(FILE);
  }
}
