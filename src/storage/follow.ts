/**
 * `CommandLog.follow`, written once for every log (SPEC §11): the memory and
 * LMDB logs today, and an etcd log later if it has no better way (a watch
 * from a revision could replace the waiting part).
 *
 * A follower reads at most FOLLOW_CHUNK_RECORDS records at a time with the
 * log's own `read`, and only when its consumer asks for more, so a slow
 * consumer holds one chunk, never a backlog. With nothing new to read it waits
 * on the log's `AppendWakeups`, which the log wakes after each append whose
 * flush returned, and on close and poisoning so that waiters look again and
 * meet the error `read` then raises.
 */
import type { LogRecord } from "../core/log-record.ts";
import { LogTruncatedError } from "./errors.ts";
import { checkFollowFrom } from "./log-batch.ts";

/** Records read per step: bounds what a follower holds whatever its consumer's pace. */
export const FOLLOW_CHUNK_RECORDS = 256;

/** What a follower uses of its log. */
export interface FollowedLog {
  lastIndex(): number;
  firstIndex(): number;
  read(from: number, limit: number): Promise<LogRecord[]>;
}

export interface FollowOptions {
  /** The log's file, named in a `LogTruncatedError`. */
  readonly file: string;
  readonly signal?: AbortSignal | undefined;
}

/** The "appended" notification a log gives its waiting followers. */
export class AppendWakeups {
  private readonly waiters = new Set<() => void>();

  /** Followers waiting right now (a test hook: none may be left after they stop). */
  get waiting(): number {
    return this.waiters.size;
  }

  /** Wakes every waiting follower: after a durable append, and on close or poisoning. */
  wake(): void {
    // Called after every append: with no follower (the server has none today) it costs nothing.
    if (this.waiters.size === 0) return;
    const woken = [...this.waiters];
    this.waiters.clear();
    for (const waiter of woken) waiter();
  }

  /**
   * Resolves true at the next `wake()`, false once `stopped` aborts; rejects
   * with `signal.reason` once `signal` aborts. Whichever comes first, nothing
   * stays registered: no waiter, no abort listener.
   */
  next(signal: AbortSignal | undefined, stopped: AbortSignal): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason as Error);
      if (stopped.aborted) return resolve(false);
      const settle = (finish: () => void): void => {
        this.waiters.delete(onWake);
        signal?.removeEventListener("abort", onAbort);
        stopped.removeEventListener("abort", onStop);
        finish();
      };
      const onWake = (): void => settle(() => resolve(true));
      const onStop = (): void => settle(() => resolve(false));
      const onAbort = (): void => settle(() => reject(signal?.reason as Error));
      this.waiters.add(onWake);
      signal?.addEventListener("abort", onAbort);
      stopped.addEventListener("abort", onStop);
    });
  }
}

/**
 * The records of `log` from `from` on, as `CommandLog.follow` documents.
 * Throws a RangeError at once for a `from` that is not a positive integer.
 */
export function followLog(log: FollowedLog, wakeups: AppendWakeups, from: number, options: FollowOptions): AsyncIterable<LogRecord> {
  checkFollowFrom(from);
  return { [Symbol.asyncIterator]: () => new LogFollower(log, wakeups, from, options) };
}

/**
 * One iteration of a follow. The generator does the work; this wrapper is
 * there for `return()`: a generator queues a `return()` behind a pending
 * `next()`, which may be waiting for an append that never comes, so `return()`
 * first stops that wait.
 */
class LogFollower implements AsyncIterator<LogRecord, undefined> {
  private readonly stopping = new AbortController();
  private readonly records: AsyncGenerator<LogRecord, undefined>;

  constructor(log: FollowedLog, wakeups: AppendWakeups, from: number, options: FollowOptions) {
    this.records = followRecords(log, wakeups, from, options, this.stopping.signal);
  }

  next(): Promise<IteratorResult<LogRecord, undefined>> {
    return this.records.next();
  }

  return(): Promise<IteratorResult<LogRecord, undefined>> {
    this.stopping.abort();
    return this.records.return(undefined);
  }
}

async function* followRecords(log: FollowedLog, wakeups: AppendWakeups, from: number, options: FollowOptions, stopped: AbortSignal): AsyncGenerator<LogRecord, undefined> {
  const { signal } = options;
  let next = from;
  for (;;) {
    signal?.throwIfAborted();
    const acknowledged = log.lastIndex();
    const records = await readAcknowledged(log, next, acknowledged, options.file);
    for (const record of records) {
      yield record;
      next = record.index + 1;
      // An abort while the consumer held the record ends the follow before the next one.
      signal?.throwIfAborted();
    }
    // Wait only if nothing was acknowledged since we looked: an append that
    // completed during the read has already woken the waiters it had.
    if (records.length === 0 && log.lastIndex() === acknowledged && !(await wakeups.next(signal, stopped))) return undefined;
  }
}

/**
 * Up to a chunk of records from `next` on, none past `acknowledged`: the last
 * index whose append's flush has returned (G1; LMDB may already show a commit
 * whose append has not). Reads even when there is nothing to read, so that a
 * closed or poisoned log raises its error.
 */
async function readAcknowledged(log: FollowedLog, next: number, acknowledged: number, file: string): Promise<LogRecord[]> {
  const limit = Math.max(0, Math.min(FOLLOW_CHUNK_RECORDS, acknowledged - next + 1));
  const records = await log.read(next, limit);
  // `read` answers from the first index held; a follower must not skip what was truncated.
  const firstHeld = records[0]?.index ?? log.firstIndex();
  if (firstHeld > next) throw new LogTruncatedError(file, next, firstHeld);
  return records;
}
