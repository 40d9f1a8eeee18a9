import assert from "node:assert/strict";
import { describe, it } from "node:test";
import canonicalize from "canonicalize";
import fc from "fast-check";
import { canonicalJSON, assertJsonValue, JsonValueError, ownedCanonicalJSON } from "../../src/core/json.ts";
import { computeStateHash } from "../../src/core/hash.ts";

describe("canonicalJSON (RFC 8785)", () => {
  it("serializes numbers as RFC 8785 Appendix B requires", () => {
    // Pairs of (IEEE-754 bit pattern, expected JCS text) from RFC 8785 Appendix B.
    const vectors: Array<[string, string]> = [
      ["0000000000000000", "0"],
      ["8000000000000000", "0"],
      ["0000000000000001", "5e-324"],
      ["8000000000000001", "-5e-324"],
      ["7fefffffffffffff", "1.7976931348623157e+308"],
      ["ffefffffffffffff", "-1.7976931348623157e+308"],
      ["4340000000000000", "9007199254740992"],
      ["c340000000000000", "-9007199254740992"],
      ["4430000000000000", "295147905179352830000"],
      ["44b52d02c7e14af5", "9.999999999999997e+22"],
      ["44b52d02c7e14af6", "1e+23"],
      ["44b52d02c7e14af7", "1.0000000000000001e+23"],
      ["444b1ae4d6e2ef4e", "999999999999999700000"],
      ["444b1ae4d6e2ef4f", "999999999999999900000"],
      ["444b1ae4d6e2ef50", "1e+21"],
      ["3eb0c6f7a0b5ed8c", "9.999999999999997e-7"],
      ["3eb0c6f7a0b5ed8d", "0.000001"],
      ["41b3de4355555553", "333333333.3333332"],
      ["41b3de4355555554", "333333333.33333325"],
      ["41b3de4355555555", "333333333.3333333"],
      ["41b3de4355555556", "333333333.3333334"],
      ["41b3de4355555557", "333333333.33333343"],
      ["becbf647612f3696", "-0.0000033333333333333333"],
      ["43143ff3c1cb0959", "1424953923781206.2"],
    ];
    for (const [bits, expected] of vectors) {
      const view = new DataView(new ArrayBuffer(8));
      view.setBigUint64(0, BigInt(`0x${bits}`));
      assert.equal(canonicalJSON(view.getFloat64(0)), expected, bits);
    }
  });

  it("sorts keys by UTF-16 code units, not code points (RFC 8785 §3.2.3 example)", () => {
    const input = {
      "\u20ac": "Euro Sign",
      "\r": "Carriage Return",
      "\ufb33": "Hebrew Letter Dalet With Dagesh",
      "1": "One",
      "\ud83d\ude00": "Emoji: Grinning Face",
      "\u0080": "Control",
      "\u00f6": "Latin Small Letter O With Diaeresis",
    };
    // Read the order off the text: Object.keys would list the integer-like "1" first.
    const order = [...canonicalJSON(input).matchAll(/"((?:[^"\\]|\\.)*)":/g)].map((m) => JSON.parse(`"${m[1]}"`) as string);
    assert.deepEqual(order, ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\ud83d\ude00", "\ufb33"]);
  });

  it("matches the RFC's worked example byte for byte", () => {
    const input = JSON.parse(
      '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001], "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/", "literals": [null, true, false]}',
    ) as unknown;
    assert.equal(
      canonicalJSON(input),
      '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
    );
  });

  it("agrees with the reference implementation (canonicalize) on random JSON", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        assert.equal(canonicalJSON(value), canonicalize(value));
      }),
      { numRuns: 2000 },
    );
  });

  it("treats __proto__, constructor and toString as ordinary keys without polluting prototypes", () => {
    const parsed = JSON.parse('{"__proto__": {"polluted": 1}, "constructor": "c", "toString": 2, "": "empty", "😀": []}') as object;
    const text = canonicalJSON(parsed);
    assert.equal(text, '{"":"empty","__proto__":{"polluted":1},"constructor":"c","toString":2,"😀":[]}');
    assert.deepEqual(Object.keys(JSON.parse(text) as object), ["", "__proto__", "constructor", "toString", "😀"]);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    const nullProto = Object.assign(Object.create(null) as object, { b: 1, a: 2 });
    assert.equal(canonicalJSON(nullProto), '{"a":2,"b":1}');
    assert.match(computeStateHash(parsed), /^[0-9a-f]{64}$/);
  });

  it("rejects values that are not JSON, naming where", () => {
    const bad: Array<[unknown, string]> = [
      [Number.NaN, ""],
      [Infinity, ""],
      [{ a: [1, -Infinity] }, "/a/1"],
      [{ a: undefined }, "/a"],
      [[undefined], "/0"],
      [10n, ""],
      [{ s: "x\ud800y" }, "/s"],
      [{ "\udc00": 1 }, "/\udc00"],
      [() => 1, ""],
      [new Date(0), ""],
      [{ m: new Map() }, "/m"],
      // JSON.stringify would drop a symbol-keyed member without a word.
      [{ a: { [Symbol("x")]: 1, b: 1 } }, "/a"],
      [{ [Symbol.for("y")]: 1 }, ""],
    ];
    for (const [value, path] of bad) {
      assert.throws(
        () => canonicalJSON(value),
        (error: unknown) => error instanceof JsonValueError && error.path === path,
        String(path),
      );
      assert.throws(() => assertJsonValue(value), JsonValueError);
      assert.throws(
        () => computeStateHash({ tasks: { "a/b": { v: value } } }),
        (error: unknown) => error instanceof JsonValueError && error.path === `/tasks/a~1b/v${path}`,
        `computeStateHash names ${path} inside the state`,
      );
    }
  });

  it("accepts properly paired surrogates and refuses nesting past the depth bound at the edge", () => {
    assert.equal(canonicalJSON("\ud83d\ude00"), '"😀"');
    let deep: unknown = 1;
    for (let i = 0; i < 100; i++) deep = [deep];
    assert.throws(() => assertJsonValue(deep), /nesting deeper than 64/);
  });

  it("refuses a value nested deeper than 1,000 levels with a JsonValueError naming the place, never a stack-overflow RangeError", () => {
    /** `levels` arrays (or objects: {"k": …}) around `inner`. */
    const nested = (levels: number, inner: unknown, asObjects: boolean): unknown => {
      let value = inner;
      for (let i = 0; i < levels; i++) value = asObjects ? { k: value } : [value];
      return value;
    };
    for (const asObjects of [false, true]) {
      for (const inner of [1, { b: 1, a: 2 }]) {
        // In canonical order (the native fast path) and out of it (the sorted copy) alike.
        const brackets = typeof inner === "object" ? 1 : 0;
        const deepest = nested(1000 - brackets, inner, asObjects);
        assert.equal(canonicalJSON(deepest), JSON.stringify(JSON.parse(canonicalJSON(deepest))), "1,000 levels still serialize");
        assert.match(computeStateHash({ a: nested(999 - brackets, inner, asObjects) }), /^[0-9a-f]{64}$/);
        for (const levels of [1001 - brackets, 20_000]) {
          const tooDeep = nested(levels, inner, asObjects);
          const step = asObjects ? "/k" : "/0";
          const refused = { name: "JsonValueError", path: step.repeat(1000), reason: "nesting deeper than 1000" };
          assert.throws(() => canonicalJSON(tooDeep), refused, `${levels} levels`);
          assert.throws(() => computeStateHash(tooDeep), refused, `${levels} levels`);
          // Counted from the root of the state, as canonicalJSON of the whole counts them.
          assert.throws(() => computeStateHash({ a: nested(levels - 1, inner, asObjects) }), { ...refused, path: "/a" + step.repeat(999) }, `${levels} levels`);
        }
      }
    }
  });
});

/** Keys of every object in `value`, depth first, in their own order: what key order a model shows. */
function keyOrders(value: unknown): string[][] {
  if (typeof value !== "object" || value === null) return [];
  if (Array.isArray(value)) return value.flatMap(keyOrders);
  return [Object.keys(value), ...Object.values(value).flatMap(keyOrders)];
}

describe("ownedCanonicalJSON", () => {
  it("gives canonicalJSON's text and a fresh value built exactly as JSON.parse of it", () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), fc.boolean(), (value, handedOver) => {
        const owned = ownedCanonicalJSON(value, 64, handedOver);
        assert.equal(owned.text, canonicalJSON(value));
        const parsed = JSON.parse(owned.text) as unknown;
        assert.deepEqual(owned.value, parsed);
        assert.deepEqual(keyOrders(owned.value), keyOrders(parsed));
      }),
      { numRuns: 2000 },
    );
  });

  it("keeps a handed-over value only when it already is what the parse builds", () => {
    const ordered = { a: 1, b: [{ c: "x", d: null }], e: { f: true } };
    assert.equal(ownedCanonicalJSON(ordered, 64, true).value, ordered);
    assert.notEqual(ownedCanonicalJSON(ordered, 64, false).value, ordered);
    for (const value of [{ b: 1, a: 2 }, { a: { d: 1, c: 2 } }, { a: [-0] }, { a: -0 }, { "10": 1, "9": 2 }]) {
      const owned = ownedCanonicalJSON(value, 64, true);
      assert.notEqual(owned.value, value);
      assert.deepEqual(owned.value, JSON.parse(owned.text));
    }
    assert.ok(Object.is((ownedCanonicalJSON({ a: -0 }, 64, true).value as { a: number }).a, 0));
    assert.ok(Object.is(ownedCanonicalJSON(-0, 64, true).value, 0));
  });

  it("sorts index-like keys by code units in the text and keeps __proto__ an own key", () => {
    const owned = ownedCanonicalJSON({ z: 0, "10": 1, "9": 2, __proto__x: 3 }, 64, false);
    assert.equal(owned.text, '{"10":1,"9":2,"__proto__x":3,"z":0}');
    const parsed = JSON.parse('{"b": 1, "__proto__": {"polluted": 1}, "a": [2]}') as object;
    const copy = ownedCanonicalJSON(parsed, 64, false);
    assert.equal(copy.text, '{"__proto__":{"polluted":1},"a":[2],"b":1}');
    assert.deepEqual(Object.keys(copy.value as object), ["__proto__", "a", "b"]);
    assert.equal(Object.getPrototypeOf(copy.value), Object.prototype);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  it("refuses what is not JSON and nesting past the bound, naming where", () => {
    for (const handedOver of [false, true]) {
      assert.throws(() => ownedCanonicalJSON({ a: [1, Number.NaN] }, 64, handedOver), (e: unknown) => e instanceof JsonValueError && e.path === "/a/1");
      assert.throws(() => ownedCanonicalJSON({ b: 1, a: { s: "\ud800" } }, 64, handedOver), (e: unknown) => e instanceof JsonValueError && e.path === "/a/s");
      const holey = [1, 2, 2];
      delete holey[1];
      assert.throws(() => ownedCanonicalJSON(holey, 64, handedOver), (e: unknown) => e instanceof JsonValueError && e.path === "/1");
      assert.throws(() => ownedCanonicalJSON({ d: new Date(0) }, 64, handedOver), (e: unknown) => e instanceof JsonValueError && e.path === "/d");
      assert.throws(() => ownedCanonicalJSON({ a: 1, s: { [Symbol("x")]: 1 } }, 64, handedOver), (e: unknown) => e instanceof JsonValueError && e.path === "/s" && /symbol keys/.test(e.reason));
      let deep: unknown = 1;
      for (let i = 0; i < 64; i++) deep = [deep];
      assert.equal(ownedCanonicalJSON(deep, 64, handedOver).text.length, 64 * 2 + 1);
      assert.throws(() => ownedCanonicalJSON([deep], 64, handedOver), /nesting deeper than 64/);
      for (let i = 0; i < 100_000; i++) deep = { k: deep };
      assert.throws(() => ownedCanonicalJSON(deep, 64, handedOver), /nesting deeper than 64/);
    }
  });
});

describe("computeStateHash", () => {
  it("holds fixed vectors any JCS + SHA-256 implementation reproduces", () => {
    // sha256 of the UTF-8 bytes of the canonical text, computed independently (sha256sum).
    assert.equal(computeStateHash({}), "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
    assert.equal(computeStateHash({ b: [1, 2.5, "x"], a: null }), computeStateHash({ a: null, b: [1, 2.5, "x"] }));
    assert.equal(computeStateHash({ b: [1, 2.5, "x"], a: null }), "cacedc786abc936ff5388c20aad7a580a43bd81efb4e8df98d138f3816b04bab");
  });
});
