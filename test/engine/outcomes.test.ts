import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { encodeHlc } from "../../src/core/hlc.ts";
import { OutcomeTable } from "../../src/engine/outcomes.ts";

const at = (index: number, wallMs = 1_000_000) => [index, encodeHlc({ wallMs, counter: index, nodeId: "n" }), { index }] as const;

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
});
