/**
 * FileSnapshotStore: round trips, crash safety, and every kind of damage it must
 * detect and name (file and index) instead of serving unverified state.
 */
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { computeStateHash, sha256Hex } from "../../src/core/hash.ts";
import { canonicalJSON } from "../../src/core/json.ts";
import { RecordTextCache } from "../../src/core/record-text-cache.ts";
import type { JsonObject, JsonValue } from "../../src/core/json.ts";
import { SnapshotCorruptError, SnapshotOtherClusterError } from "../../src/storage/errors.ts";
import { NodeFileSystem } from "../../src/storage/node-fs.ts";
import { FileSnapshotStore, computeMetaHash, snapshotFileName } from "../../src/storage/snapshot-store.ts";
import { StrictMemFileSystem } from "../../src/storage/strict-mem-fs.ts";
import type { FileSystem, SnapshotHeader } from "../../src/storage/types.ts";

const DIR = "/data/snapshots";

function stateAt(index: number): JsonObject {
  const tasks: JsonObject = {};
  for (let i = 0; i < 50; i++) tasks[`task-${i}`] = { id: `task-${i}`, status: i % 2 ? "queued" : "succeeded", payload: { n: i * index } };
  return {
    schemaVersion: 1,
    clusterId: "c1",
    // Parsed, not written as a literal: a literal "__proto__" key would set the prototype.
    agents: JSON.parse('{"__proto__":{"id":"__proto__"},"constructor":{"id":"constructor"},"":{"id":""},"🚀":{"id":"🚀"}}') as JsonObject,
    tasks,
  };
}

const GENESIS = { genesisStateHash: sha256Hex("genesis state"), genesisTime: "2026-01-01T00:00:00.000Z" } as const;

function headerAt(index: number, clusterId = "c1"): SnapshotHeader {
  return { clusterId, ...GENESIS, lastAppliedIndex: index, lastAppliedHlc: `${String(1_700_000_000_000 + index).padStart(15, "0")}-0000000000-n1`, logHash: sha256Hex(`log ${index}`), outcomes: { recent: [`cmd-${index}`] } };
}

interface StoreOptions {
  clusterId?: string;
  wholeTextBytesMax?: number | undefined;
}

async function makeStrictStore(options: StoreOptions = {}): Promise<{ fs: StrictMemFileSystem; store: FileSnapshotStore }> {
  const fs = new StrictMemFileSystem();
  await fs.mkdirp("/data");
  return { fs, store: new FileSnapshotStore(fs, DIR, options) };
}

async function saveAt(store: FileSnapshotStore, index: number): Promise<string> {
  // Small pieces, so the streaming path (many pieces, incremental hash) is what runs.
  return (await store.save(headerAt(index), new RecordTextCache().pieces(stateAt(index), 64))).stateHash;
}

async function overwrite(fs: FileSystem, path: string, text: string): Promise<void> {
  const handle = await fs.create(path);
  await handle.write(text);
  await handle.sync();
  await handle.close();
}

/** Rewrites one snapshot file through `edit` and returns the store's verdict on loading it. */
async function loadAfterEditWith(wholeTextBytesMax: number | undefined, edit: (text: string) => string, index = 7): Promise<unknown> {
  const { fs, store } = await makeStrictStore({ clusterId: "c1", wholeTextBytesMax });
  await saveAt(store, index);
  const path = store.pathFor(index);
  await overwrite(fs, path, edit((await fs.readFile(path)).toString("utf8")));
  return store.load(index).then(
    () => assert.fail("load accepted a damaged snapshot"),
    (error: unknown) => error,
  );
}

function assertCorrupt(error: unknown, pattern: RegExp, index = 7): asserts error is SnapshotCorruptError {
  assert.ok(error instanceof SnapshotCorruptError, String(error));
  assert.equal(error.file, join(DIR, snapshotFileName(index)));
  assert.equal(error.index, index);
  assert.match(error.message, new RegExp(snapshotFileName(index).replace(/\./g, "\\.")));
  assert.match(error.message, new RegExp(`index ${index}`));
  assert.match(error.detail, pattern);
}

// Everything below holds for every way of reading a file: as one string, and
// in parts (how a file too large for one string is read): runs of a few
// records (200 bytes), or every value split apart (0).
for (const [title, wholeTextBytesMax] of [
  ["FileSnapshotStore", undefined],
  ["FileSnapshotStore reading files in parts of 200 bytes", 200],
  ["FileSnapshotStore reading files in parts, every value apart", 0],
] as const) {
  describe(title, () => {
    const strictStore = (options: StoreOptions = {}): ReturnType<typeof makeStrictStore> => makeStrictStore({ ...options, wholeTextBytesMax });
    const loadAfterEdit = (edit: (text: string) => string, index?: number): Promise<unknown> => loadAfterEditWith(wholeTextBytesMax, edit, index);

    it("round-trips header and state, returning the state hash; lists newest first", async () => {
      const { store } = await strictStore({ clusterId: "c1" });
      assert.deepEqual(await store.list(), []);
      for (const index of [5, 120, 33]) assert.equal(await saveAt(store, index), computeStateHash(stateAt(index)));
      assert.deepEqual(await store.list(), [120, 33, 5]);
      const doc = await store.load(33);
      assert.equal(doc.formatVersion, 2);
      assert.deepEqual(doc.state, stateAt(33));
      assert.equal(canonicalJSON(doc.state), canonicalJSON(stateAt(33)));
      assert.equal(doc.stateHash, computeStateHash(stateAt(33)));
      const { clusterId, genesisStateHash, genesisTime, lastAppliedIndex, lastAppliedHlc, logHash, outcomes } = doc;
      assert.deepEqual({ clusterId, genesisStateHash, genesisTime, lastAppliedIndex, lastAppliedHlc, logHash, outcomes }, headerAt(33));
      assert.equal(doc.metaHash, computeMetaHash(doc));
      // As documented: the canonical JSON of every field but the state and the metaHash, the genesis fields included.
      const { state: _state, metaHash: _metaHash, ...meta } = doc;
      assert.equal(doc.metaHash, sha256Hex(canonicalJSON(meta)));
    });

    it("verifies outcome rows as the engine writes them (an array of rows, hashed a row at a time in parts) and catches an edited row", async () => {
      const { fs, store } = await strictStore({ clusterId: "c1" });
      const rows: JsonValue[] = Array.from({ length: 40 }, (_, i) => [
        i % 5 === 0 ? "__proto__" : `id-${i}-😀`,
        i + 1,
        `${String(1_700_000_000_000 + i).padStart(15, "0")}-0000000000-n1`,
        { leases: [{ payload: { "é\n": i, list: [i, null, true] }, taskId: `t${i}`, token: i }] },
      ]);
      const header = { ...headerAt(9), outcomes: rows };
      // The engine hands its rows over as a JsonRows view, not an array.
      await store.save({ ...header, outcomes: { length: rows.length, row: (i: number) => rows[i] as JsonValue } }, new RecordTextCache().pieces(stateAt(9), 64));
      const doc = await store.load(9);
      assert.deepEqual(doc.outcomes, rows);
      assert.equal(doc.metaHash, computeMetaHash({ ...doc, outcomes: rows }));
      const path = store.pathFor(9);
      const text = (await fs.readFile(path)).toString("utf8");
      const edited = text.replace('"taskId":"t17"', '"taskId":"t71"');
      assert.notEqual(edited, text);
      await overwrite(fs, path, edited);
      const error = await store.load(9).then(
        () => assert.fail("load accepted an edited outcome row"),
        (caught: unknown) => caught,
      );
      assertCorrupt(error, /metaHash does not match/, 9);
    });

    it("keeps special keys (__proto__, constructor, empty, emoji) as ordinary keys", async () => {
      const { store } = await strictStore();
      await saveAt(store, 1);
      const agents = (await store.load(1)).state.agents as JsonObject;
      assert.deepEqual(Object.keys(agents).sort(), ["", "__proto__", "constructor", "🚀"]);
      assert.equal(Object.getPrototypeOf(agents), Object.prototype);
    });

    it("a saved snapshot survives power loss; remove is durable and idempotent", async () => {
      const { fs, store } = await strictStore();
      await saveAt(store, 1);
      await saveAt(store, 2);
      await store.remove(1);
      await store.remove(1);
      fs.crash();
      fs.restart();
      const after = new FileSnapshotStore(fs, DIR, { wholeTextBytesMax });
      assert.deepEqual(await after.list(), [2]);
      assert.deepEqual((await after.load(2)).state, stateAt(2));
    });

    it("power loss at any step of save leaves only complete, verifiable snapshots", async () => {
      let stepCount = 0;
      {
        const { fs, store } = await strictStore();
        await saveAt(store, 1);
        fs.onStep = () => void (stepCount += 1);
        await saveAt(store, 2);
      }
      for (let crashStep = 0; crashStep <= stepCount; crashStep++) {
        const { fs, store } = await strictStore();
        await saveAt(store, 1);
        let seen = 0;
        fs.onStep = () => {
          if (seen++ === crashStep) fs.crash({ tearSeed: crashStep });
        };
        await saveAt(store, 2).catch(() => undefined);
        fs.onStep = undefined;
        if (seen <= crashStep) fs.crash({ tearSeed: crashStep });
        fs.restart();
        const after = new FileSnapshotStore(fs, DIR, { wholeTextBytesMax });
        const listed = await after.list();
        assert.ok(listed.includes(1), `crash step ${crashStep}: the older snapshot vanished`);
        for (const index of listed) assert.deepEqual((await after.load(index)).state, stateAt(index), `crash step ${crashStep}`);
      }
    });

    it("list ignores temp files and names that do not match the pattern", async () => {
      const { fs, store } = await strictStore();
      await saveAt(store, 3);
      for (const name of [`${snapshotFileName(9)}.tmp-1-1`, "snapshot-12.json", "snapshot-0000000000000000000x.json", "notes.txt", `${snapshotFileName(4)}.bak`]) {
        await overwrite(fs, join(DIR, name), "{}");
      }
      assert.deepEqual(await store.list(), [3]);
    });

    it("detects a flipped byte in the state and names file, index, expected and actual hash", async () => {
      const error = await loadAfterEdit((text) => text.replace('"queued"', '"qveued"'));
      assertCorrupt(error, /stateHash does not match/);
      assert.equal(error.expectedHash, computeStateHash(stateAt(7)));
      assert.notEqual(error.actualHash, error.expectedHash);
      assert.match(error.actualHash ?? "", /^[0-9a-f]{64}$/);
    });

    it("accepts the same snapshot laid out another way (re-indented), and still refuses one whose state changed", async () => {
      // load hashes the state's bytes where save put them; any other layout is checked by serializing the parsed state.
      const { fs, store } = await strictStore({ clusterId: "c1" });
      await saveAt(store, 7);
      const path = store.pathFor(7);
      const original = (await fs.readFile(path)).toString("utf8");
      await overwrite(fs, path, JSON.stringify(JSON.parse(original), null, 2));
      const reloaded = await store.load(7);
      assert.equal(canonicalJSON(reloaded.state), canonicalJSON(stateAt(7)));
      assert.equal(reloaded.stateHash, computeStateHash(stateAt(7)));

      // Re-indented and changed: the serializing path refuses it as the byte path would.
      await overwrite(fs, path, JSON.stringify(JSON.parse(original.replace('"queued"', '"qveued"')), null, 2));
      assertCorrupt(await store.load(7).then(() => undefined, (error: unknown) => error), /stateHash does not match/);
    });

    it("detects a flipped byte that breaks the JSON", async () => {
      assertCorrupt(await loadAfterEdit((text) => text.replace('"tasks":{', '"tasks":[')), /not valid JSON/);
    });

    it("detects a truncated file", async () => {
      assertCorrupt(await loadAfterEdit((text) => text.slice(0, Math.floor(text.length / 2))), /not valid JSON/);
      assertCorrupt(await loadAfterEdit(() => ""), /not valid JSON/);
    });

    it("detects an edited metaHash", async () => {
      const error = await loadAfterEdit((text) => text.replace(/"metaHash":"[0-9a-f]{64}"/, `"metaHash":"${"e".repeat(64)}"`));
      assertCorrupt(error, /metaHash does not match/);
      assert.equal(error.expectedHash, "e".repeat(64));
    });

    it("detects an edited header field (lastAppliedIndex, logHash, outcomes) through the metaHash", async () => {
      assertCorrupt(await loadAfterEdit((text) => text.replace('"lastAppliedIndex":7', '"lastAppliedIndex":8')), /metaHash does not match/);
      assertCorrupt(await loadAfterEdit((text) => text.replace('"cmd-7"', '"cmd-8"')), /metaHash does not match/);
      assertCorrupt(await loadAfterEdit((text) => text.replace(/"logHash":"[0-9a-f]/, '"logHash":"x')), /metaHash does not match/);
    });

    it("detects an edited genesis field (genesisStateHash, genesisTime) through the metaHash, and one left out", async () => {
      const flipped = GENESIS.genesisStateHash.startsWith("0") ? "1" : "0";
      assertCorrupt(await loadAfterEdit((text) => text.replace(`"genesisStateHash":"${GENESIS.genesisStateHash[0] ?? ""}`, `"genesisStateHash":"${flipped}`)), /metaHash does not match/);
      assertCorrupt(await loadAfterEdit((text) => text.replace('"genesisTime":"2026-01-01', '"genesisTime":"2026-01-02')), /metaHash does not match/);
      // Left out, with a metaHash that matches what is left: a formatVersion 2 file must name its genesis.
      const error = await loadAfterEdit((text) => {
        const { genesisTime: _dropped, metaHash: _metaHash, state, ...meta } = JSON.parse(text) as Record<string, JsonValue>;
        return JSON.stringify({ ...meta, state, metaHash: sha256Hex(canonicalJSON(meta)) });
      });
      assertCorrupt(error, /field genesisTime is missing/);
    });

    it("detects a file renamed to another index even with a consistent metaHash", async () => {
      const error = await loadAfterEdit((text) => {
        const doc = JSON.parse(text) as Record<string, never>;
        const edited = { ...doc, lastAppliedIndex: 8 } as unknown as Parameters<typeof computeMetaHash>[0];
        return JSON.stringify({ ...edited, metaHash: computeMetaHash(edited) });
      });
      assertCorrupt(error, /file name says index 7, content says 8/);
    });

    it("detects a snapshot of another cluster, and refuses to save one", async () => {
      const { fs, store } = await strictStore({ clusterId: "c1" });
      const foreign = new FileSnapshotStore(fs, DIR, { clusterId: "c2" });
      await foreign.save(headerAt(7, "c2"), [canonicalJSON(stateAt(7))]);
      const whole = await store.load(7).then(() => undefined, (error: unknown) => error);
      assertCorrupt(whole, /cluster "c2", expected "c1"/);
      // Whole, it comes with its document (the caller checks whether it is of this history); damaged as well, it does not.
      assert.ok(whole instanceof SnapshotOtherClusterError, String(whole));
      assert.deepEqual([whole.doc.clusterId, whole.doc.lastAppliedIndex], ["c2", 7]);
      await overwrite(fs, store.pathFor(7), (await fs.readFile(store.pathFor(7))).toString("utf8").replace('"n":7', '"n":8'));
      const damaged = await store.load(7).then(() => undefined, (error: unknown) => error);
      assertCorrupt(damaged, /cluster "c2", expected "c1"/);
      assert.ok(!(damaged instanceof SnapshotOtherClusterError), "a damaged one is only corrupt");
      await assert.rejects(store.save(headerAt(8, "c2"), [canonicalJSON(stateAt(8))]), /refused/);
      assert.deepEqual(await store.list(), [7]);
    });

    it("detects an unsupported formatVersion", async () => {
      assertCorrupt(await loadAfterEdit((text) => text.replace('"formatVersion":2', '"formatVersion":3')), /unsupported formatVersion 3/);
    });

    it("loads a formatVersion 1 snapshot (written before the genesis fields), and still detects damage in one", async () => {
      // Written by the FileSnapshotStore of before the genesis fields, byte for byte.
      const old = await readFile(new URL("./fixtures/snapshot-format-1.json", import.meta.url), "utf8");
      const { fs, store } = await strictStore({ clusterId: "c1" });
      await fs.mkdirp(DIR);
      await overwrite(fs, store.pathFor(7), old);
      const doc = await store.load(7);
      assert.equal(doc.formatVersion, 1);
      assert.equal("genesisStateHash" in doc || "genesisTime" in doc, false, "no genesis named");
      assert.equal(doc.stateHash, computeStateHash(doc.state));
      assert.equal(doc.lastAppliedIndex, 7);
      await overwrite(fs, store.pathFor(7), old.replace('"cmd-7"', '"cmd-8"'));
      assertCorrupt(await store.load(7).then(() => undefined, (error: unknown) => error), /metaHash does not match/);
      // A genesis member added to a formatVersion 1 file is no part of it (its metaHash never covered one): not read.
      await overwrite(fs, store.pathFor(7), old.replace('"clusterId":"c1",', `"clusterId":"c1","genesisStateHash":"${"b".repeat(64)}",`));
      assert.equal((await store.load(7)).genesisStateHash, undefined);
      // Beside it, the store writes formatVersion 2, naming the genesis.
      await saveAt(store, 8);
      const next = await store.load(8);
      assert.deepEqual([next.formatVersion, next.genesisStateHash, next.genesisTime], [2, GENESIS.genesisStateHash, GENESIS.genesisTime]);
    });

    it("refuses empty state pieces without leaving a file", async () => {
      const { fs, store } = await strictStore();
      await assert.rejects(store.save(headerAt(1), []), /empty/);
      assert.deepEqual(await fs.readdir(DIR), []);
    });

    it("works on the real file system and accepts async pieces", async () => {
      const dir = await mkdtemp(join(tmpdir(), "swoosh-snapshots-"));
      try {
        const store = new FileSnapshotStore(new NodeFileSystem(), join(dir, "snapshots"), { clusterId: "c1", wholeTextBytesMax });
        async function* pieces(): AsyncGenerator<string> {
          yield* new RecordTextCache().pieces(stateAt(4), 100);
        }
        const saved = await store.save({ ...headerAt(4), outcomes: [["cmd-😀", 4, headerAt(4).lastAppliedHlc, { note: "é" }]] }, pieces());
        assert.equal(saved.stateHash, computeStateHash(stateAt(4)));
        // The size the engine paces its next snapshot by: the whole file, in bytes (rows and state hold non-ASCII text).
        assert.equal(saved.fileBytes, (await stat(join(dir, "snapshots", snapshotFileName(4)))).size);
        assert.deepEqual(await store.list(), [4]);
        assert.deepEqual((await store.load(4)).state, stateAt(4));
        await store.remove(4);
        assert.deepEqual(await store.list(), []);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  });
}
