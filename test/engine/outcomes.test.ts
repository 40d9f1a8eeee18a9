import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { encodeHlc } from "../../src/core/hlc.ts";
import { OutcomeTable } from "../../src/engine/outcomes.ts";

const at = (index: number, wallMs = 1_000_000) => ({ index, hlc: encodeHlc({ wallMs, counter: index, nodeId: "n" }), result: { index } });

describe("OutcomeTable (idempotency retention)", () => {
  it("evicts oldest first by count and by age, also for an id recorded again after eviction, and restores in the same order", () => {
    const table = new OutcomeTable({ countMax: 2, retentionMs: 10_000 });
    table.record("a", at(1));
    table.record("b", at(2));
    table.record("c", at(3));
    assert.equal(table.get("a"), undefined, "a is the oldest and goes first");
    table.record("a", at(4)); // a comes back as a new command
    assert.equal(table.get("b"), undefined);
    assert.deepEqual(
      table.toRows().map((row) => row[0]),
      ["c", "a"],
    );
    const restored = OutcomeTable.fromRows(JSON.parse(JSON.stringify(table.toRows())), table.retention);
    restored.record("d", at(5));
    table.record("d", at(5));
    assert.deepEqual(restored.toRows(), table.toRows(), "a restored table evicts exactly as the live one");
    table.record("e", at(6, 1_000_000 + 10_001));
    assert.deepEqual(
      table.toRows().map((row) => row[0]),
      ["e"],
      "everything older than retentionMs before the newest is gone",
    );
  });

  it("captureRows lists the rows of its moment while later records evict and compact, also with an id recorded twice", () => {
    const read = (rows: { length: number; row(i: number): unknown }) => Array.from({ length: rows.length }, (_, i) => rows.row(i));
    const table = new OutcomeTable({ countMax: 1500, retentionMs: 1_000_000 });
    for (let i = 1; i <= 1500; i++) table.record(`id-${i}`, at(i));
    const expected = table.toRows();
    const captured = table.captureRows();
    // 3,000 more: every captured slot is evicted and the slot array is compacted more than once.
    for (let i = 1501; i <= 4500; i++) table.record(`id-${i}`, at(i));
    assert.deepEqual(read(captured), expected);

    // An id recorded again while still held (a replay under a longer retention than the original run): only its newer row counts.
    const replayed = new OutcomeTable({ countMax: 10, retentionMs: 1_000_000 });
    replayed.record("x", at(1));
    replayed.record("y", at(2));
    replayed.record("x", at(3));
    const rows = replayed.captureRows();
    replayed.record("z", at(4));
    assert.deepEqual(read(rows), [["y", 2, at(2).hlc, { index: 2 }], ["x", 3, at(3).hlc, { index: 3 }]]);
    assert.deepEqual(read(rows), replayed.toRows().slice(0, 2));
  });
});
