/**
 * `engine.stateText()` (what GET /state sends): the canonical text of the
 * durable state at one index, read from a capture a slice at a time while
 * commands go on; callers at one index share one read.
 */
import assert from "node:assert/strict";
import { cp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { after, describe, it } from "node:test";
import { computeStateHash } from "../../src/core/hash.ts";
import { SwooshError } from "../../src/core/errors.ts";
import { canonicalJSON } from "../../src/core/json.ts";
import type { StateMachine } from "../../src/core/state-machine.ts";
import { orchestratorMachine } from "../../src/domain/index.ts";
import type { OrchestratorModel } from "../../src/domain/index.ts";
import { initializeDataDir, openEngine } from "../../src/engine/open.ts";
import { LmdbCommandLog } from "../../src/storage/lmdb-log.ts";
import { NodeFileSystem } from "../../src/storage/node-fs.ts";
import { defaultGenesis, openSwoosh } from "../../src/index.ts";
import { nextRead, tempDir } from "../support/engine-fixtures.ts";

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups) await cleanup();
});

describe("engine: stateText", () => {
  it("gives a read up (unavailable, with the heap figures) while the heap has no room for the text, and reads again once it has", async () => {
    const { dir, cleanup } = await tempDir();
    cleanups.push(cleanup);
    const limitBytes = 1024 * 1024 * 1024;
    let share = 0.3;
    /** Calls of heapFigures after which it reports 80% (a read that fills the heap as it goes). */
    let overAfterCalls = Number.POSITIVE_INFINITY;
    let calls = 0;
    const heapFigures = () => {
      calls += 1;
      return { usedBytes: (calls > overAfterCalls ? 0.8 : share) * limitBytes, limitBytes };
    };
    const engine = await openSwoosh({ dataDir: dir, snapshotEvery: 0, onFatal: () => undefined, heapFigures });
    const big = "y".repeat(300);
    await Promise.all(Array.from({ length: 3000 }, (_, i) => engine.submit({ type: "task.submit", payload: { taskId: `t${i}`, kind: "k", payload: { i, big } } })));
    const refusedAs = (error: unknown): boolean => {
      assert.ok(error instanceof SwooshError, String(error));
      assert.equal(error.code, "unavailable");
      assert.match(error.message, /not enough memory for the state's text/);
      assert.deepEqual(error.details, { heapUsedBytes: 0.8 * limitBytes, heapLimitBytes: limitBytes });
      return true;
    };

    share = 0.8;
    await assert.rejects(engine.stateText(), refusedAs, "refused before a piece is read");
    share = 0.3;
    overAfterCalls = calls + 4;
    await assert.rejects(engine.stateText(), refusedAs, "given up part way, once the heap is past 75%");
    overAfterCalls = Number.POSITIVE_INFINITY;
    const text = await engine.stateText();
    assert.ok(text.pieces.length > 4, `read in pieces: ${text.pieces.length}`);
    assert.ok(text.pieces.every((piece) => Buffer.isBuffer(piece)), "held as bytes, outside V8's heap");
    assert.equal(Buffer.concat(text.pieces as Buffer[]).toString("utf8"), canonicalJSON((await engine.readState()).state));
    await engine.close();
  });

  it("is the state of the index it was asked at, whatever is applied while it is read", async () => {
    const { dir, cleanup } = await tempDir();
    cleanups.push(cleanup);
    const engine = await openSwoosh({ dataDir: dir, snapshotEvery: 0, onFatal: () => undefined });
    const big = "y".repeat(300);
    await Promise.all(Array.from({ length: 3000 }, (_, i) => engine.submit({ type: "task.submit", payload: { taskId: `t${i}`, kind: "k", payload: { i, big } } })));
    const before = await engine.readState();

    const first = engine.stateText();
    const second = engine.stateText();
    assert.equal(first, second, "two callers at one index share the read");
    // Applied while the text is read: tasks whose text comes last are replaced, new ones added.
    const later: Array<Promise<unknown>> = Array.from({ length: 50 }, (_, i) => engine.submit({ type: "task.cancel", payload: { taskId: `t${999 - i}` } }));
    later.push(...Array.from({ length: 50 }, (_, i) => engine.submit({ type: "task.submit", payload: { taskId: `u${i}`, kind: "k" } })));
    const [text] = await Promise.all([first, Promise.all(later)]);

    assert.equal(text.index, before.index);
    assert.ok(text.pieces.length > 1, "read in more than one piece");
    const joined = text.pieces.join("");
    assert.equal(joined, canonicalJSON(before.state));
    assert.equal(text.byteLength, Buffer.byteLength(joined));
    assert.equal(text.stateHash, computeStateHash(before.state));
    assert.equal(text.logHash, before.logHash);

    const now = await engine.stateText();
    assert.equal(now.index, before.index + 100);
    assert.equal(now.stateHash, await engine.stateHash());
    assert.equal(now.stateHash, computeStateHash((await engine.readState()).state));
    await engine.close();
  });
  it("stateTextAt is the text of stateAt, from a snapshot plus a replay or from genesis", async () => {
    const { dir, cleanup } = await tempDir();
    cleanups.push(cleanup);
    const engine = await openSwoosh({ dataDir: dir, snapshotEvery: 1000, onFatal: () => undefined });
    for (let i = 0; i < 3000; i += 500) {
      await Promise.all(Array.from({ length: 500 }, (_, j) => engine.submit({ type: "task.submit", payload: { taskId: `t${i + j}`, kind: "k", payload: { n: i + j } } })));
    }
    const last = engine.stats().appliedIndex;
    for (const index of [0, 1, 999, 1000, 1001, 2500, last - 1, last]) {
      const text = await engine.stateTextAt(index);
      const at = await engine.stateAt(index);
      assert.equal(text.index, index);
      assert.equal(text.pieces.join(""), canonicalJSON(at.state), `at ${index}`);
      assert.equal(text.stateHash, computeStateHash(at.state));
      assert.equal(text.logHash, at.logHash);
      assert.equal(text.hlc, at.hlc);
    }
    await engine.close();
  });
  it("travels past a snapshot copied from a diverged dir: it verifies on its own, but is not of this WAL's history", async () => {
    const { dir: base, cleanup } = await tempDir();
    cleanups.push(cleanup);
    const submitAll = async (engine: Awaited<ReturnType<typeof openSwoosh>>, prefix: string, count: number) => {
      for (let i = 0; i < count; i++) await engine.submit({ type: "task.submit", payload: { taskId: `${prefix}${i}`, kind: "k" } });
    };
    const shared = await openSwoosh({ dataDir: base, snapshotEvery: 0, onFatal: () => undefined });
    await submitAll(shared, "s", 5);
    await shared.close();
    const mine = path.join(base, "..", `${path.basename(base)}-mine`);
    const theirs = path.join(base, "..", `${path.basename(base)}-theirs`);
    cleanups.push(() => rm(mine, { recursive: true, force: true }), () => rm(theirs, { recursive: true, force: true }));
    await cp(base, mine, { recursive: true });
    await cp(base, theirs, { recursive: true });
    // The other history: its snapshot at index 10 holds tasks this one never had.
    const other = await openSwoosh({ dataDir: theirs, snapshotEvery: 0, onFatal: () => undefined });
    await submitAll(other, "theirs-", 5);
    await other.snapshot();
    await other.close();
    for (const timeTravelMachine of [undefined, null]) {
      await rm(path.join(mine, "snapshots"), { recursive: true, force: true });
      const engine = await openSwoosh({ dataDir: mine, snapshotEvery: 0, onFatal: () => undefined, ...(timeTravelMachine === null ? { timeTravelMachine: null } : {}) });
      if (engine.stats().appliedIndex === 5) await submitAll(engine, "mine-", 7);
      const truth = await engine.stateAt(10);
      const foreign = (await readdir(path.join(theirs, "snapshots"))).find((name) => name.endsWith(".json")) as string;
      await cp(path.join(theirs, "snapshots", foreign), path.join(mine, "snapshots", foreign));
      const text = await engine.stateTextAt(10);
      assert.equal(text.index, 10);
      assert.equal(text.stateHash, computeStateHash(truth.state), `in a worker: ${timeTravelMachine === undefined}`);
      assert.ok(!text.pieces.join("").includes("theirs-"));
      assert.equal(computeStateHash((await engine.stateAt(10)).state), computeStateHash(truth.state));
      await engine.close();
    }
  });

  it("reports a damaged snapshot time travel passes over, and refuses as unavailable (naming them) when only damaged ones could answer", async () => {
    for (const timeTravelMachine of [undefined, null]) {
      const { dir, cleanup } = await tempDir();
      cleanups.push(cleanup);
      const skipped: string[] = [];
      const engine = await openSwoosh({
        dataDir: dir,
        snapshotEvery: 0,
        snapshotsKept: 2,
        onFatal: () => undefined,
        onSkippedSnapshot: (problem) => skipped.push(problem.file),
        ...(timeTravelMachine === null ? { timeTravelMachine: null } : {}),
      });
      const submit = (from: number, count: number) =>
        Promise.all(Array.from({ length: count }, (_, i) => engine.submit({ type: "task.submit", payload: { taskId: `t${from + i}`, kind: "k" } })));
      await submit(0, 100);
      await engine.snapshot();
      await submit(100, 100);
      await engine.snapshot();
      await submit(200, 50);
      assert.equal(engine.firstLogIndex, 100, "genesis is out of reach: the log starts at the older snapshot");
      const expected = await engine.stateAt(220);
      const files = (await readdir(path.join(dir, "snapshots"))).filter((name) => name.endsWith(".json")).sort();
      const [older, newer] = files.map((name) => path.join(dir, "snapshots", name)) as [string, string];
      const damage = async (file: string) => {
        const bytes = await readFile(file);
        bytes.write("XXXX", Math.floor(bytes.length / 2));
        await writeFile(file, bytes);
      };
      await damage(newer);
      const text = await engine.stateTextAt(220);
      assert.equal(text.stateHash, computeStateHash(expected.state), "answered from the older snapshot");
      assert.deepEqual(skipped, [newer], "the damaged snapshot was reported");
      await damage(older);
      await assert.rejects(engine.stateTextAt(221), (error: unknown) => {
        assert.ok(error instanceof SwooshError, String(error));
        assert.equal(error.code, "unavailable", error.message);
        assert.deepEqual((error.details as { snapshots: string[] }).snapshots, [newer, older]);
        return true;
      });
      await engine.close();
    }
  });

  it("close() during a time travel ends its worker: the travel fails unavailable, and no thread is left running", async () => {
    const { dir, cleanup } = await tempDir();
    cleanups.push(cleanup);
    const engine = await openSwoosh({ dataDir: dir, snapshotEvery: 0, onFatal: () => undefined });
    const threads = async () => (await readdir("/proc/self/task")).length;
    for (let i = 0; i < 40_000; i += 2000) {
      await Promise.all(Array.from({ length: 2000 }, (_, j) => engine.submit({ type: "task.submit", payload: { taskId: `t${i + j}`, kind: "k", payload: { n: i + j } } })));
    }
    const before = await threads();
    const reading = engine.stateTextAt(39_000);
    const outcome = reading.then(
      () => "answered",
      (error: unknown) => (error instanceof SwooshError ? error.code : String(error)),
    );
    // The worker starts and replays from genesis (no snapshot): close comes in the middle.
    await new Promise((resolve) => setTimeout(resolve, 150));
    await engine.close();
    assert.equal(await outcome, "unavailable");
    let now = await threads();
    for (let waited = 0; now > before && waited < 3000; waited += 50) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      now = await threads();
    }
    assert.ok(now <= before, `threads: ${before} before the travel, ${now} after close`);
  });

  it("time travel in a worker keeps the log it replays while a snapshot would truncate it", async () => {
    const { dir, cleanup } = await tempDir();
    cleanups.push(cleanup);
    await initializeDataDir(new NodeFileSystem(), dir, defaultGenesis());
    const log = await LmdbCommandLog.open(path.join(dir, "wal"));
    const engine = await openSwoosh({ dataDir: dir, log, snapshotEvery: 0, snapshotsKept: 1, onFatal: () => undefined });
    const submit = (from: number, count: number) =>
      Promise.all(Array.from({ length: count }, (_, i) => engine.submit({ type: "task.submit", payload: { taskId: `t${from + i}`, kind: "k" } })));
    await submit(0, 100);
    await engine.snapshot();
    await submit(100, 5000);
    const expected = await engine.stateAt(4000);
    // Its first read says the travel holds the log.
    const travelRead = nextRead(log);
    const reading = engine.stateTextAt(4000);
    await travelRead;
    // The worker is starting (its base is the snapshot at 100); a newer snapshot now would drop the log below it.
    await engine.snapshot();
    assert.ok(engine.firstLogIndex <= 101, `truncated to ${engine.firstLogIndex} under a replay that reads from 101`);
    const text = await reading;
    assert.equal(text.pieces.join(""), canonicalJSON(expected.state));
    assert.equal(text.stateHash, computeStateHash(expected.state));
    await engine.close();
  });
  it("stateTextAt the newest index is that index's text, though a read under way ends after the next command", async () => {
    const { dir, cleanup } = await tempDir();
    cleanups.push(cleanup);
    const engine = await openSwoosh({ dataDir: dir, snapshotEvery: 0, onFatal: () => undefined });
    const big = "z".repeat(1000);
    await Promise.all(Array.from({ length: 6000 }, (_, i) => engine.submit({ type: "task.submit", payload: { taskId: `t${i}`, kind: "k", payload: { big } } })));
    const earlier = engine.stateText();
    const newest = (await engine.submit({ type: "task.submit", payload: { taskId: "n", kind: "k" } })).index;
    const expected = computeStateHash((await engine.stateAt(newest)).state);
    let earlierDone = false;
    void earlier.then(() => (earlierDone = true));
    const atNewest = engine.stateTextAt(newest);
    // Once the newest index was found live (its check waits for this barrier first)...
    await engine.barrier();
    await new Promise((resolve) => setImmediate(resolve));
    // ...a command applied while the earlier read is still under way: the read the newest index waits for ends after it.
    assert.equal(earlierDone, false, "the earlier read is still under way");
    await engine.submit({ type: "task.submit", payload: { taskId: "after", kind: "k" } });
    await earlier;
    const text = await atNewest;
    assert.equal(text.index, newest);
    assert.equal(text.stateHash, expected);
    assert.equal(computeStateHash(JSON.parse(text.pieces.join(""))), expected);
    await engine.close();
  });

  it("reads one text at a time: a caller at a later index waits, then gets the state as it is then", async () => {
    const { dir, cleanup } = await tempDir();
    cleanups.push(cleanup);
    // The orchestrator, counting the captures open at once (each read of the text holds one).
    let open = 0;
    let most = 0;
    const machine: StateMachine<OrchestratorModel> = {
      ...orchestratorMachine,
      capture: (model) => {
        const capture = (orchestratorMachine.capture as NonNullable<typeof orchestratorMachine.capture>)(model);
        most = Math.max(most, ++open);
        return { top: capture.top, release: () => (open--, capture.release()) };
      },
    };
    const engine = await openEngine({ dataDir: dir, machine, defaultGenesis: () => defaultGenesis(), snapshotEvery: 0, onFatal: () => undefined });
    const big = "z".repeat(300);
    await Promise.all(Array.from({ length: 3000 }, (_, i) => engine.submit({ type: "task.submit", payload: { taskId: `t${i}`, kind: "k", payload: { big } } })));

    const first = engine.stateText();
    const applied = engine.submit({ type: "task.submit", payload: { taskId: "later", kind: "k" } });
    const second = engine.stateText();
    const [a, b] = await Promise.all([first, second, applied]);
    assert.equal(most, 1, "one text read at a time");
    assert.equal(b.index, a.index + 1);
    assert.equal(b.pieces.join(""), canonicalJSON((await engine.readState()).state));
    await engine.close();
  });
});
