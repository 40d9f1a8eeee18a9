/**
 * A state whose canonical JSON is longer than V8's longest string (2^29 - 24
 * characters, ~512 MiB) is snapshotted, and recovery starts from that
 * snapshot. Read as one string, the file cannot load at all: recovery then
 * passes over it, and once retention has truncated the WAL below the oldest
 * such snapshot, the data dir no longer opens. `swoosh hash` reads such a
 * file too.
 */
import assert from "node:assert/strict";
import { stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { RecordTextCache } from "../../src/core/record-text-cache.ts";
import { openSwoosh } from "../../src/index.ts";
import type { RecoveryProblem } from "../../src/engine/errors.ts";
import { NodeFileSystem } from "../../src/storage/node-fs.ts";
import { FileSnapshotStore, snapshotFileName } from "../../src/storage/snapshot-store.ts";
import { runCli } from "../e2e/processes.ts";
import { tempDir } from "../support/engine-fixtures.ts";

/** V8's String::kMaxLength on 64-bit: `Buffer.toString` of more bytes of ASCII throws. */
const V8_STRING_CHARS_MAX = 0x1fffffe8;
const TASKS = 620;
const BLOB_CHARS = 900_000;

describe("a snapshot larger than the longest string V8 can hold", () => {
  it("is written, loads in parts, and recovery starts from it", async () => {
    const { dir: dataDir, cleanup } = await tempDir("swoosh-large-snapshot-");
    try {
      const engine = await openSwoosh({ dataDir, snapshotEvery: 0 });
      const blob = "x".repeat(BLOB_CHARS);
      for (let first = 0; first < TASKS; first += 10) {
        const submits = [];
        for (let n = first; n < first + 10; n++) submits.push(engine.submit({ type: "task.submit", payload: { taskId: `t${n}`, kind: "big", payload: { blob, n } } }));
        await Promise.all(submits);
      }
      const hashBefore = await engine.stateHash();
      await engine.close({ snapshot: true });

      const snapshotDir = join(dataDir, "snapshots");
      const { size } = await stat(join(snapshotDir, snapshotFileName(TASKS)));
      assert.ok(size > V8_STRING_CHARS_MAX, `the snapshot is ${size} bytes, not past V8's string limit`);
      // Read as one string, as the store used to: refused, whatever the file holds.
      const asOneString = new FileSnapshotStore(new NodeFileSystem(), snapshotDir, { wholeTextBytesMax: Number.POSITIVE_INFINITY });
      await assert.rejects(asOneString.load(TASKS), /Cannot create a string longer than/);
      // `swoosh hash` reads a state that large too: its canonical text, written out a record at a time, hashes to the snapshot's stateHash.
      const doc = await new FileSnapshotStore(new NodeFileSystem(), snapshotDir).load(TASKS);
      const statePath = join(dataDir, "state.json");
      await writeFile(statePath, new RecordTextCache({ remember: false }).pieces(doc.state));
      const hashed = await runCli(["hash", statePath]);
      assert.equal(hashed.status, 0, hashed.stderr);
      assert.equal(hashed.stdout, `${doc.stateHash}\n`);

      const skipped: RecoveryProblem[] = [];
      const reopened = await openSwoosh({ dataDir, snapshotEvery: 0, onSkippedSnapshot: (problem) => skipped.push(problem) });
      try {
        assert.deepEqual(skipped, []);
        assert.equal(reopened.stats().lastSnapshotIndex, TASKS, "recovery did not start from the snapshot");
        assert.equal(await reopened.stateHash(), hashBefore);
        const outcome = await reopened.submit({ type: "task.submit", payload: { taskId: "after", kind: "small" } });
        assert.equal(outcome.index, TASKS + 1);
      } finally {
        await reopened.close();
      }
    } finally {
      await cleanup();
    }
  });
});
