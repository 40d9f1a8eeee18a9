import assert from "node:assert/strict";
import { readdir, readFile, rm, writeFile } from "node:fs/promises";
import { execFile } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";
import { open as openLmdb } from "lmdb";
import { SwooshError } from "../../src/core/errors.ts";
import { computeStateHash } from "../../src/core/hash.ts";
import { encodeHlc } from "../../src/core/hlc.ts";
import type { Engine } from "../../src/engine/engine.ts";
import { RecoveryError } from "../../src/engine/errors.ts";
import { createGenesis } from "../../src/engine/genesis.ts";
import { initializeDataDir, openEngine } from "../../src/engine/open.ts";
import type { OpenEngineOptions } from "../../src/engine/open.ts";
import { LMDB_LOG_DB_OPTIONS, LmdbCommandLog } from "../../src/storage/lmdb-log.ts";
import { NodeFileSystem } from "../../src/storage/node-fs.ts";
import { FileSnapshotStore } from "../../src/storage/snapshot-store.ts";
import type { SnapshotStore } from "../../src/storage/types.ts";
import { counterGenesisState, counterMachine } from "../support/counter-machine.ts";
import type { CounterState } from "../support/counter-machine.ts";
import { FaultyLog, ManualClock, counterGenesis, nextRead, tempDirsRemovedAtEnd } from "../support/engine-fixtures.ts";

const dataDir = tempDirsRemovedAtEnd();

type Options = Partial<OpenEngineOptions<CounterState>>;

function open(dir: string, options: Options = {}): Promise<Engine<CounterState>> {
  return openEngine<CounterState>({
    dataDir: dir,
    machine: counterMachine,
    genesis: counterGenesis(),
    snapshotEvery: 0,
    onFatal: () => undefined,
    ...options,
  });
}

async function isRejectedWith(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => error instanceof SwooshError && error.code === code);
}

describe("engine: commands, durability and recovery", () => {
  it("applies commands in order, and a reopened engine recovers the same state and hash", async () => {
    const dir = await dataDir();
    const engine = await open(dir);
    const first = await engine.submit({ type: "counter.add", payload: { amount: 2 } });
    const second = await engine.submit({ type: "counter.add", payload: { amount: 3 } });
    assert.equal(first.index, 1);
    assert.equal(second.index, 2);
    assert.deepEqual(second.result, { count: 5, index: 2 });
    assert.ok(second.hlc > first.hlc);
    const liveHash = await engine.stateHash();
    await engine.close();

    const reopened = await open(dir);
    const state = await reopened.readState();
    assert.equal(state.index, 2);
    assert.equal(state.state.count, 5);
    assert.equal(await reopened.stateHash(), liveHash);
    const log = await reopened.readLog(1, 10);
    assert.deepEqual(
      log.map((e) => [e.index, e.type]),
      [
        [1, "counter.add"],
        [2, "counter.add"],
      ],
    );
    assert.equal(log[0]?.prevHash, counterGenesis().stateHash, "the chain is anchored at the genesis state hash");
    assert.equal(log[1]?.prevHash, log[0]?.hash);
    await reopened.close();
  });

  it("shares one hashing of the state among stateHash callers at the same index", async () => {
    const dir = await dataDir();
    let stateReads = 0;
    const countingMachine = { ...counterMachine, state: (model: CounterState) => (stateReads++, counterMachine.state(model)) };
    const engine = await open(dir, { machine: countingMachine });
    for (let key = 0; key < 200; key++) await engine.submit({ type: "counter.set", payload: { key: `k${key}`, value: key } });
    stateReads = 0;
    const hashes = await Promise.all(Array.from({ length: 8 }, () => engine.stateHash()));
    assert.equal(new Set(hashes).size, 1);
    assert.equal(hashes[0], computeStateHash((await engine.readState()).state));
    assert.equal(stateReads, 1, "eight callers at one index, one read of the state");
    await engine.close();
  });

  it("group-commits concurrent commands: fewer flushes than commands, every promise after its flush", async () => {
    const dir = await dataDir();
    const engine = await open(dir);
    const flushedUpTo: number[] = [];
    engine.onFlush(() => flushedUpTo.push(engine.stats().durableIndex));
    const outcomes = await Promise.all(
      Array.from({ length: 2000 }, (_, i) =>
        engine.submit({ type: "counter.add", payload: { amount: 1 } }).then((o) => {
          // When a caller hears back, the flush covering its index has returned.
          assert.ok(engine.stats().durableIndex >= o.index, `index ${o.index} acknowledged before durable`);
          return { o, i };
        }),
      ),
    );
    assert.deepEqual(
      outcomes.map(({ o }) => o.index),
      Array.from({ length: 2000 }, (_, i) => i + 1),
    );
    const stats = engine.stats();
    assert.equal(stats.durableIndex, 2000);
    assert.ok(stats.flushes < 200, `expected batching, got ${stats.flushes} flushes for 2000 commands`);
    await engine.close();
  });

  it("refuses invalid commands without logging them or changing state", async () => {
    const dir = await dataDir();
    const engine = await open(dir);
    await engine.submit({ type: "counter.add", payload: { amount: 1 } });
    const before = await engine.stateHash();
    await isRejectedWith(engine.submit({ type: "counter.add", payload: { amount: "x" } }), "bad_request");
    await isRejectedWith(engine.submit({ type: "counter.expect", payload: { equals: 99 } }), "bad_request");
    await isRejectedWith(engine.submit({ type: "nope", payload: {} }), "unknown_command");
    await isRejectedWith(engine.submit({ type: "", payload: {} }), "bad_request");
    await isRejectedWith(engine.submit({ type: "counter.add", payload: { amount: Number.NaN } }), "bad_request");
    await isRejectedWith(engine.submit({ type: "counter.add", payload: { amount: 1, bad: "\ud800" } }), "bad_request");
    await isRejectedWith(engine.submit({ type: "counter.add", payload: { amount: 1 }, hlc: "yesterday" }), "bad_request");
    const nested = (depth: number): unknown => {
      let value: unknown = 1;
      for (let i = 0; i < depth; i++) value = i % 2 ? [value] : { k: value };
      return value;
    };
    await isRejectedWith(engine.submit({ type: "counter.add", payload: { amount: 1, deep: nested(64) } }), "bad_request");
    await isRejectedWith(engine.submit({ type: "counter.add", payload: { amount: 1, deep: nested(100_000) } }), "bad_request");
    assert.equal(await engine.stateHash(), before);
    assert.equal(engine.stats().appliedIndex, 1);
    assert.equal((await engine.readLog(1, 100)).length, 1);
    // Brackets inside strings are not nesting.
    assert.equal((await engine.submit({ type: "counter.add", payload: { amount: 1, text: "[".repeat(500) } })).index, 2);
    await engine.close();
  });

  it("keeps ids like __proto__, constructor and the empty string as ordinary keys through restarts", async () => {
    const dir = await dataDir();
    const engine = await open(dir);
    for (const key of ["__proto__", "constructor", "toString", "", "😀"]) {
      await engine.submit({ type: "counter.set", payload: { key, value: key.length + 1 }, id: key });
    }
    const state = (await engine.readState()).state as CounterState;
    assert.deepEqual(Object.keys(state.values).sort(), ["", "__proto__", "constructor", "toString", "😀"]);
    const hash = await engine.stateHash();
    assert.equal(hash, computeStateHash(JSON.parse(JSON.stringify(state)) as unknown));
    const repeat = await engine.submit({ type: "counter.set", payload: { key: "__proto__", value: 0 }, id: "__proto__" });
    assert.equal(repeat.duplicate, true);
    await engine.close();
    const reopened = await open(dir);
    assert.equal(await reopened.stateHash(), hash);
    await reopened.close();
  });
});

describe("engine: one writer per data dir", () => {
  it("refuses a second engine on an open data dir and allows it after close", async () => {
    const dir = await dataDir();
    const engine = await open(dir);
    await isRejectedWith(open(dir), "unavailable");
    await engine.close();
    const again = await open(dir);
    await again.close();
  });

  it("refuses a data dir whose LOCK names another live process, and takes over a dead one's", async () => {
    const dir = await dataDir();
    await (await open(dir)).close();
    await writeFile(path.join(dir, "LOCK"), `${process.ppid}\n`);
    await isRejectedWith(open(dir), "unavailable");
    await writeFile(path.join(dir, "LOCK"), "2147483646\n");
    const taken = await open(dir);
    await taken.close();
  });

  it("lets exactly one of several processes that start at the same moment take the lock, fresh or stale", async () => {
    const contender = fileURLToPath(new URL("../support/lock-contender.ts", import.meta.url));
    for (const [round, stale] of [[1, false], [2, true], [3, false], [4, true]] as const) {
      const dir = await dataDir();
      if (stale) await writeFile(path.join(dir, "LOCK"), "2147483646\n"); // a dead process's
      const startAtMs = Date.now() + 2500;
      const outputs = await Promise.all(
        Array.from({ length: 4 }, () =>
          new Promise<string>((resolve, reject) => {
            execFile(process.execPath, ["--import", "tsx", contender, dir, String(startAtMs), "1500"], { timeout: 20_000 }, (error, stdout) => (error ? reject(error) : resolve(stdout.trim())));
          }),
        ),
      );
      assert.equal(outputs.filter((line) => line === "GOT").length, 1, `round ${round} (${stale ? "stale" : "fresh"} LOCK): ${JSON.stringify(outputs)}`);
      assert.ok(outputs.every((line) => line === "GOT" || line.startsWith("REFUSED data dir")), JSON.stringify(outputs));
      assert.deepEqual((await readdir(dir)).filter((name) => name.startsWith("LOCK")), [], "released, and nothing left aside");
    }
  });
});

describe("engine: idempotency (G5)", () => {
  it("answers a repeated id with the original outcome, across restarts and snapshots, without applying twice", async () => {
    const dir = await dataDir();
    const engine = await open(dir, { snapshotEvery: 5, snapshotsKept: 2 });
    const original = await engine.submit({ type: "counter.add", payload: { amount: 10 }, id: "order-1" });
    const concurrent = await Promise.all([
      engine.submit({ type: "counter.add", payload: { amount: 5 }, id: "order-2" }),
      engine.submit({ type: "counter.add", payload: { amount: 5 }, id: "order-2" }),
    ]);
    assert.equal(concurrent[0].index, concurrent[1].index);
    assert.equal(concurrent[1].duplicate, true);
    const again = await engine.submit({ type: "counter.add", payload: { amount: 10 }, id: "order-1" });
    assert.deepEqual(again, { ...original, duplicate: true });
    for (let i = 0; i < 20; i++) await engine.submit({ type: "counter.add", payload: { amount: 1 } });
    await engine.snapshot();
    assert.ok(engine.firstLogIndex > 2, "the WAL holding order-1 was truncated");
    await engine.close();

    const reopened = await open(dir, { snapshotEvery: 5, snapshotsKept: 2 });
    const afterRestart = await reopened.submit({ type: "counter.add", payload: { amount: 10 }, id: "order-1" });
    assert.deepEqual(afterRestart, { ...original, duplicate: true });
    assert.equal((await reopened.readState()).state.count, 10 + 5 + 20);
    await reopened.close();
  });

  it("forgets ids beyond the retention bound, oldest first", async () => {
    const dir = await dataDir();
    const engine = await open(dir, { outcomeRetention: { countMax: 3, retentionMs: 1_000_000 } });
    for (let i = 0; i < 5; i++) await engine.submit({ type: "counter.add", payload: { amount: 1 }, id: `id-${i}` });
    const oldest = await engine.submit({ type: "counter.add", payload: { amount: 1 }, id: "id-0" });
    assert.equal(oldest.duplicate, undefined, "id-0 was evicted and is applied as new");
    const newest = await engine.submit({ type: "counter.add", payload: { amount: 1 }, id: "id-4" });
    assert.equal(newest.duplicate, true);
    await engine.close();
  });
});

describe("engine: hybrid logical clock (G4)", () => {
  it("stamps strictly increasing HLCs across restarts when the wall clock steps back", async () => {
    const dir = await dataDir();
    const clock = new ManualClock(2_000_000_000_000);
    const engine = await open(dir, { clock });
    const a = await engine.submit({ type: "counter.add", payload: { amount: 1 } });
    clock.ms -= 60_000;
    const b = await engine.submit({ type: "counter.add", payload: { amount: 1 } });
    assert.ok(b.hlc > a.hlc);
    await engine.close();
    clock.ms -= 3_600_000;
    const reopened = await open(dir, { clock });
    const c = await reopened.submit({ type: "counter.add", payload: { amount: 1 } });
    assert.ok(c.hlc > b.hlc, `${c.hlc} > ${b.hlc}`);
    await reopened.close();
  });

  it("takes a client's HLC into account and refuses one too far ahead with clock_drift", async () => {
    const dir = await dataDir();
    const clock = new ManualClock(2_000_000_000_000);
    const engine = await open(dir, { clock, maxDriftMs: 1000 });
    const remote = encodeHlc({ wallMs: clock.ms + 500, counter: 7, nodeId: "client" });
    const accepted = await engine.submit({ type: "counter.add", payload: { amount: 1 }, hlc: remote });
    assert.ok(accepted.hlc > remote);
    const far = encodeHlc({ wallMs: clock.ms + 1001, counter: 0, nodeId: "client" });
    await isRejectedWith(engine.submit({ type: "counter.add", payload: { amount: 1 }, hlc: far }), "clock_drift");
    assert.equal(engine.stats().appliedIndex, 1);
    await engine.close();
  });

  it("leaves the clock where it was when a stamped command is refused: the next one is stamped as if it had not come", async () => {
    const dir = await dataDir();
    const clock = new ManualClock(2_000_000_000_000);
    const engine = await open(dir, { clock, maxDriftMs: 60_000 });
    const first = await engine.submit({ type: "counter.add", payload: { amount: 1 } });
    // Refused by the reducer, by the payload copy, and with a client stamp 55 s ahead: none of it is logged.
    const ahead = encodeHlc({ wallMs: clock.ms + 55_000, counter: 3, nodeId: "client" });
    await isRejectedWith(engine.submit({ type: "counter.add", payload: { amount: "x" }, hlc: ahead }), "bad_request");
    await isRejectedWith(engine.submit({ type: "counter.add", payload: { amount: Number.NaN } as never, hlc: ahead }), "bad_request");
    await isRejectedWith(engine.submit({ type: "counter.add", payload: { amount: "x" } }), "bad_request");
    const next = await engine.submit({ type: "counter.add", payload: { amount: 1 } });
    assert.equal(next.hlc, encodeHlc({ wallMs: clock.ms, counter: 1, nodeId: "node-1" }), `stamped ${next.hlc} after ${first.hlc}`);
    assert.equal((await engine.readState()).state.lastNowMs, clock.ms, "the reducer's now is the wall clock's");
    await engine.close();
    // A restart stamps the same: the live clock held nothing the log does not.
    const reopened = await open(dir, { clock });
    assert.equal((await reopened.submit({ type: "counter.add", payload: { amount: 1 } })).hlc, encodeHlc({ wallMs: clock.ms, counter: 2, nodeId: "node-1" }));
    await reopened.close();
  });

  it("gives the reducer time only through the command's HLC", async () => {
    const dir = await dataDir();
    const clock = new ManualClock(2_000_000_000_000);
    const engine = await open(dir, { clock });
    await engine.submit({ type: "counter.add", payload: { amount: 1 } });
    assert.equal((await engine.readState()).state.lastNowMs, 2_000_000_000_000);
    await engine.close();
  });
});

describe("engine: a failed flush poisons the engine (fsyncgate)", () => {
  it("rejects the batch and every later command, serves no reads, calls onFatal once, and recovers from disk", async () => {
    const dir = await dataDir();
    const fatal: Error[] = [];
    await initializeDataDir(new NodeFileSystem(), dir, counterGenesis());
    const log = new FaultyLog(await LmdbCommandLog.open(path.join(dir, "wal")));
    const engine = await open(dir, { log, onFatal: (e) => fatal.push(e) });
    await engine.submit({ type: "counter.add", payload: { amount: 1 } });
    log.failNextAppend(Object.assign(new Error("fdatasync: EIO"), { code: "EIO" }));
    const doomed = [1, 2, 3].map(() => engine.submit({ type: "counter.add", payload: { amount: 100 } }));
    for (const p of doomed) await isRejectedWith(p, "unavailable");
    await isRejectedWith(engine.submit({ type: "counter.add", payload: { amount: 1 } }), "unavailable");
    await isRejectedWith(engine.readState(), "unavailable");
    assert.equal(fatal.length, 1);
    assert.equal(log.appendCalls, 2, "the failed append is never retried");
    await engine.close();

    const reopened = await open(dir);
    const state = await reopened.readState();
    assert.equal(state.index, 1);
    assert.equal(state.state.count, 1);
    await reopened.close();
  });
});

describe("engine: snapshots, retention and recovery fallbacks", () => {
  it("keeps the newest K snapshots, truncates the WAL below the oldest, and recovers from the newest", async () => {
    const dir = await dataDir();
    const engine = await open(dir, { snapshotEvery: 100, snapshotsKept: 3 });
    for (let i = 0; i < 12; i++) {
      await Promise.all(Array.from({ length: 50 }, () => engine.submit({ type: "counter.add", payload: { amount: 1 } })));
    }
    await engine.snapshot();
    const files = (await readdir(path.join(dir, "snapshots"))).filter((f) => f.endsWith(".json")).sort();
    assert.equal(files.length, 3);
    const oldestKept = Number(files[0]?.slice("snapshot-".length, -".json".length));
    assert.equal(engine.firstLogIndex, oldestKept);
    const hash = await engine.stateHash();
    await engine.close();
    const reopened = await open(dir, { snapshotEvery: 100, snapshotsKept: 3 });
    assert.equal(await reopened.stateHash(), hash);
    assert.equal((await reopened.readState()).state.count, 600);
    await reopened.close();
  });

  it("removes the temp files of snapshot writes a crash interrupted, and nothing else", async () => {
    const dir = await dataDir();
    const engine = await open(dir, { snapshotEvery: 0 });
    await engine.submit({ type: "counter.add", payload: { amount: 2 } });
    await engine.snapshot();
    await engine.close();
    const snapshots = path.join(dir, "snapshots");
    const kept = (await readdir(snapshots)).sort();
    // What a process killed mid-write leaves: a partial file under the temp name (another pid's).
    await writeFile(path.join(snapshots, "snapshot-00000000000000000009.json.tmp-99999999-3"), '{"formatVersion":1,"sta');
    await writeFile(path.join(snapshots, "snapshot-00000000000000000001.json.tmp-1-1"), "");
    const reopened = await open(dir, { snapshotEvery: 0 });
    assert.deepEqual((await readdir(snapshots)).sort(), kept);
    assert.equal((await reopened.readState()).state.count, 2);
    await reopened.close();
  });

  it("keeps the whole WAL until K snapshots exist, so a young cluster keeps its history", async () => {
    const dir = await dataDir();
    const engine = await open(dir, { snapshotsKept: 3 });
    for (let i = 0; i < 5; i++) await engine.submit({ type: "counter.add", payload: { amount: 1 } });
    await engine.snapshot();
    await engine.submit({ type: "counter.add", payload: { amount: 1 } });
    await engine.close({ snapshot: true });
    const reopened = await open(dir, { snapshotsKept: 3 });
    assert.equal(reopened.firstLogIndex, 1);
    assert.equal((await reopened.readLog(1, 100)).length, 6);
    assert.equal((await reopened.stateAt(1)).state.count, 1);
    await reopened.close();
  });

  it("falls back to an older snapshot when the newest is corrupt, and refuses to start when none verifies", async () => {
    const dir = await dataDir();
    const engine = await open(dir, { snapshotEvery: 0 });
    for (let i = 0; i < 30; i++) {
      await engine.submit({ type: "counter.add", payload: { amount: 1 } });
      if (i % 10 === 9) await engine.snapshot();
    }
    const hash = await engine.stateHash();
    await engine.close();
    const snapshotDir = path.join(dir, "snapshots");
    const files = (await readdir(snapshotDir)).sort();
    const newest = path.join(snapshotDir, files.at(-1) as string);
    const text = await readFile(newest, "utf8");
    await writeFile(newest, text.replace('"count":30', '"count":31'));
    const skipped: string[] = [];
    const reopened = await open(dir, { onSkippedSnapshot: (p) => skipped.push(p.file) });
    assert.deepEqual(skipped, [newest]);
    assert.equal(await reopened.stateHash(), hash);
    await reopened.close();

    // With every snapshot damaged and the WAL truncated below the oldest, nothing verifiable is left.
    for (const file of files) await writeFile(path.join(snapshotDir, file), "{ torn");
    await assert.rejects(open(dir), (error: unknown) => {
      assert.ok(error instanceof RecoveryError);
      assert.deepEqual(
        error.problems.map((p) => p.file),
        [...files].reverse().map((f) => path.join(snapshotDir, f)),
      );
      assert.match(error.message, /WAL .* starts at 10/);
      return true;
    });
  });

  it("paces automatic snapshots by the whole file: with many idempotency rows and a small state, about one command per 256 bytes of the last snapshot", async () => {
    const dir = await dataDir();
    const real = new FileSnapshotStore(new NodeFileSystem(), path.join(dir, "snapshots"), { clusterId: "test-cluster" });
    const saved: Array<{ index: number; fileBytes: number }> = [];
    const counting: SnapshotStore = {
      list: () => real.list(),
      load: (index) => real.load(index),
      remove: (index) => real.remove(index),
      save: async (header, pieces) => {
        const result = await real.save(header, pieces);
        saved.push({ index: header.lastAppliedIndex, fileBytes: result.fileBytes });
        return result;
      },
    };
    const engine = await open(dir, { snapshots: counting, snapshotEvery: 50 });
    // Every command carries an id, as the client SDK's do: the rows grow, the state (one counter) does not.
    for (let round = 0; round < 60; round++) {
      await Promise.all(Array.from({ length: 50 }, (_, k) => engine.submit({ type: "counter.add", payload: { amount: 1 }, id: `add-${round}-${k}-${"x".repeat(40)}` })));
    }
    await engine.close();
    assert.ok(saved.length >= 4, `${saved.length} snapshots`);
    for (let i = 1; i < saved.length; i++) {
      const [before, after] = [saved[i - 1], saved[i]] as [{ index: number; fileBytes: number }, { index: number; fileBytes: number }];
      // The last save is close()'s, which is not paced.
      if (i === saved.length - 1) break;
      const due = Math.max(50, Math.ceil(before.fileBytes / 256));
      assert.ok(after.index - before.index >= due, `snapshot at ${after.index} came ${after.index - before.index} commands after one of ${before.fileBytes} bytes (due after ${due})`);
    }
    assert.ok((saved.at(-2)?.fileBytes ?? 0) > 256 * 50, "the rows made the file large enough to set the pace");
  });

  it("paces the first automatic snapshot after a restart by the snapshot file recovery started from, as after a save", async () => {
    const dir = await dataDir();
    const store = new FileSnapshotStore(new NodeFileSystem(), path.join(dir, "snapshots"), { clusterId: "test-cluster" });
    const submitBatches = async (engine: Engine<CounterState>, tag: string, batches: number): Promise<void> => {
      for (let round = 0; round < batches; round++) {
        await Promise.all(Array.from({ length: 50 }, (_, k) => engine.submit({ type: "counter.add", payload: { amount: 1 }, id: `${tag}-${round}-${k}-${"x".repeat(40)}` })));
      }
    };
    // Every command carries an id: the file grows by its idempotency rows (~100 bytes each), the state does not.
    const first = await open(dir, { snapshotEvery: 0 });
    await submitBatches(first, "before", 20);
    await first.snapshot();
    await first.close({ snapshot: false });
    const [recoveredFrom] = await store.list();
    assert.equal(recoveredFrom, 1_000);
    const due = Math.ceil((await store.fileBytes(1_000)) / 256);
    assert.ok(due >= 300, `a file that calls for ${due} commands before the next snapshot`);
    // Restarted: 250 commands, five times snapshotEvery but fewer than the file calls for, write no snapshot.
    const reopened = await open(dir, { snapshotEvery: 50 });
    await submitBatches(reopened, "after", 5);
    await reopened.close({ snapshot: false });
    assert.deepEqual(await store.list(), [1_000], "no snapshot within the 250 commands after the restart");
    // Past what the file calls for, the next one comes.
    const again = await open(dir, { snapshotEvery: 50 });
    await submitBatches(again, "later", Math.ceil(due / 50) + 1);
    await again.close({ snapshot: false });
    assert.ok(((await store.list())[0] ?? 0) > 1_250, `a snapshot after ${due} commands: ${(await store.list()).join(", ")}`);
  });

  it("keeps taking commands when snapshots fail, and retries every snapshotEvery commands, not on every flush", async () => {
    const dir = await dataDir();
    const real = new FileSnapshotStore(new NodeFileSystem(), path.join(dir, "snapshots"), { clusterId: "test-cluster" });
    let failuresLeft = 2;
    let saves = 0;
    const flaky: SnapshotStore = {
      list: () => real.list(),
      load: (index) => real.load(index),
      remove: (index) => real.remove(index),
      save: async (header, pieces) => {
        saves += 1;
        if (failuresLeft-- > 0) throw Object.assign(new Error("ENOSPC: no space left on device"), { code: "ENOSPC" });
        return real.save(header, pieces);
      },
    };
    const errors: Error[] = [];
    const engine = await open(dir, { snapshots: flaky, snapshotEvery: 10, onSnapshotError: (e) => errors.push(e) });
    for (let i = 0; i < 35; i++) await engine.submit({ type: "counter.add", payload: { amount: 1 } });
    await engine.snapshot();
    assert.equal(errors.length, 2);
    assert.ok(saves <= 4, `${saves} snapshot attempts for 35 commands`);
    assert.equal((await real.list())[0], 35);
    assert.equal((await engine.readState()).state.count, 35);
    await engine.close();
  });

  it("refuses to start, naming the file and index, when a WAL entry was tampered with", async () => {
    const dir = await dataDir();
    const engine = await open(dir);
    for (let i = 0; i < 10; i++) await engine.submit({ type: "counter.add", payload: { amount: 1 } });
    await engine.close();
    const walPath = path.join(dir, "wal");
    const env = openLmdb({ path: walPath });
    const db = env.openDB<string, number>(LMDB_LOG_DB_OPTIONS);
    const stored = db.get(7);
    assert.ok(stored !== undefined && stored.includes('"amount":1'), "entry 7 is stored under key 7");
    await db.put(7, stored.replace('"amount":1', '"amount":9'));
    await env.close();
    await assert.rejects(open(dir), (error: unknown) => {
      assert.ok(error instanceof RecoveryError, String(error));
      assert.match(error.message, /wal/);
      assert.deepEqual(
        error.problems.map((p) => p.index),
        [7],
      );
      return true;
    });
  });

  it("opens on a WAL entry tampered with behind the snapshot recovery starts from, and tells onOldWalDamage which entry it is", async () => {
    const dir = await dataDir();
    const engine = await open(dir);
    for (let i = 0; i < 10; i++) await engine.submit({ type: "counter.add", payload: { amount: 1 } });
    await engine.snapshot();
    for (let i = 0; i < 3; i++) await engine.submit({ type: "counter.add", payload: { amount: 1 } });
    await engine.close({ snapshot: false });
    const told: Array<{ index: number | undefined; detail: string }> = [];
    const onOldWalDamage = (problem: { index?: number; detail: string }) => told.push({ index: problem.index, detail: problem.detail });
    // Intact: nothing to tell.
    await (await open(dir, { onOldWalDamage })).close({ snapshot: false });
    assert.equal(told.length, 0, "an intact WAL: nothing told");
    const env = openLmdb({ path: path.join(dir, "wal") });
    const db = env.openDB<string, number>(LMDB_LOG_DB_OPTIONS);
    const stored = db.get(4);
    assert.ok(stored !== undefined && stored.includes('"amount":1'), "entry 4 is stored under key 4");
    await db.put(4, stored.replace('"amount":1', '"amount":9'));
    await env.close();
    // Recovery starts from the snapshot at 10 and never reads entry 4: the engine opens on the verified state, and says so.
    const reopened = await open(dir, { onOldWalDamage });
    try {
      assert.equal((await reopened.readState()).state.count, 13);
      assert.deepEqual(
        told.map((problem) => problem.index),
        [4],
      );
      assert.match(told[0]?.detail ?? "", /entry 4 does not follow the entry before it.*snapshot 10/);
    } finally {
      await reopened.close({ snapshot: false });
    }
  });

  it("refuses to start when the WAL lost entries a snapshot proves were durable (cut short, or deleted)", async () => {
    const dir = await dataDir();
    const engine = await open(dir, { snapshotEvery: 0 });
    for (let i = 0; i < 9; i++) {
      await engine.submit({ type: "counter.add", payload: { amount: 1 } });
      if (i === 4 || i === 8) await engine.snapshot();
    }
    await engine.close();
    const walPath = path.join(dir, "wal");
    // Entries 8 and 9 gone (snapshot 9 stays): starting from snapshot 5 would serve index 7 and hand out 8 again.
    const env = openLmdb({ path: walPath });
    const db = env.openDB<string, number>(LMDB_LOG_DB_OPTIONS);
    await db.remove(9);
    await db.remove(8);
    await env.close();
    const refusedWith = (lastIndex: number) => (error: unknown) => {
      assert.ok(error instanceof RecoveryError, String(error));
      assert.match(error.message, new RegExp(`ends at index ${lastIndex}, behind snapshot 9`));
      assert.deepEqual(error.problems.at(-1)?.index, lastIndex + 1);
      return true;
    };
    await assert.rejects(open(dir), refusedWith(7));
    // The WAL deleted whole: not a fresh start from genesis either.
    await rm(walPath, { recursive: true, force: true });
    await assert.rejects(open(dir), refusedWith(0));
  });

  it("answers stateAt from snapshots and the WAL, and history_pruned below what is kept", async () => {
    const dir = await dataDir();
    const engine = await open(dir, { snapshotsKept: 1 });
    for (let i = 1; i <= 20; i++) await engine.submit({ type: "counter.add", payload: { amount: i } });
    const at5 = await engine.stateAt(5);
    assert.equal(at5.state.count, 15);
    assert.equal(at5.index, 5);
    const at0 = await engine.stateAt(0);
    assert.equal(at0.state.count, 0);
    await engine.snapshot();
    for (let i = 21; i <= 25; i++) await engine.submit({ type: "counter.add", payload: { amount: i } });
    assert.equal((await engine.stateAt(22)).state.count, (22 * 23) / 2);
    assert.equal((await engine.stateAt(20)).state.count, 210);
    await isRejectedWith(engine.stateAt(5), "history_pruned");
    await isRejectedWith(engine.stateAt(26), "not_found");
    // Index 0 is genesis, whatever the log still holds.
    assert.equal((await engine.stateAt(0)).state.count, 0);
    assert.equal((await engine.stateTextAt(0)).stateHash, counterGenesis().stateHash);
    await engine.close();
  });
});

describe("engine: genesis (SPEC §4)", () => {
  it("refuses a hash mismatch, refuses another genesis on an initialized dir, accepts the same again", async () => {
    const dir = await dataDir();
    const good = counterGenesis("alpha");
    const bad = { ...good, stateHash: "0".repeat(64) };
    await isRejectedWith(open(dir, { genesis: bad }), "genesis_hash_mismatch");
    const engine = await open(dir, { genesis: good });
    await engine.submit({ type: "counter.add", payload: { amount: 1 } });
    await engine.close();
    const other = createGenesis("beta", counterGenesisState("beta"), "2026-11-29T12:00:00.000Z");
    await isRejectedWith(open(dir, { genesis: other }), "already_initialized");
    const same = await open(dir, { genesis: JSON.parse(JSON.stringify(good)) as unknown });
    assert.equal((await same.readState()).state.count, 1);
    await same.close();
  });
  it("reads the log while a snapshot truncates it: a read from a removed index is history_pruned, never a later page or a chain reported broken", async () => {
    const dir = await dataDir();
    // The truncation is held after its removal is durable (and visible to
    // reads), before the log's first index moves: the moment a reader can
    // take the old first index and then read a log that starts later.
    let releaseTruncation = (): void => undefined;
    let truncationHeld = (): void => undefined;
    const held = new Promise<void>((resolve) => (truncationHeld = resolve));
    await initializeDataDir(new NodeFileSystem(), dir, counterGenesis());
    const log = await LmdbCommandLog.open(path.join(dir, "wal"), {
      failpoints: {
        afterFlush: (write) => {
          if (write.kind !== "truncate") return;
          truncationHeld();
          return new Promise<void>((resolve) => (releaseTruncation = resolve));
        },
      },
    });
    const engine = await open(dir, { log, snapshotsKept: 1 });
    await Promise.all(Array.from({ length: 5 }, () => engine.submit({ type: "counter.add", payload: { amount: 1 } })));
    const snapshot = engine.snapshot();
    await held;
    assert.equal(engine.firstLogIndex, 1);
    // The reader asked for index 1, which is gone: refused naming the oldest held, never a page from 5 on.
    await assert.rejects(engine.readLog(1, 100), { code: "history_pruned", details: { index: 1, firstIndex: 5 } });
    assert.deepEqual((await engine.readLog(5, 100)).map((entry) => entry.index), [5]);
    releaseTruncation();
    await snapshot;
    assert.equal(engine.firstLogIndex, 5);
    await assert.rejects(engine.readLog(1, 100), { code: "history_pruned", details: { index: 1, firstIndex: 5 } });
    assert.deepEqual((await engine.readLog(5, 100)).map((entry) => entry.index), [5]);
    await engine.close();
  });
  it("stops a recovery when its signal aborts: rejects with the reason, writes nothing, and releases the data dir", async () => {
    const dir = await dataDir();
    const engine = await open(dir);
    for (let i = 0; i < 10; i++) await Promise.all(Array.from({ length: 1000 }, () => engine.submit({ type: "counter.add", payload: { amount: 1 } })));
    await engine.close({ snapshot: false });
    const stopped = new AbortController();
    const reason = new Error("operator stopped it");
    let progressCalls = 0;
    await assert.rejects(
      open(dir, {
        signal: stopped.signal,
        onProgress: () => {
          progressCalls += 1;
          stopped.abort(reason);
        },
      }),
      (error: unknown) => error === reason,
    );
    assert.equal(progressCalls, 1, "the replay stopped at its next pause");
    assert.deepEqual(await readdir(path.join(dir, "snapshots")), []);
    const reopened = await open(dir);
    assert.equal(reopened.stats().durableIndex, 10_000);
    assert.equal((await reopened.readState()).state.count, 10_000);
    await reopened.close();
    const aborted = new AbortController();
    aborted.abort(reason);
    await assert.rejects(open(dir, { signal: aborted.signal }), (error: unknown) => error === reason);
  });
  it("keeps the log a time-travel replay still reads while snapshots truncate it", async () => {
    const dir = await dataDir();
    await initializeDataDir(new NodeFileSystem(), dir, counterGenesis());
    const log = await LmdbCommandLog.open(path.join(dir, "wal"));
    const engine = await open(dir, { log, snapshotsKept: 1 });
    await Promise.all(Array.from({ length: 10 }, () => engine.submit({ type: "counter.add", payload: { amount: 1 } })));
    await engine.snapshot();
    for (let i = 0; i < 20; i++) await Promise.all(Array.from({ length: 1000 }, () => engine.submit({ type: "counter.add", payload: { amount: 1 } })));
    assert.equal(engine.firstLogIndex, 10);
    const expected = await engine.stateAt(20_000);
    const replayRead = nextRead(log);
    // A replay from the snapshot at 10 to 20,000, which pauses as it goes, while
    // a newer snapshot would let retention drop everything below it.
    const reading = engine.stateTextAt(20_000);
    await replayRead;
    await engine.snapshot();
    assert.ok(engine.firstLogIndex <= 11, `truncated to ${engine.firstLogIndex} under a replay that reads from 11`);
    // A new replay below the truncation retention wants is refused: otherwise replays in a row would hold the log back for good.
    await assert.rejects(engine.stateAt(15), (error: unknown) => error instanceof SwooshError && error.code === "history_pruned");
    const text = await reading;
    assert.equal(JSON.parse(text.pieces.join("")).count, 20_000);
    assert.equal(text.stateHash, computeStateHash(expected.state));
    // Once it is done, what retention wanted goes without waiting for another snapshot.
    const wanted = engine.stats().lastSnapshotIndex;
    for (let waited = 0; engine.firstLogIndex < wanted && waited < 5000; waited += 20) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(engine.firstLogIndex, wanted);
    // And the next snapshot truncates as usual.
    await engine.submit({ type: "counter.add", payload: { amount: 1 } });
    await engine.snapshot();
    assert.equal(engine.firstLogIndex, engine.stats().appliedIndex);
    await engine.close();
  });
});
