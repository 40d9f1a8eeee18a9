/**
 * sortedUnique: the ids a snapshot lists come out sorted (UTF-16 code units,
 * as RFC 8785 orders keys) and each once, whatever the chunking.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { sortedUnique } from "../../src/core/sliced-sort.ts";

test("sortedUnique equals a one-go sort without repeats, for any step size", () => {
  fc.assert(
    fc.property(fc.array(fc.string({ unit: "binary", maxLength: 4 }), { maxLength: 300 }), fc.integer({ min: 1, max: 40 }), (ids, step) => {
      const out: string[] = [];
      let steps = 0;
      for (const pause of sortedUnique(ids[Symbol.iterator](), out, step)) {
        assert.equal(pause, "");
        steps += 1;
      }
      assert.deepEqual(out, [...new Set(ids)].sort());
      // Bounded steps: one per chunk read and one per `step` ids merged, plus the last read.
      assert.ok(steps <= Math.ceil(ids.length / step) * 2 + 2, `${steps} steps for ${ids.length} ids at ${step} per step`);
    }),
    { numRuns: 300, seed: 20261129 },
  );
});

test("sortedUnique reads its source a chunk per step (a live source may change between steps)", () => {
  const live = new Map<string, true>([["m", true], ["c", true], ["x", true]]);
  const out: string[] = [];
  const steps = sortedUnique(live.keys(), out, 2);
  steps.next(); // read "m", "c" (+1 lookahead: "x")
  live.set("a", true); // added after the first chunk: a Map iterator still lists it
  for (const _ of steps) void _;
  assert.deepEqual(out, ["a", "c", "m", "x"]);
});
