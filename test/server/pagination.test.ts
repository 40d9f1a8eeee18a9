/**
 * Page selection (pagination.ts) against a plain sort: the smallest `limit`
 * ids after the cursor, ascending, `more` when others matched, and an id
 * offered more than once (as a captured collection may list it) kept once.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { PageCollector, firstIds } from "../../src/server/pagination.ts";

describe("server: pagination", () => {
  it("picks the same page as sorting every matching id, whatever the order and repeats", () => {
    fc.assert(
      fc.property(
        fc.array(fc.string({ maxLength: 4 }), { maxLength: 60 }),
        fc.nat({ max: 60 }),
        fc.integer({ min: 1, max: 12 }),
        fc.option(fc.string({ maxLength: 4 }), { nil: undefined }),
        (ids, repeats, limit, after) => {
          // Some ids offered again, at the end (a capture lists replaced records again from its journal).
          const offered = [...ids, ...ids.slice(0, repeats)];
          const page = new PageCollector(limit, after);
          for (const id of offered) page.offer(id);
          const matching = [...new Set(ids)].filter((id) => after === undefined || id > after).sort();
          const expected = { ids: matching.slice(0, limit), more: matching.length > limit };
          assert.deepEqual(page.result(), expected);
          assert.deepEqual(firstIds(offered, limit, after), expected);
        },
      ),
      { seed: 20261129, numRuns: 2000 },
    );
  });
});
