/**
 * LmdbCommandLog beyond the shared contract: failpoints on both sides of the
 * flush, the compare-and-set against a second writer, corruption found on open
 * and read, a real disk-full (ENOSPC on a tiny tmpfs), and SIGKILL at random
 * moments. Children run the writer so that a kill or a native abort after a
 * failed commit cannot take the test runner down with it.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync, readlinkSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { TestContext } from "node:test";
import { open } from "lmdb";
import { openRecord, sealBytes } from "../../src/core/log-record.ts";
import { LogConflictError, LogCorruptError, LogFileDamagedError, LogFlushError, LogReadOnlyError } from "../../src/storage/errors.ts";
import { LMDB_LOG_DB_OPTIONS, LMDB_LOG_ENV_OPTIONS, LmdbCommandLog } from "../../src/storage/lmdb-log.ts";
import { startLmdbProbe } from "../../src/storage/lmdb-probe.ts";
import { assertPending, chainRecords, take } from "../conformance/command-log.suite.ts";
import { seededRandom } from "../../src/core/seeded-random.ts";
import { runFixture } from "./fixtures/child.ts";
import { LMDB_FILE_DAMAGES, LMDB_MIDDLE_LEAF_DAMAGE } from "../support/lmdb-damage.ts";
import type { LmdbFileDamage } from "../support/lmdb-damage.ts";

const WRITER = "./wal-writer.ts";
const GENESIS_HASH = "0".repeat(64);

async function withTempDir<T>(prefix: string, body: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  try {
    return await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** How far the probe child of a log opened on `dir` found the hash chain to hold, once it has read the whole file. */
async function chainCheckedOnOpen(dir: string): Promise<number> {
  const log = await LmdbCommandLog.open(dir);
  try {
    await log.probed();
    return log.chainCheckedThrough();
  } finally {
    await log.close();
  }
}

/** The pid of the one running probe child (lmdb-probe.ts) reading the WAL in `dir`, found by its command line. */
function probeChildOf(dir: string): number {
  const pids = readdirSync("/proc").filter((name) => /^\d+$/.test(name) && orEmpty(() => readFileSync(`/proc/${name}/cmdline`, "utf8")).split("\0").includes(dir));
  assert.equal(pids.length, 1, `one probe child for ${dir}: ${pids.join(", ")}`);
  return Number(pids[0]);
}

/** What `read` gives, "" when it throws (a process or an fd of /proc that went away meanwhile). */
function orEmpty(read: () => string): string {
  try {
    return read();
  } catch {
    return "";
  }
}

/** Reads the whole log in pages and checks it is one contiguous, intact hash chain from index 1. */
async function assertIntactChain(log: LmdbCommandLog, context: string): Promise<void> {
  assert.equal(log.firstIndex(), 1, context);
  let prevHash = GENESIS_HASH;
  let expected = 1;
  const pageSize = 2_000;
  // Bounded by the log's own length.
  for (let page = 0; expected <= log.lastIndex(); page++) {
    assert.ok(page <= log.lastIndex() / pageSize + 1, `${context}: runaway read loop`);
    for (const record of await log.read(expected, pageSize)) {
      const opened = openRecord(record, expected, prevHash);
      assert.equal(opened.problem, undefined, `${context}: index ${expected}: ${opened.problem}`);
      prevHash = record.hash;
      expected += 1;
    }
  }
  assert.equal(expected - 1, log.lastIndex(), context);
}

function ackedIndexes(lines: readonly string[]): number[] {
  return lines.filter((line) => line.startsWith("ACK ")).map((line) => Number(line.slice(4)));
}

describe("LmdbCommandLog", () => {
  it("a record handed over with its sealed bytes (as the engine seals them) reads back as the same record, after a reopen too", () =>
    withTempDir("swoosh-lmdb-", async (dir) => {
      // Bodies with multi-byte characters: the bytes are UTF-8, the record read back is the decoded string.
      const records = chainRecords(1, 50);
      const withBytes = records.map((record, i) => ({ ...record, bytes: sealBytes(i === 0 ? GENESIS_HASH : (records[i - 1]?.hash as string), record.body).bytes }));
      assert.deepEqual(
        withBytes.map((record) => Buffer.from(record.bytes).subarray(0, 64).toString("latin1")),
        records.map((record) => record.hash),
      );
      const log = await LmdbCommandLog.open(dir);
      await log.append(withBytes);
      assert.deepEqual(await log.read(1, 100), records);
      await log.close();
      const reopened = await LmdbCommandLog.open(dir);
      assert.deepEqual(await reopened.read(1, 100), records);
      await assertIntactChain(reopened, "after appending sealed bytes");
      await reopened.close();
    }));

  it("afterFlush failpoint: the append rejects and poisons, yet the batch is durable", () =>
    withTempDir("swoosh-lmdb-", async (dir) => {
      let fail = false;
      const log = await LmdbCommandLog.open(dir, {
        failpoints: {
          afterFlush: () => {
            if (fail) throw new Error("crash right after fdatasync");
          },
        },
      });
      await log.append(chainRecords(1, 2));
      fail = true;
      await assert.rejects(log.append(chainRecords(3, 2)), (error: unknown) => error instanceof LogFlushError && /crash right after fdatasync/.test(error.message));
      await assert.rejects(log.read(1, 1), LogFlushError);
      await log.close();
      const reopened = await LmdbCommandLog.open(dir);
      assert.equal(reopened.lastIndex(), 4);
      await assertIntactChain(reopened, "after afterFlush failure");
      await reopened.close();
    }));

  it("follow yields a batch only once its append's flush returned, and never a batch whose append failed after the flush (G1)", { timeout: 10_000 }, () =>
    withTempDir("swoosh-lmdb-", async (dir) => {
      let failAfterFlush = false;
      let reachedAfterFlush = (): void => undefined;
      let finishFlush = Promise.resolve();
      const log = await LmdbCommandLog.open(dir, {
        failpoints: {
          afterFlush: async () => {
            reachedAfterFlush();
            await finishFlush;
            if (failAfterFlush) throw new Error("crash right after fdatasync");
          },
        },
      });
      try {
        await log.append(chainRecords(1, 2));
        // Hold the next append between its commit (durable, visible to LMDB readers) and its return.
        let releaseFlush = (): void => undefined;
        finishFlush = new Promise((resolve) => {
          releaseFlush = resolve;
        });
        const inFlush = new Promise<void>((resolve) => {
          reachedAfterFlush = resolve;
        });
        const appending = log.append(chainRecords(3, 2));
        await inFlush;
        // A follower that starts now reads what was acknowledged, and no further.
        const follower = log.follow(1)[Symbol.asyncIterator]();
        assert.deepEqual(await take(follower, 2), chainRecords(1, 2));
        const third = follower.next();
        await assertPending(third, "a follower while the append's flush has not returned");
        releaseFlush();
        await appending;
        assert.deepEqual([(await third).value, ...(await take(follower, 1))], chainRecords(3, 2));

        // Durable yet unacknowledged: the follower never sees it, and fails with the poisoning error.
        finishFlush = Promise.resolve();
        failAfterFlush = true;
        const waiting = follower.next();
        const failure = await log.append(chainRecords(5, 2)).then(
          () => assert.fail("append succeeded despite the failpoint"),
          (caught: unknown) => caught,
        );
        assert.ok(failure instanceof LogFlushError, String(failure));
        await assert.rejects(waiting, (error: unknown) => error === failure);
      } finally {
        await log.close();
      }
    }));

  it("a second writer on the same environment gets LogConflictError, writes nothing, and catches up", () =>
    withTempDir("swoosh-lmdb-", async (dir) => {
      const first = await LmdbCommandLog.open(dir);
      const second = await LmdbCommandLog.open(dir);
      try {
        await first.append(chainRecords(1, 3));
        await assert.rejects(second.append(chainRecords(1, 2)), (error: unknown) => error instanceof LogConflictError && error.expectedIndex === 4 && error.actualIndex === 1);
        assert.equal(second.lastIndex(), 3);
        assert.deepEqual(await second.read(1, 10), chainRecords(1, 3));
        await second.append(chainRecords(4, 1));
        assert.equal(second.lastIndex(), 4);
      } finally {
        await first.close();
        await second.close();
      }
    }));

  it("opened readOnly: reads every record, refuses appends and truncations, and leaves data.mdb as it was", () =>
    withTempDir("swoosh-lmdb-", async (dir) => {
      const log = await LmdbCommandLog.open(dir);
      await log.append(chainRecords(1, 3));
      await log.close();
      const dataBefore = await readFile(join(dir, "data.mdb"));
      const readOnly = await LmdbCommandLog.open(dir, { readOnly: true });
      try {
        assert.deepEqual(await readOnly.read(1, 10), chainRecords(1, 3));
        await assert.rejects(readOnly.append(chainRecords(4, 1)), LogReadOnlyError);
        await assert.rejects(readOnly.truncateBefore(3), LogReadOnlyError);
        // Refused, not poisoned: reads go on.
        assert.equal((await readOnly.read(1, 10)).length, 3);
      } finally {
        await readOnly.close();
      }
      assert.ok(dataBefore.equals(await readFile(join(dir, "data.mdb"))), "data.mdb unchanged");
    }));

  it("reports a damaged value on read, naming the file and index", () =>
    withTempDir("swoosh-lmdb-", async (dir) => {
      const log = await LmdbCommandLog.open(dir);
      await log.append(chainRecords(1, 3));
      await log.close();
      const env = open({ path: dir });
      await env.openDB<string, number>(LMDB_LOG_DB_OPTIONS).put(2, "not a hash, not a body");
      await env.close();
      const reopened = await LmdbCommandLog.open(dir);
      try {
        await assert.rejects(reopened.read(1, 10), (error: unknown) => {
          assert.ok(error instanceof LogCorruptError);
          assert.equal(error.index, 2);
          assert.equal(error.file, join(dir, "data.mdb"));
          assert.match(error.message, /data\.mdb.*index 2/);
          return true;
        });
        assert.equal((await reopened.read(3, 10)).length, 1);
      } finally {
        await reopened.close();
      }
    }));

  it("refuses to open a log with a gap between its first and last index", () =>
    withTempDir("swoosh-lmdb-", async (dir) => {
      const log = await LmdbCommandLog.open(dir);
      await log.append(chainRecords(1, 5));
      await log.close();
      const env = open({ path: dir });
      await env.openDB<string, number>(LMDB_LOG_DB_OPTIONS).remove(3);
      await env.close();
      await assert.rejects(LmdbCommandLog.open(dir), (error: unknown) => error instanceof LogCorruptError && /4 records between indexes 1 and 5/.test(error.message));
    }));

  it("a data file LMDB cannot read (meta page or B-tree pages damaged) is reported as LogFileDamagedError; this process never maps it", () =>
    withTempDir("swoosh-lmdb-", async (dir) => {
      const log = await LmdbCommandLog.open(dir);
      // Enough records for B-tree pages beyond the two meta pages.
      for (let first = 1; first <= 2_000; first += 500) await log.append(chainRecords(first, 500));
      await log.close();
      const file = join(dir, "data.mdb");
      const pristine = await readFile(file);
      const damages: readonly LmdbFileDamage[] = [...LMDB_FILE_DAMAGES, { name: "truncated to 100 bytes", apply: (bytes) => bytes.subarray(0, 100) }];
      for (const { name, apply } of damages) {
        await writeFile(file, apply(pristine));
        // Without the probe, this call would end the test process with SIGSEGV or SIGBUS.
        await assert.rejects(LmdbCommandLog.open(dir), (error: unknown) => {
          assert.ok(error instanceof LogFileDamagedError, `${name}: ${String(error)}`);
          assert.equal(error.file, file);
          assert.match(error.message, /data\.mdb: (reading it crashed LMDB \(SIG[A-Z]+\)|LMDB cannot read it)/, name);
          return true;
        });
      }
      await writeFile(file, pristine);
      const reopened = await LmdbCommandLog.open(dir);
      try {
        await assertIntactChain(reopened, "the undamaged file");
        assert.equal(reopened.lastIndex(), 2_000);
      } finally {
        await reopened.close();
      }
    }));

  it("the probe child holds the file closed from its first report until the log has opened it and says go, then reads every record", () =>
    withTempDir("swoosh-lmdb-", async (dir) => {
      const log = await LmdbCommandLog.open(dir);
      await log.append(chainRecords(1, 3_000));
      await log.close();
      const probe = startLmdbProbe(dir, { envOptions: LMDB_LOG_ENV_OPTIONS, dbOptions: LMDB_LOG_DB_OPTIONS });
      try {
        assert.equal(await probe.mappable, null);
        const pid = probeChildOf(dir);
        // Neither LMDB file is mapped or open in the child while this process opens the file (and runs its first write transaction).
        const held = [...readFileSync(`/proc/${pid}/maps`, "utf8").split("\n"), ...readdirSync(`/proc/${pid}/fd`).map((fd) => orEmpty(() => readlinkSync(`/proc/${pid}/fd/${fd}`)))].filter((line) => line.includes(dir));
        assert.deepEqual(held, [], "the child holds nothing of the WAL after saying mappable");
        await new Promise((resolve) => setTimeout(resolve, 200));
        assert.equal(probe.covers(1), false, "nothing is read on before go");
        probe.proceed();
        assert.equal(await probe.finished, null);
        assert.equal(probe.covers(Number.POSITIVE_INFINITY), true);
        assert.equal(probe.chainedThrough(), 3_000);
      } finally {
        probe.stop();
      }
    }));

  it("chainCheckedThrough: the probe child checks each record's hash against the one before, up to the first link that fails", () =>
    withTempDir("swoosh-lmdb-", async (dir) => {
      const log = await LmdbCommandLog.open(dir);
      assert.equal(log.chainCheckedThrough(), 0, "a new log: nothing was read");
      await log.append(chainRecords(1, 5_000));
      await log.close();
      assert.equal(await chainCheckedOnOpen(dir), 5_000);
      // Record 3,000 with another body under its old hash: the link into it fails, and so every link after it is unknown.
      const env = open({ path: dir });
      const db = env.openDB<string, number>(LMDB_LOG_DB_OPTIONS);
      const value = db.get(3_000) as string;
      await db.put(3_000, value.replace('"index":3000', '"index":3000 '));
      await env.close();
      assert.equal(await chainCheckedOnOpen(dir), 2_999);
    }));

  it("leaf pages damaged halfway through the file: the log opens, reads before them succeed, the read that reaches them and every later call reject with LogFileDamagedError, and nothing is written", () =>
    withTempDir("swoosh-lmdb-", async (dir) => {
      const count = 20_000;
      const log = await LmdbCommandLog.open(dir);
      const records = chainRecords(1, count + 1);
      for (let first = 1; first <= count; first += 1_000) await log.append(records.slice(first - 1, first - 1 + 1_000));
      await log.close();
      const file = join(dir, "data.mdb");
      await writeFile(file, LMDB_MIDDLE_LEAF_DAMAGE.apply(await readFile(file)));
      const damaged = await readFile(file);
      const isDamage = (error: unknown): boolean => error instanceof LogFileDamagedError && error.file === file && /reading it crashed LMDB \(SIG[A-Z]+\)|LMDB cannot read it/.test(error.message);

      // Opened, and at once asked to append: the append waits for the whole file to read back, and never writes.
      const writer = await LmdbCommandLog.open(dir);
      try {
        assert.equal(writer.lastIndex(), count);
        await assert.rejects(writer.append(records.slice(count, count + 1)), isDamage);
      } finally {
        await writer.close();
      }
      assert.ok(damaged.equals(await readFile(file)), "the append wrote nothing");

      // Read in order, as a replay does: without the wait for the probe child, the read reaching the pages would abort this process.
      const reader = await LmdbCommandLog.open(dir);
      try {
        let read = 0;
        let failure: unknown;
        for (let from = 1; from <= count && failure === undefined; from += 1_000) {
          try {
            const page = await reader.read(from, 1_000);
            assert.equal(page[0]?.hash, records[from - 1]?.hash);
            read += page.length;
          } catch (error) {
            failure = error;
          }
        }
        assert.ok(isDamage(failure), `a read reached the damaged pages and failed: ${String(failure)}`);
        assert.ok(read > 0 && read < count, `the records before the pages read back (${read} of ${count})`);
        await assert.rejects(reader.probed(), isDamage);
        await assert.rejects(reader.read(1, 10), isDamage, "the log is poisoned: records read before now fail too");
      } finally {
        await reader.close();
      }
    }));

  it("reports every durable append to onFlush and in metrics", () =>
    withTempDir("swoosh-lmdb-", async (dir) => {
      const flushes: Array<[number, number]> = [];
      const log = await LmdbCommandLog.open(join(dir, "nested", "wal"), { onFlush: (durationMs, count) => flushes.push([durationMs, count]) });
      await log.append(chainRecords(1, 3));
      await log.append(chainRecords(4, 2));
      await log.close();
      assert.deepEqual(
        flushes.map(([, count]) => count),
        [3, 2],
      );
      assert.ok(flushes.every(([durationMs]) => durationMs >= 0));
      const metrics = log.metrics();
      assert.equal(metrics.appendCount, 2);
      assert.equal(metrics.recordCount, 5);
    }));

  it("SIGKILL at random moments never loses an acknowledged record", { timeout: 60_000 }, (t: TestContext) =>
    withTempDir("swoosh-lmdb-kill-", async (dir) => {
      const seed = Number(process.env.SWOOSH_SEED ?? Math.floor(Math.random() * 2 ** 31));
      t.diagnostic(`seed ${seed} (replay the kill plan with SWOOSH_SEED=${seed})`);
      const random = seededRandom(seed);
      const walDir = join(dir, "wal");
      const rounds = 8;
      let ackedMax = 0;
      for (let round = 0; round < rounds; round++) {
        const context = `seed ${seed}, round ${round}`;
        const batchSize = 1 + Math.floor(random() * 64);
        const killAfterMs = Math.floor(random() * 120);
        const run = runFixture(WRITER, [walDir, String(batchSize), "1000000"]);
        try {
          const ready = await run.waitForLine(/^READY \d+$/, 20_000);
          assert.ok(Number(ready.slice(6)) >= ackedMax, `${context}: restart lost acknowledged records (${ready})`);
          // The random moment: anywhere from before the first append to mid-stream.
          await new Promise((resolve) => setTimeout(resolve, killAfterMs));
        } finally {
          run.child.kill("SIGKILL");
        }
        const exit = await run.exited;
        assert.equal(exit.signal, "SIGKILL", `${context}: writer ended on its own: ${exit.stderr}`);
        const acked = ackedIndexes(run.lines);
        for (let i = 1; i < acked.length; i++) assert.ok((acked[i] as number) > (acked[i - 1] as number), context);
        ackedMax = Math.max(ackedMax, ...acked);
        const log = await LmdbCommandLog.open(walDir);
        try {
          assert.ok(log.lastIndex() >= ackedMax, `${context}: acknowledged up to ${ackedMax}, recovered only ${log.lastIndex()}`);
          await assertIntactChain(log, context);
          t.diagnostic(`round ${round}: batch ${batchSize}, killed after ${killAfterMs} ms, acknowledged up to ${ackedMax}, recovered ${log.lastIndex()}`);
        } finally {
          await log.close();
        }
      }
      assert.ok(ackedMax > 0, `seed ${seed}: no append was ever acknowledged; the test proved nothing`);
    }));

  it("disk full: ENOSPC poisons the log, and exactly the acknowledged records survive", { timeout: 60_000 }, async (t: TestContext) => {
    if (process.platform !== "linux" || process.getuid?.() !== 0) {
      t.skip("needs root on Linux to mount a 1 MiB tmpfs");
      return;
    }
    await withTempDir("swoosh-enospc-", async (dir) => {
      const mountDir = join(dir, "tiny");
      const copyDir = join(dir, "copy");
      await mkdir(mountDir);
      try {
        execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", mountDir], { stdio: "pipe" });
      } catch (error) {
        t.skip(`mounting a tmpfs is not permitted here: ${(error as Error).message.split("\n")[0]}`);
        return;
      }
      let acked: number[];
      try {
        const run = runFixture(WRITER, [join(mountDir, "wal"), "16", "1000000"]);
        try {
          const failed = await run.waitForLine(/^FAILED /, 30_000).catch((error: unknown) => {
            run.child.kill("SIGKILL");
            throw error;
          });
          // A write that finds no space at all fails with ENOSPC; a write that fills the disk
          // half way returns short, which LMDB reports as EIO. Both are this disk filling up.
          assert.match(failed, /^FAILED LogFlushError: .*(No space left on device|Input\/output error)/);
          assert.equal(await run.waitForLine(/^POISONED /, 10_000), "POISONED same");
        } finally {
          // lmdb-js may abort natively after a failed commit (see DURABILITY.md); the child's exit code is not the point.
          await run.exited;
        }
        acked = ackedIndexes(run.lines);
        await mkdir(join(copyDir, "wal"), { recursive: true });
        await copyFile(join(mountDir, "wal", "data.mdb"), join(copyDir, "wal", "data.mdb"));
      } finally {
        try {
          execFileSync("umount", [mountDir], { stdio: "pipe" });
        } catch {
          // Busy (a straggling child): detach it now, the kernel finishes when it is released.
          execFileSync("umount", ["-l", mountDir], { stdio: "pipe" });
        }
      }
      assert.ok(acked.length > 10, `only ${acked.length} batches acknowledged before the disk filled`);
      const log = await LmdbCommandLog.open(join(copyDir, "wal"));
      try {
        assert.equal(log.lastIndex(), acked[acked.length - 1], "the recovered log must end exactly at the last acknowledged record");
        await assertIntactChain(log, "after ENOSPC");
      } finally {
        await log.close();
      }
    });
  });
});
