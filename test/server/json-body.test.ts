/**
 * The request body parser (src/server/json-body.ts): whether a body is short
 * (parsed first) or long (measured first), every refusal is the same one, and
 * a body nested too deeply is refused as such before any other complaint.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SwooshError } from "../../src/core/errors.ts";
import { BODY_DEPTH_MAX, parseJsonBody } from "../../src/server/json-body.ts";

function refusal(text: string): { message: string; field: unknown } {
  try {
    parseJsonBody(text);
  } catch (error) {
    assert.ok(error instanceof SwooshError, String(error));
    assert.equal(error.code, "bad_request");
    return { message: error.message, field: (error.details as { field?: unknown } | undefined)?.field };
  }
  assert.fail(`accepted ${text.slice(0, 80)}`);
}

/** `{"pad": "…", "v": inner}` padded so the text is `short` (≤ 4096) or long. */
function sized(inner: string, long: boolean): string {
  const text = `{"v":${inner},"pad":"${"x".repeat(long ? 5000 : 10)}"}`;
  assert.equal(text.length > 4096, long);
  return text;
}

const deeper = `${"[".repeat(BODY_DEPTH_MAX + 5)}${"]".repeat(BODY_DEPTH_MAX + 5)}`;
const nestedMessage = `the request body is nested deeper than ${BODY_DEPTH_MAX} levels`;

describe("server: JSON body parser", () => {
  for (const long of [false, true]) {
    it(`answers the same for a ${long ? "long" : "short"} body`, () => {
      assert.deepEqual(parseJsonBody(sized('{"__proto__":{"a":[1,2]}}', long)), JSON.parse(sized('{"__proto__":{"a":[1,2]}}', long)));
      // Nesting: the bound itself is fine, one more level is not, valid JSON or not, whatever else is wrong.
      const atBound = `${"[".repeat(BODY_DEPTH_MAX - 1)}${"]".repeat(BODY_DEPTH_MAX - 1)}`;
      assert.ok(parseJsonBody(sized(atBound, long)));
      assert.equal(refusal(sized(`[${atBound}]`, long)).message, nestedMessage);
      assert.equal(refusal(sized(deeper, long)).message, nestedMessage);
      assert.equal(refusal(sized(deeper, long).slice(0, -3)).message, nestedMessage, "not JSON and too deep: too deep");
      assert.equal(refusal(sized(`["\\ud800",${deeper}]`, long)).message, nestedMessage, "a lone surrogate and too deep: too deep");
      // Other refusals name the place.
      assert.deepEqual(refusal(sized('{"k":"\\ud800"}', long)), { message: "request body /v/k: string holds a lone surrogate", field: "/v/k" });
      assert.deepEqual(refusal(sized('{"\\udfff":1}', long)), { message: "request body /v/\udfff: key holds a lone surrogate", field: "/v/\udfff" });
      assert.deepEqual(refusal(sized("1e999", long)), { message: "request body /v: number Infinity is not finite", field: "/v" });
      assert.match(refusal(sized("[1,", long)).message, /^the request body is not valid JSON: /);
    });
  }

  it("refuses empty bodies and measures a megabyte of brackets without parsing it", () => {
    assert.match(refusal("  \n").message, /empty/);
    const started = performance.now();
    assert.equal(refusal(`${"[".repeat(500_000)}${"]".repeat(500_000)}`).message, nestedMessage);
    assert.ok(performance.now() - started < 100, "one linear scan");
  });
});
