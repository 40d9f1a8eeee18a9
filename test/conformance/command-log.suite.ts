/**
 * The `CommandLog` contract suite (SPEC §8, §11), run against every log: the
 * in-memory twin and LMDB today, etcd later. A log joins by supplying a harness
 * that opens a fresh, empty log and can make its next flush fail; if its storage
 * outlives the instance, `reopen` lets the suite check what survived.
 */
import assert from "node:assert/strict";
import { getEventListeners } from "node:events";
import { describe, it } from "node:test";
import { openRecord, sealEntry } from "../../src/core/log-record.ts";
import type { LogRecord } from "../../src/core/log-record.ts";
import { LogConflictError, LogFlushError, LogTruncatedError, StorageClosedError } from "../../src/storage/errors.ts";
import type { CommandLog } from "../../src/storage/types.ts";

export interface CommandLogHarness {
  /** A fresh, empty log. */
  readonly log: CommandLog;
  /** Closes the current log and opens its storage again (absent if nothing outlives an instance). */
  reopen?(): Promise<CommandLog>;
  /** Makes the next append or truncation of the current log fail its flush. */
  failNextFlush(): void;
  /** How many followers of the current log wait for an append (absent if the log cannot tell). */
  followersWaiting?(): number;
  /** Closes whatever is open and removes temporary storage. */
  cleanup(): Promise<void>;
}

export interface CommandLogSuiteOptions {
  open(): Promise<CommandLogHarness>;
}

const GENESIS_HASH = "0".repeat(64);

/** Records `from .. from + count - 1` of one deterministic hash chain. */
export function chainRecords(from: number, count: number): LogRecord[] {
  const records: LogRecord[] = [];
  let prevHash = GENESIS_HASH;
  for (let index = 1; index < from + count; index++) {
    const record = sealEntry(
      { index, hlc: `${String(1_700_000_000_000 + index).padStart(15, "0")}-0000000000-n1`, type: "test.put", payload: { index, text: `ünïcødé ${index} 🚀` } },
      prevHash,
    );
    prevHash = record.hash;
    if (index >= from) records.push(record);
  }
  return records;
}

/** Asserts `records` are exactly indexes `from..to` of the chain, intact. */
function assertChain(records: readonly LogRecord[], from: number, to: number): void {
  assert.deepEqual(
    records.map((record) => record.index),
    Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i),
  );
  assert.deepEqual(records, chainRecords(from, to - from + 1));
}

/** A bound on each follow test: a follower that never wakes fails its test instead of hanging the run. */
const FOLLOW_TEST_TIMEOUT_MS = 10_000;

/** How long a follower that should be waiting gets to show it is not (kept short: the suite runs it often). */
const STILL_PENDING_MS = 20;

/** Fails if `promise` settles within STILL_PENDING_MS; leaves no timer behind either way. */
export async function assertPending(promise: Promise<unknown>, what: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const pending = Symbol("pending");
  const outcome = await Promise.race([
    promise.then(
      () => "settled",
      () => "settled",
    ),
    new Promise<symbol>((resolve) => {
      timer = setTimeout(() => resolve(pending), STILL_PENDING_MS);
    }),
  ]);
  clearTimeout(timer);
  assert.equal(outcome, pending, `${what} settled, it should still wait`);
}

/** The next `count` records of a follower (it must not end before). */
export async function take(follower: AsyncIterator<LogRecord>, count: number): Promise<LogRecord[]> {
  const records: LogRecord[] = [];
  for (let i = 0; i < count; i++) {
    const result = await follower.next();
    assert.equal(result.done, false, `follower ended after ${records.length} of ${count} records`);
    records.push(result.value as LogRecord);
  }
  return records;
}

function followerOf(log: CommandLog, from: number, signal?: AbortSignal): AsyncIterator<LogRecord> {
  return log.follow(from, signal)[Symbol.asyncIterator]();
}

/**
 * Asserts nothing of a stopped follower is left: no waiter in the log, no
 * listener on its signal. (Counting the process's timers does not work here:
 * lmdb-js starts and ends timers of its own.)
 */
function assertNothingLeft(harness: CommandLogHarness, signal: AbortSignal): void {
  if (harness.followersWaiting) assert.equal(harness.followersWaiting(), 0, "followers still waiting");
  assert.equal(getEventListeners(signal, "abort").length, 0, "abort listeners left");
}

export function runCommandLogSuite(name: string, options: CommandLogSuiteOptions): void {
  const withLog = async (test: (harness: CommandLogHarness) => Promise<void>): Promise<void> => {
    const harness = await options.open();
    try {
      await test(harness);
    } finally {
      await harness.cleanup();
    }
  };

  describe(`CommandLog contract: ${name}`, () => {
    it("an empty log has lastIndex 0, firstIndex 1 and reads nothing", () =>
      withLog(async ({ log }) => {
        assert.equal(log.lastIndex(), 0);
        assert.equal(log.firstIndex(), 1);
        assert.deepEqual(await log.read(0, 10), []);
        assert.deepEqual(await log.read(1, 10), []);
      }));

    it("appends batches and reads any range back exactly, [] past the end", () =>
      withLog(async ({ log }) => {
        await log.append(chainRecords(1, 5));
        await log.append(chainRecords(6, 5));
        assert.equal(log.lastIndex(), 10);
        assert.equal(log.firstIndex(), 1);
        assertChain(await log.read(1, 100), 1, 10);
        assertChain(await log.read(3, 4), 3, 6);
        assertChain(await log.read(10, 5), 10, 10);
        assert.deepEqual(await log.read(11, 5), []);
        assert.deepEqual(await log.read(5, 0), []);
      }));

    it("keeps large and non-ASCII bodies byte for byte", () =>
      withLog(async ({ log }) => {
        const big = sealEntry({ index: 1, hlc: "001700000000000-0000000000-n1", type: "big", payload: { blob: "x🚀\u0000é".repeat(25_000) } }, GENESIS_HASH);
        await log.append([big]);
        assert.deepEqual(await log.read(1, 1), [big]);
      }));

    it("an empty append is a no-op", () =>
      withLog(async ({ log }) => {
        await log.append([]);
        assert.equal(log.lastIndex(), 0);
      }));

    it("rejects a wrong first index with LogConflictError and writes nothing", () =>
      withLog(async ({ log }) => {
        await log.append(chainRecords(1, 3));
        for (const [records, actualIndex] of [
          [chainRecords(5, 2), 5],
          [chainRecords(3, 3), 3],
          [chainRecords(1, 1), 1],
        ] as const) {
          const error = await log.append(records).then(
            () => assert.fail("append succeeded"),
            (caught: unknown) => caught,
          );
          assert.ok(error instanceof LogConflictError, String(error));
          assert.equal(error.expectedIndex, 4);
          assert.equal(error.actualIndex, actualIndex);
        }
        assert.equal(log.lastIndex(), 3);
        assertChain(await log.read(1, 100), 1, 3);
        // A conflict does not poison: the right index still goes through.
        await log.append(chainRecords(4, 1));
        assertChain(await log.read(1, 100), 1, 4);
      }));

    it("rejects a batch with a gap inside and writes none of it", () =>
      withLog(async ({ log }) => {
        const [first, , third] = chainRecords(1, 3) as [LogRecord, LogRecord, LogRecord];
        await assert.rejects(log.append([first, third]), (error: unknown) => error instanceof LogConflictError && error.expectedIndex === 2 && error.actualIndex === 3);
        assert.equal(log.lastIndex(), 0);
        assert.deepEqual(await log.read(1, 10), []);
      }));

    it("rejects a malformed record as a programmer error and writes nothing", () =>
      withLog(async ({ log }) => {
        const [record] = chainRecords(1, 1) as [LogRecord];
        await assert.rejects(log.append([{ ...record, hash: "abc" }]), TypeError);
        assert.equal(log.lastIndex(), 0);
        await assert.rejects(log.read(-1, 1), RangeError);
      }));

    it("serializes concurrent appends in call order", () =>
      withLog(async ({ log }) => {
        const results = await Promise.allSettled([log.append(chainRecords(1, 3)), log.append(chainRecords(4, 3)), log.append(chainRecords(4, 1))]);
        assert.equal(results[0].status, "fulfilled");
        assert.equal(results[1].status, "fulfilled");
        assert.equal(results[2].status, "rejected");
        assert.ok((results[2] as PromiseRejectedResult).reason instanceof LogConflictError);
        assertChain(await log.read(1, 100), 1, 6);
      }));

    it("truncation moves firstIndex, always keeps the newest record, and appends continue", () =>
      withLog(async ({ log }) => {
        await log.append(chainRecords(1, 10));
        await log.truncateBefore(5);
        assert.equal(log.firstIndex(), 5);
        assert.equal(log.lastIndex(), 10);
        // A read from before the first retained index starts at the first retained one.
        assertChain(await log.read(1, 100), 5, 10);
        await log.truncateBefore(3);
        assert.equal(log.firstIndex(), 5);
        await log.truncateBefore(1_000);
        assert.equal(log.firstIndex(), 10);
        assert.equal(log.lastIndex(), 10);
        assertChain(await log.read(1, 100), 10, 10);
        await log.append(chainRecords(11, 2));
        assertChain(await log.read(0, 100), 10, 12);
      }));

    it("a truncation of many thousands of records lets appends through while it runs and ends at the cut", () =>
      withLog(async ({ log }) => {
        const records = chainRecords(1, 12_001);
        for (let i = 0; i < 12_000; i += 2_000) await log.append(records.slice(i, i + 2_000));
        const truncating = log.truncateBefore(11_000);
        // Queued while the truncation runs: an append lands in order and is not lost.
        await log.append(records.slice(12_000));
        await truncating;
        assert.equal(log.firstIndex(), 11_000);
        assert.equal(log.lastIndex(), 12_001);
        assertChain(await log.read(1, 2_000), 11_000, 12_001);
      }));

    it("truncating an empty log does nothing", () =>
      withLog(async ({ log }) => {
        await log.truncateBefore(10);
        assert.equal(log.lastIndex(), 0);
        assert.equal(log.firstIndex(), 1);
      }));

    it("reopening keeps every appended record and the truncation point", () =>
      withLog(async (harness) => {
        if (!harness.reopen) return;
        await harness.log.append(chainRecords(1, 20));
        await harness.log.truncateBefore(8);
        const reopened = await harness.reopen();
        assert.equal(reopened.firstIndex(), 8);
        assert.equal(reopened.lastIndex(), 20);
        assertChain(await reopened.read(1, 100), 8, 20);
        await reopened.append(chainRecords(21, 1));
        assert.equal(reopened.lastIndex(), 21);
      }));

    it("a failed flush poisons the log: the same error forever, nothing later reaches storage", () =>
      withLog(async (harness) => {
        const { log } = harness;
        await log.append(chainRecords(1, 3));
        harness.failNextFlush();
        const failure = await log.append(chainRecords(4, 3)).then(
          () => assert.fail("append succeeded despite a failed flush"),
          (caught: unknown) => caught,
        );
        assert.ok(failure instanceof LogFlushError, String(failure));
        assert.equal(failure.firstIndex, 4);
        assert.equal(failure.lastIndex, 6);
        // Never retried: every later call rejects with that very error.
        for (const call of [() => log.append(chainRecords(4, 3)), () => log.append(chainRecords(7, 1)), () => log.read(1, 10), () => log.truncateBefore(2)]) {
          await assert.rejects(call(), (error: unknown) => error === failure);
        }
        if (!harness.reopen) return;
        const reopened = await harness.reopen();
        // The acknowledged batch is all there; the failed one is all or nothing; nothing after it.
        assert.ok([3, 6].includes(reopened.lastIndex()), `lastIndex ${reopened.lastIndex()}`);
        assertChain(await reopened.read(1, 100), 1, reopened.lastIndex());
      }));

    it("a failed truncation flush poisons the log too", () =>
      withLog(async (harness) => {
        await harness.log.append(chainRecords(1, 5));
        harness.failNextFlush();
        await assert.rejects(harness.log.truncateBefore(3), LogFlushError);
        await assert.rejects(harness.log.append(chainRecords(6, 1)), LogFlushError);
      }));

    it("after close every call rejects with StorageClosedError", () =>
      withLog(async ({ log }) => {
        await log.append(chainRecords(1, 2));
        await log.close();
        await assert.rejects(log.append(chainRecords(3, 1)), StorageClosedError);
        await assert.rejects(log.read(1, 1), StorageClosedError);
        await log.close();
      }));

    it("follow yields the records held, then each new append, in order, nothing missing or doubled", { timeout: FOLLOW_TEST_TIMEOUT_MS }, () =>
      withLog(async ({ log }) => {
        // More than one read chunk (256 records in follow.ts) is held before the follow starts.
        await log.append(chainRecords(1, 300));
        const follower = followerOf(log, 1);
        assertChain(await take(follower, 300), 1, 300);
        const waiting = follower.next();
        await assertPending(waiting, "a follower at the tip");
        await log.append(chainRecords(301, 3));
        await log.append(chainRecords(304, 2));
        assertChain([((await waiting).value as LogRecord), ...(await take(follower, 4))], 301, 305);
        await follower.return?.();
      }));

    it("followers at different positions each get their own stretch; one past the end waits for its index", { timeout: FOLLOW_TEST_TIMEOUT_MS }, () =>
      withLog(async ({ log }) => {
        await log.append(chainRecords(1, 10));
        const fromStart = followerOf(log, 1);
        const fromEight = followerOf(log, 8);
        const ahead = followerOf(log, 13);
        assertChain(await take(fromStart, 10), 1, 10);
        assertChain(await take(fromEight, 3), 8, 10);
        const aheadFirst = ahead.next();
        await assertPending(aheadFirst, "a follower from 13 with 10 records held");
        await log.append(chainRecords(11, 4));
        assertChain(await take(fromStart, 4), 11, 14);
        assertChain(await take(fromEight, 4), 11, 14);
        assertChain([((await aheadFirst).value as LogRecord), ...(await take(ahead, 1))], 13, 14);
        for (const follower of [fromStart, fromEight, ahead]) await follower.return?.();
      }));

    it("follow refuses a from that is not a positive integer at the call", { timeout: FOLLOW_TEST_TIMEOUT_MS }, () =>
      withLog(async ({ log }) => {
        for (const from of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53]) assert.throws(() => log.follow(from), RangeError, String(from));
      }));

    it("after a truncation follow works from firstIndex and fails from below it with LogTruncatedError", { timeout: FOLLOW_TEST_TIMEOUT_MS }, () =>
      withLog(async ({ log }) => {
        await log.append(chainRecords(1, 10));
        await log.truncateBefore(5);
        const fromFirst = followerOf(log, 5);
        assertChain(await take(fromFirst, 6), 5, 10);
        await assert.rejects(followerOf(log, 4).next(), (error: unknown) => error instanceof LogTruncatedError && error.index === 4 && error.firstIndex === 5);
        await assert.rejects(followerOf(log, 1).next(), LogTruncatedError);
        // A follower waiting at the tip loses nothing: a truncation keeps the newest record.
        const waiting = fromFirst.next();
        await log.truncateBefore(1_000);
        await log.append(chainRecords(11, 1));
        assertChain([(await waiting).value as LogRecord], 11, 11);
        await fromFirst.return?.();
      }));

    it("a follower that falls behind a truncation fails with LogTruncatedError instead of skipping", { timeout: FOLLOW_TEST_TIMEOUT_MS }, () =>
      withLog(async ({ log }) => {
        await log.append(chainRecords(1, 600));
        const follower = followerOf(log, 1);
        assertChain(await take(follower, 2), 1, 2);
        await log.truncateBefore(500);
        // What it had read already may still come; then it must stop at the gap, not jump to 500.
        let expected = 3;
        const failure = await (async () => {
          for (; expected <= 600; expected++) {
            try {
              const { value } = await follower.next();
              assert.equal((value as LogRecord).index, expected);
            } catch (error) {
              return error;
            }
          }
          return assert.fail("the follower went through the truncated stretch");
        })();
        assert.ok(failure instanceof LogTruncatedError, String(failure));
        assert.equal(failure.index, expected);
        assert.equal(failure.firstIndex, 500);
        assert.ok(expected < 500);
      }));

    it("an abort rejects the follow with the signal's reason, waiting or between records, and leaves nothing behind", { timeout: FOLLOW_TEST_TIMEOUT_MS }, () =>
      withLog(async (harness) => {
        const { log } = harness;
        await log.append(chainRecords(1, 3));
        const reason = new Error("follower stopped");
        const atTip = new AbortController();
        const waitingFollower = followerOf(log, 1, atTip.signal);
        assertChain(await take(waitingFollower, 3), 1, 3);
        const waiting = waitingFollower.next();
        await assertPending(waiting, "a follower at the tip");
        if (harness.followersWaiting) assert.equal(harness.followersWaiting(), 1);
        atTip.abort(reason);
        await assert.rejects(waiting, (error: unknown) => error === reason);
        assert.deepEqual(await waitingFollower.next(), { done: true, value: undefined });
        assertNothingLeft(harness, atTip.signal);

        // Aborted while the consumer holds a record: the next one does not come.
        const midway = new AbortController();
        const holding = followerOf(log, 1, midway.signal);
        assertChain(await take(holding, 1), 1, 1);
        midway.abort(reason);
        await assert.rejects(holding.next(), (error: unknown) => error === reason);
        assertNothingLeft(harness, midway.signal);

        await assert.rejects(followerOf(log, 1, AbortSignal.abort(reason)).next(), (error: unknown) => error === reason);
      }));

    it("break and return() end a follow, also while it waits for an append, and leave nothing behind", { timeout: FOLLOW_TEST_TIMEOUT_MS }, () =>
      withLog(async (harness) => {
        const { log } = harness;
        await log.append(chainRecords(1, 5));
        const unused = new AbortController();
        const seen: number[] = [];
        for await (const record of log.follow(1, unused.signal)) {
          seen.push(record.index);
          if (record.index === 2) break;
        }
        assert.deepEqual(seen, [1, 2]);
        assertNothingLeft(harness, unused.signal);

        // return() while a next() waits at the tip: both settle as done, the wait is gone.
        const follower = followerOf(log, 6, unused.signal);
        const waiting = follower.next();
        await assertPending(waiting, "a follower at the tip");
        const returned = follower.return?.();
        assert.deepEqual(await waiting, { done: true, value: undefined });
        assert.deepEqual(await returned, { done: true, value: undefined });
        assertNothingLeft(harness, unused.signal);
        // Appends after the follow stopped reach no one and break nothing.
        await log.append(chainRecords(6, 1));
        assert.deepEqual(await follower.next(), { done: true, value: undefined });
      }));

    it("close ends a follow with StorageClosedError, also one waiting for an append", { timeout: FOLLOW_TEST_TIMEOUT_MS }, () =>
      withLog(async ({ log }) => {
        await log.append(chainRecords(1, 2));
        const waitingFollower = followerOf(log, 3);
        const waiting = waitingFollower.next();
        await assertPending(waiting, "a follower at the tip");
        await log.close();
        await assert.rejects(waiting, StorageClosedError);
        await assert.rejects(followerOf(log, 1).next(), StorageClosedError);
      }));

    it("a poisoned log fails its followers with the poisoning LogFlushError, also one waiting", { timeout: FOLLOW_TEST_TIMEOUT_MS }, () =>
      withLog(async (harness) => {
        const { log } = harness;
        await log.append(chainRecords(1, 3));
        const waitingFollower = followerOf(log, 4);
        const waiting = waitingFollower.next();
        await assertPending(waiting, "a follower at the tip");
        harness.failNextFlush();
        const failure = await log.append(chainRecords(4, 3)).then(
          () => assert.fail("append succeeded despite a failed flush"),
          (caught: unknown) => caught,
        );
        assert.ok(failure instanceof LogFlushError, String(failure));
        await assert.rejects(waiting, (error: unknown) => error === failure);
        await assert.rejects(followerOf(log, 1).next(), (error: unknown) => error === failure);
      }));

    it("stored records verify as one hash chain", () =>
      withLog(async ({ log }) => {
        await log.append(chainRecords(1, 50));
        let prevHash = GENESIS_HASH;
        for (const record of await log.read(1, 100)) {
          const opened = openRecord(record, record.index, prevHash);
          assert.equal(opened.problem, undefined);
          prevHash = record.hash;
        }
      }));
  });
}
