/**
 * parseJsonBytes: JSON too large for one string, read in parts. Whatever
 * the split size, it must give exactly what JSON.parse of the whole text gives,
 * and refuse exactly what JSON.parse refuses.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { JsonSplitError, objectMembers, parseJsonBytes } from "../../src/core/json-split.ts";

/** JSON.parse's verdict, or "refused". */
function parsedOrRefused(text: string): unknown {
  try {
    return { value: JSON.parse(text) as unknown };
  } catch {
    return "refused";
  }
}

function splitOrRefused(bytes: Buffer, wholeTextBytesMax: number): unknown {
  try {
    return { value: parseJsonBytes(bytes, wholeTextBytesMax) };
  } catch (error) {
    assert.ok(error instanceof JsonSplitError, `refused with ${String(error)}`);
    return "refused";
  }
}

/** JSON texts with awkward strings and keys (escapes, quotes, backslashes, `__proto__`, astral characters) and spacing. */
/** Long strings, full of quotes and backslashes: their end is searched for natively (past SHORT_STRING_BYTES). */
const longString = fc.array(fc.constantFrom("a", "\\", '"', "\\\\", 'x\\"', "é", "😀", "\n"), { minLength: 20, maxLength: 120 }).map((parts) => parts.join(""));
const awkwardString = fc.oneof(fc.string({ unit: "grapheme" }), longString, fc.constantFrom("__proto__", "constructor", "", '"', "\\", '\\"', "\\\\", "a\\\\\"b", "\u2028", "😀"));
const jsonText = fc
  .tuple(fc.jsonValue({ maxDepth: 5 }), fc.dictionary(awkwardString, fc.oneof(fc.jsonValue({ maxDepth: 2 }), longString), { maxKeys: 5 }), fc.constantFrom(undefined, 1, "\t", " \n "))
  .map(([value, awkward, space]) => JSON.stringify({ value, awkward, list: [awkward, value] }, null, space));

describe("parseJsonBytes", () => {
  it("gives what JSON.parse gives, at every split size, keeping __proto__ an ordinary own key", () => {
    fc.assert(
      fc.property(jsonText, fc.constantFrom(0, 1, 16, 64, 200), (text, wholeTextBytesMax) => {
        const split = parseJsonBytes(Buffer.from(text, "utf8"), wholeTextBytesMax);
        assert.deepEqual(split, JSON.parse(text));
        // Same key order too (deepEqual does not look at it).
        assert.equal(JSON.stringify(split), JSON.stringify(JSON.parse(text)));
      }),
      { numRuns: 1500, seed: 20261130 },
    );
    const parsed = parseJsonBytes(Buffer.from('{"__proto__":{"polluted":1},"a":[{"__proto__":2}]}'), 0) as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(parsed), Object.prototype);
    assert.deepEqual(Object.keys(parsed), ["__proto__", "a"]);
    assert.deepEqual(parsed["__proto__"], { polluted: 1 });
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  it("refuses exactly what JSON.parse refuses, after any damage to a valid text", () => {
    const damage = fc.oneof(
      fc.record({ kind: fc.constant("delete" as const), at: fc.nat(), count: fc.integer({ min: 1, max: 3 }) }),
      fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), text: fc.constantFrom(",", ":", "{", "}", "[", "]", '"', "\\", " ", "x", "0", "-", "01", "\u0001", "null") }),
      fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
    );
    fc.assert(
      fc.property(jsonText, fc.array(damage, { minLength: 1, maxLength: 3 }), fc.constantFrom(0, 1, 16, 64), (text, damages, wholeTextBytesMax) => {
        let damaged = text;
        for (const d of damages) {
          const at = d.at % (damaged.length + 1);
          if (d.kind === "delete") damaged = damaged.slice(0, at) + damaged.slice(at + d.count);
          else if (d.kind === "insert") damaged = damaged.slice(0, at) + d.text + damaged.slice(at);
          else damaged = damaged.slice(0, at);
        }
        // Compared on the same bytes (a damaged surrogate pair encodes as U+FFFD).
        const bytes = Buffer.from(damaged, "utf8");
        assert.deepEqual(splitOrRefused(bytes, wholeTextBytesMax), parsedOrRefused(bytes.toString("utf8")));
      }),
      { numRuns: 3000, seed: 20261130 },
    );
  });

  it("names the byte where a document goes wrong", () => {
    assert.throws(() => parseJsonBytes(Buffer.from('{"a":1 "b":2}'), 0), (error: unknown) => error instanceof JsonSplitError && error.offset === 5);
    assert.throws(() => parseJsonBytes(Buffer.from('{"a":"unterminated}'), 0), /unterminated string at byte 0/);
    assert.throws(() => parseJsonBytes(Buffer.from('[1,2]]'), 0), /unexpected text after the end at byte 5/);
    assert.throws(() => parseJsonBytes(Buffer.from('[1,2,]'), 0), /a value is missing at byte 5/);
    assert.throws(() => parseJsonBytes(Buffer.from('{"a":[1,2]]'), 0), /mismatched bracket at byte 10/);
    assert.throws(() => parseJsonBytes(Buffer.from('{"a":[1,2}'), 0), /unterminated object or array at byte 0/);
  });

  it("lists an object's members with the byte ranges of their values", () => {
    const bytes = Buffer.from(' { "k\\"ey" : [1, {"x": "}"}] , "😀":"v" , "n":-1.5e3 } ');
    const members = objectMembers(bytes, 0, bytes.length);
    assert.deepEqual(
      members.map((m) => [m.key, bytes.toString("utf8", m.start, m.end)]),
      [
        ['k"ey', '[1, {"x": "}"}]'],
        ["😀", '"v"'],
        ["n", "-1.5e3"],
      ],
    );
  });
});
