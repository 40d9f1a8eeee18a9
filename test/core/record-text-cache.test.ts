import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import fc from "fast-check";
import { computeStateHash } from "../../src/core/hash.ts";
import { canonicalJSON } from "../../src/core/json.ts";
import { RecordTextCache } from "../../src/core/record-text-cache.ts";

const record = fc.dictionary(fc.string(), fc.jsonValue(), { maxKeys: 6 });
const state = fc.dictionary(fc.string(), fc.oneof(fc.jsonValue(), fc.dictionary(fc.string(), record, { maxKeys: 20 })), { maxKeys: 6 });

describe("RecordTextCache", () => {
  it("produces exactly canonicalJSON(state) and computeStateHash(state), in pieces of any size", () => {
    fc.assert(
      fc.property(state, fc.integer({ min: 1, max: 200 }), (value, pieceChars) => {
        const cache = new RecordTextCache();
        const expected = canonicalJSON(value);
        assert.equal([...cache.pieces(value, pieceChars)].join(""), expected);
        assert.equal(cache.canonicalJSON(value), expected, "again, from cached record texts");
        const independent = createHash("sha256").update(expected, "utf8").digest("hex");
        assert.equal(cache.stateHash(value), independent);
        assert.equal(computeStateHash(value), independent);
      }),
      { numRuns: 500 },
    );
  });

  it("follows records that were replaced (rule 2), keyed by object identity", () => {
    const cache = new RecordTextCache();
    const tasks: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
    tasks["__proto__"] = { status: "queued", id: "__proto__" };
    tasks["b"] = { status: "queued", id: "b" };
    const s = { tasks, phase: "active" };
    const before = cache.canonicalJSON(s);
    tasks["b"] = { ...(tasks["b"] as object), status: "leased" };
    const after = cache.canonicalJSON(s);
    assert.notEqual(after, before);
    assert.equal(after, canonicalJSON(s));
    assert.match(after, /"__proto__":\{"id":"__proto__","status":"queued"\}/);
  });
});
