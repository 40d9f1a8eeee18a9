import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { encodeHlc } from "../../src/core/hlc.ts";
import { OutcomeTable } from "../../src/engine/outcomes.ts";

const at = (index: number, wallMs = 1_000_000) => [index, encodeHlc({ wallMs, counter: index, nodeId: "n" }), { index }, wallMs] as const;

describe("OutcomeTable (idempotency retention)", () => {
  it("evicts oldest first by count and by age, also for an id recorded again after eviction, and restores in the same order", () => {
    const table = new OutcomeTable({ countMax: 2, retentionMs: 10_000 });
    table.record("a", ...at(1));
    table.record("b", ...at(2));
    table.record("c", ...at(3));
    assert.equal(table.get("a"), undefined, "a is the oldest and goes first");
    table.record("a", ...at(4)); // a comes back as a new command
    assert.equal(table.get("b"), undefined);
    assert.deepEqual(
      table.toRows().map((row) => row[0]),
      ["c", "a"],
    );
    const restored = OutcomeTable.fromRows(JSON.parse(JSON.stringify(table.toRows())), table.retention);
    restored.record("d", ...at(5));
    table.record("d", ...at(5));
    assert.deepEqual(restored.toRows(), table.toRows(), "a restored table evicts exactly as the live one");
    table.record("e", ...at(6, 1_000_000 + 10_001));
    assert.deepEqual(
      table.toRows().map((row) => row[0]),
      ["e"],
      "everything older than retentionMs before the newest is gone",
    );
  });

  it("keeps exactly what a naive reference keeps, for any sequence of ids and times", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 4 }),
        fc.integer({ min: 0, max: 30 }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 6 }), fc.integer({ min: 0, max: 10 })), { maxLength: 60 }),
        (countMax, retentionMs, steps) => {
          const table = new OutcomeTable({ countMax, retentionMs });
          // Reference: rows in log order; an id recorded again replaces its row; evict oldest first.
          let reference: Array<{ id: string; index: number; wallMs: number }> = [];
          let wallMs = 1_000_000;
          steps.forEach(([idNumber, advance], i) => {
            wallMs += advance;
            const id = `id-${idNumber}`;
            table.record(id, ...at(i + 1, wallMs));
            reference = reference.filter((row) => row.id !== id);
            reference.push({ id, index: i + 1, wallMs });
            while (reference.length > 0 && (reference.length > countMax || (reference[0] as { wallMs: number }).wallMs < wallMs - retentionMs)) reference.shift();
            assert.deepEqual(
              table.toRows().map((row) => [row[0], row[1]]),
              reference.map((row) => [row.id, row.index]),
            );
            assert.equal(table.size, reference.length);
            // What a snapshot captures now is what toRows lists now (dead slots accounted for).
            const captured = table.captureRows();
            assert.deepEqual(Array.from({ length: captured.length }, (_, k) => captured.row(k)), table.toRows());
          });
        },
      ),
      { numRuns: 1000 },
    );
  });

  it("also keeps the results' weight under weightMax, oldest first, exactly as a naive reference, and a restored table weighs alike", () => {
    const weigh = (result: unknown): number => (result as { w: number }).w;
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 5 }),
        fc.integer({ min: 0, max: 24 }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 6 }), fc.integer({ min: 0, max: 8 })), { maxLength: 60 }),
        fc.nat(60),
        (countMax, weightMax, steps, restoreAt) => {
          const retention = { countMax, retentionMs: 1_000_000, weightMax };
          let table = new OutcomeTable(retention, weigh);
          let reference: Array<{ id: string; index: number; w: number }> = [];
          steps.forEach(([idNumber, w], i) => {
            // Restored from its rows once, as recovery would: from then on it must evict exactly as before.
            if (i === restoreAt) table = OutcomeTable.fromRows(JSON.parse(JSON.stringify(table.toRows())), retention, weigh);
            const id = `id-${idNumber}`;
            table.record(id, i + 1, encodeHlc({ wallMs: 1_000_000, counter: i + 1, nodeId: "n" }), { w }, 1_000_000);
            reference = reference.filter((row) => row.id !== id);
            reference.push({ id, index: i + 1, w });
            const total = () => reference.reduce((sum, row) => sum + row.w, 0);
            while (reference.length > 0 && (reference.length > countMax || total() > weightMax)) reference.shift();
            assert.deepEqual(
              table.toRows().map((row) => [row[0], row[1]]),
              reference.map((row) => [row.id, row.index]),
            );
          });
        },
      ),
      { numRuns: 1000 },
    );
  });

  it("captureRows lists the rows of its moment while later records evict and compact, also with an id recorded twice", () => {
    const read = (rows: { length: number; row(i: number): unknown }) => Array.from({ length: rows.length }, (_, i) => rows.row(i));
    const table = new OutcomeTable({ countMax: 1500, retentionMs: 1_000_000 });
    for (let i = 1; i <= 1500; i++) table.record(`id-${i}`, ...at(i));
    const expected = table.toRows();
    const captured = table.captureRows();
    // 3,000 more: every captured slot is evicted and the slot array is compacted more than once.
    for (let i = 1501; i <= 4500; i++) table.record(`id-${i}`, ...at(i));
    assert.deepEqual(read(captured), expected);

    // An id recorded again while still held (a replay under a longer retention than the original run): only its newer row counts.
    const replayed = new OutcomeTable({ countMax: 10, retentionMs: 1_000_000 });
    replayed.record("x", ...at(1));
    replayed.record("y", ...at(2));
    replayed.record("x", ...at(3));
    const rows = replayed.captureRows();
    replayed.record("z", ...at(4));
    assert.deepEqual(read(rows), [["y", ...at(2).slice(0, 3)], ["x", ...at(3).slice(0, 3)]]);
    assert.deepEqual(read(rows), replayed.toRows().slice(0, 2));
  });
});
