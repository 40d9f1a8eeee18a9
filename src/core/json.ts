/**
 * JSON values and RFC 8785 (JCS) canonical serialization.
 *
 * Every state, payload and result in Swoosh is a JSON value. `canonicalJSON`
 * gives the one byte sequence JCS defines for a value: object keys sorted by
 * UTF-16 code units, numbers in ECMAScript's shortest round-trip form, strings
 * escaped as ECMAScript's JSON.stringify does. Anything that is not a JSON value
 * (undefined, functions, NaN, Infinity, BigInt, lone surrogates, class
 * instances) is refused with a `JsonValueError` naming the offending path.
 */

export type JsonPrimitive = string | number | boolean | null;
export type JsonValue = JsonPrimitive | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

/** Thrown when a value is not a JSON value; `path` is a JSON-pointer-like location. */
export class JsonValueError extends Error {
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(`${path || "(root)"}: ${reason}`);
    this.name = "JsonValueError";
  }
}

/** Default bound on nesting; deep input is refused before it can exhaust the stack. */
export const JSON_DEPTH_MAX = 64;

/** True when `text` contains an unpaired UTF-16 surrogate (not representable in UTF-8). */
export function hasLoneSurrogate(text: string): boolean {
  return !text.isWellFormed();
}

function isPlainObject(value: object): boolean {
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function pointer(path: string, key: string | number): string {
  return `${path}/${String(key).replace(/~/g, "~0").replace(/\//g, "~1")}`;
}

/**
 * Checks that `value` is a JSON value Swoosh can hash and store; throws
 * `JsonValueError` otherwise. Used at every edge before a value enters a command.
 */
export function assertJsonValue(value: unknown, depthMax = JSON_DEPTH_MAX): asserts value is JsonValue {
  checkValue(value, "", 0, depthMax);
}

function checkValue(value: unknown, path: string, depth: number, depthMax: number): void {
  switch (typeof value) {
    case "string":
      if (hasLoneSurrogate(value)) throw new JsonValueError(path, "string holds a lone surrogate");
      return;
    case "number":
      if (!Number.isFinite(value)) throw new JsonValueError(path, `number ${String(value)} is not finite`);
      return;
    case "boolean":
      return;
    case "object": {
      if (value === null) return;
      if (depth >= depthMax) throw new JsonValueError(path, `nesting deeper than ${depthMax}`);
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          if (!(i in value)) throw new JsonValueError(pointer(path, i), "array has a hole");
          checkValue(value[i], pointer(path, i), depth + 1, depthMax);
        }
        return;
      }
      if (!isPlainObject(value)) throw new JsonValueError(path, "not a plain object");
      for (const key of Object.keys(value)) {
        if (hasLoneSurrogate(key)) throw new JsonValueError(pointer(path, key), "key holds a lone surrogate");
        checkValue((value as Record<string, unknown>)[key], pointer(path, key), depth + 1, depthMax);
      }
      if (Object.getOwnPropertySymbols(value).length > 0) throw new JsonValueError(path, "object has symbol keys");
      return;
    }
    default:
      throw new JsonValueError(path, `${typeof value} is not a JSON value`);
  }
}

/**
 * RFC 8785 canonical JSON of `value`. Throws `JsonValueError` (with the path of
 * the first offending member) for anything that is not a JSON value. Keys such
 * as `__proto__` are ordinary own keys.
 */
export function canonicalJSON(value: unknown): string {
  try {
    return serialize(value);
  } catch (error) {
    if (error === NOT_JSON) {
      // The fast path carries no location; walk again to name it.
      assertJsonValue(value, Number.MAX_SAFE_INTEGER);
    }
    throw error;
  }
}

const NOT_JSON = new Error("not a JSON value");

// JSON.stringify of a string or a finite number is exactly the JCS form (RFC 8785
// §3.2.2.2 and §3.2.2.3 defer to ECMAScript), so only structure is handled here.
// The hot path keeps no location; canonicalJSON recovers it on failure.
function serialize(value: unknown): string {
  switch (typeof value) {
    case "string":
      if (!value.isWellFormed()) throw NOT_JSON;
      return JSON.stringify(value);
    case "number":
      if (!Number.isFinite(value)) throw NOT_JSON;
      return JSON.stringify(value);
    case "boolean":
      return value ? "true" : "false";
    case "object": {
      if (value === null) return "null";
      if (Array.isArray(value)) {
        let out = "[";
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out += ",";
          out += serialize(value[i]);
        }
        return out + "]";
      }
      if (!isPlainObject(value)) throw NOT_JSON;
      // Default sort compares UTF-16 code units, which is what JCS requires.
      const keys = Object.keys(value).sort();
      let out = "{";
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i] as string;
        if (!key.isWellFormed()) throw NOT_JSON;
        if (i > 0) out += ",";
        out += JSON.stringify(key) + ":" + serialize((value as Record<string, unknown>)[key]);
      }
      return out + "}";
    }
    default:
      throw NOT_JSON;
  }
}

/**
 * Canonical JSON of `value` as a sequence of pieces, each at most roughly
 * `pieceChars` long, whose concatenation equals `canonicalJSON(value)`. Lets a
 * caller hash or write a large state a slice at a time, yielding to the event
 * loop between slices.
 */
export function* canonicalJSONPieces(value: unknown, pieceChars = 1 << 20): Generator<string> {
  let buffer = "";
  for (const part of pieces(value, "")) {
    buffer += part;
    if (buffer.length >= pieceChars) {
      yield buffer;
      buffer = "";
    }
  }
  if (buffer.length > 0) yield buffer;
}

// Splits only at the top two levels of objects (state → tasks → each task), which
// is where a large state is wide; deeper values are serialized whole.
function* pieces(value: unknown, path: string, depth = 0): Generator<string> {
  if (depth >= 2 || typeof value !== "object" || value === null || Array.isArray(value)) {
    yield canonicalJSON(value);
    return;
  }
  if (!isPlainObject(value)) throw new JsonValueError(path, "not a plain object");
  const keys = Object.keys(value).sort();
  yield "{";
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as string;
    const item = (value as Record<string, unknown>)[key];
    if (item === undefined) throw new JsonValueError(pointer(path, key), "undefined is not a JSON value");
    if (hasLoneSurrogate(key)) throw new JsonValueError(pointer(path, key), "key holds a lone surrogate");
    yield (i > 0 ? "," : "") + JSON.stringify(key) + ":";
    yield* pieces(item, pointer(path, key), depth + 1);
  }
  yield "}";
}

/** Deep copy of a JSON value through its canonical form (used where a value must not alias state). */
export function cloneJson<T extends JsonValue>(value: T): T {
  return JSON.parse(canonicalJSON(value)) as T;
}
