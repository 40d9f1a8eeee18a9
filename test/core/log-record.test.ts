import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { encodeHlc } from "../../src/core/hlc.ts";
import { canonicalJSON } from "../../src/core/json.ts";
import { chainHash, openRecord, quoteJson, sealBytes, sealEntryText } from "../../src/core/log-record.ts";
import { sha256Hex } from "../../src/core/hash.ts";

/** Well-formed strings, with the characters JSON must escape (quotes, backslashes, controls) and surrogate pairs. */
const text = fc.string({ unit: fc.oneof(fc.constantFrom('"', "\\", "\n", "\u0000", "\u001f", "😀", "é"), fc.string({ minLength: 1, maxLength: 1 })), maxLength: 12 });

describe("log records", () => {
  it("quoteJson is JSON.stringify for well-formed strings", () => {
    fc.assert(
      fc.property(text, (value) => {
        assert.equal(quoteJson(value), JSON.stringify(value));
      }),
      { numRuns: 5000 },
    );
  });

  it("sealEntryText writes exactly canonicalJSON of the entry, and the record opens", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 2 ** 40 }),
        fc.integer({ min: 0, max: 10 ** 12 }),
        text,
        fc.option(text, { nil: undefined }),
        fc.jsonValue({ maxDepth: 3 }),
        (index, wallMs, type, id, payload) => {
          const hlc = encodeHlc({ wallMs, counter: index % 1000, nodeId: "n-1" });
          const prevHash = sha256Hex(String(index));
          const record = sealEntryText(index, hlc, type, canonicalJSON(payload), id, prevHash);
          const entry = id === undefined ? { hlc, index, payload, prevHash, type } : { hlc, id, index, payload, prevHash, type };
          assert.equal(record.body, canonicalJSON(entry));
          assert.equal(record.hash, sha256Hex(prevHash + record.body));
          assert.ok(openRecord(record, index, prevHash).entry);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("sealBytes gives chainHash and the stored bytes hash + body as UTF-8, for any body", () => {
    fc.assert(
      fc.property(fc.string(), fc.string({ unit: "grapheme" }), (seed, body) => {
        const prevHash = sha256Hex(seed);
        const { hash, bytes } = sealBytes(prevHash, body);
        assert.equal(hash, chainHash(prevHash, body));
        assert.deepEqual(bytes, Buffer.from(hash + body, "utf8"));
      }),
      { numRuns: 2000 },
    );
  });
});
