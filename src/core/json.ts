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

/**
 * Deepest nesting `canonicalJSON` takes, counted in brackets from the root.
 * Its walks (and JSON.stringify) recurse once per level: without a bound, a
 * value nested some thousands deep threw a bare RangeError (stack overflow)
 * at a depth that depended on the stack left, so one value could hash on one
 * machine and not on another. Deeper is refused with a `JsonValueError`
 * naming the place. Far above what Swoosh stores (payloads and genesis
 * states are bounded by JSON_DEPTH_MAX), and about a third of the depth that
 * overflowed Node 20's default stack. The walks test their level against a
 * bound anyway, so this costs the common case nothing.
 */
export const CANONICAL_DEPTH_MAX = 1000;

/** True when `text` contains an unpaired UTF-16 surrogate (not representable in UTF-8). */
export function hasLoneSurrogate(text: string): boolean {
  return !text.isWellFormed();
}

function isPlainObject(value: object): boolean {
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** A plain object with no symbol keys (JSON.stringify and for-in would pass over those without a word). */
function isJsonObject(value: object): boolean {
  return isPlainObject(value) && Object.getOwnPropertySymbols(value).length === 0;
}

function pointer(path: string, key: string | number): string {
  return `${path}/${String(key).replace(/~/g, "~0").replace(/\//g, "~1")}`;
}

/**
 * Checks that `value` is a JSON value Swoosh can hash and store; throws
 * `JsonValueError` otherwise. Used at every edge before a value enters a command.
 */
export function assertJsonValue(value: unknown, depthMax = JSON_DEPTH_MAX): asserts value is JsonValue {
  // The common case (valid) walks without building paths; a failure walks again to name the place.
  if (!isJsonValue(value, 0, depthMax)) checkValue(value, "", 0, depthMax);
}

/** `assertJsonValue` without the error: true for a JSON value within `depthMax`. */
function isJsonValue(value: unknown, depth: number, depthMax: number): boolean {
  switch (typeof value) {
    case "string":
      return value.isWellFormed();
    case "number":
      return Number.isFinite(value);
    case "boolean":
      return true;
    case "object": {
      if (value === null) return true;
      if (depth >= depthMax) return false;
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          if (!(i in value) || !isJsonValue(value[i], depth + 1, depthMax)) return false;
        }
        return true;
      }
      if (!isJsonObject(value)) return false;
      // for-in, not Object.keys: no key array per object (own keys only, as in inCanonicalOrder).
      for (const key in value) {
        if (!key.isWellFormed() || !isJsonValue((value as Record<string, unknown>)[key], depth + 1, depthMax)) return false;
      }
      return true;
    }
    default:
      return false;
  }
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
  return canonicalJSONBelow(value, 0);
}

/**
 * `canonicalJSON` of a value found `levelsAbove` brackets down inside a larger
 * value whose text is assembled a member at a time (record-text-cache.ts):
 * CANONICAL_DEPTH_MAX counts from that value's root, so the pieces are
 * refused exactly where `canonicalJSON` of the whole would be.
 */
export function canonicalJSONBelow(value: unknown, levelsAbove: number): string {
  const depthMax = CANONICAL_DEPTH_MAX - levelsAbove;
  try {
    if (typeof value !== "object" || value === null) return serialize(value);
    if (inCanonicalOrder(value, 1, depthMax, false)) return JSON.stringify(value);
    // Out of order somewhere: a sorted copy and one native JSON.stringify beat
    // assembling the text in JS (about twice as fast on a large state).
    return sortedText(sortedCopy(value, 1, depthMax));
  } catch (error) {
    if (error === NOT_JSON || error === TOO_DEEP) {
      // The fast path carries no location; walk again to name it (the walk stops at the same bound).
      if (!isJsonValue(value, levelsAbove, CANONICAL_DEPTH_MAX)) checkValue(value, "", levelsAbove, CANONICAL_DEPTH_MAX);
    }
    throw error;
  }
}

const NOT_JSON = new Error("not a JSON value");
/** Thrown by the walks below past a depth bound; like NOT_JSON, the caller walks again to name the place. */
const TOO_DEEP = new Error("nested too deeply");

/** Key lists up to this long are sorted in place by insertion (Array#sort allocates a work array per call). */
const INSERTION_SORT_MAX = 16;

/** `keys` sorted in place by UTF-16 code units, the order JCS requires (what `<` and the default sort compare). */
function sortKeys(keys: string[]): string[] {
  if (keys.length > INSERTION_SORT_MAX) return keys.sort();
  for (let i = 1; i < keys.length; i++) {
    const key = keys[i] as string;
    let j = i - 1;
    while (j >= 0 && key < (keys[j] as string)) {
      keys[j + 1] = keys[j] as string;
      j--;
    }
    keys[j + 1] = key;
  }
  return keys;
}

/** Objects wider than this are assembled with one join instead of repeated `+=`. */
const WIDE_OBJECT_KEYS = 64;

// JSON.stringify of a string or a finite number is exactly the JCS form (RFC 8785
// §3.2.2.2 and §3.2.2.3 defer to ECMAScript), so only structure is handled here.
// When a subtree's objects already list their keys in sorted order (the domain
// builds its records that way), JSON.stringify of the whole subtree *is* its
// canonical form: `inCanonicalOrder` checks that (and validity) without
// allocating, and native JSON.stringify does the rest in one flat string.
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
      if (inCanonicalOrder(value, 1, Number.MAX_SAFE_INTEGER, false)) return JSON.stringify(value);
      if (Array.isArray(value)) {
        let out = "[";
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out += ",";
          out += serialize(value[i]);
        }
        return out + "]";
      }
      if (!isJsonObject(value)) throw NOT_JSON;
      // Default sort compares UTF-16 code units, which is what JCS requires.
      const keys = sortKeys(Object.keys(value));
      if (keys.length > WIDE_OBJECT_KEYS) {
        const parts = new Array<string>(keys.length);
        for (let i = 0; i < keys.length; i++) {
          const key = keys[i] as string;
          if (!key.isWellFormed()) throw NOT_JSON;
          parts[i] = JSON.stringify(key) + ":" + serialize((value as Record<string, unknown>)[key]);
        }
        return "{" + parts.join(",") + "}";
      }
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
 * True when `value` is a JSON value whose JSON.stringify output is already
 * canonical: every object plain, its keys in strictly increasing UTF-16 order,
 * every string well-formed, every number finite. False at the first object out
 * of order; throws NOT_JSON for what is not JSON at all and TOO_DEEP past
 * `depthMax` levels (`level` is this value's). (JSON.stringify would silently
 * drop undefined, turn NaN into null and call toJSON: all excluded here.)
 * `parseShaped`: also false for a -0, so that true means `value` is member for
 * member what JSON.parse of its canonical text builds.
 */
function inCanonicalOrder(value: object, level: number, depthMax: number, parseShaped: boolean): boolean {
  if (level > depthMax) throw TOO_DEEP;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      if (!memberInOrder(value[i], level, depthMax, parseShaped)) return false;
    }
    return true;
  }
  if (!isJsonObject(value)) throw NOT_JSON;
  let previous: string | null = null;
  for (const key in value) {
    // for-in lists own enumerable string keys first for plain objects; inherited
    // ones would only come from a prototype, and null/Object prototypes have none.
    if (previous !== null && !(previous < key)) return false;
    if (!key.isWellFormed()) throw NOT_JSON;
    previous = key;
    if (!memberInOrder((value as Record<string, unknown>)[key], level, depthMax, parseShaped)) return false;
  }
  return true;
}

function memberInOrder(item: unknown, level: number, depthMax: number, parseShaped: boolean): boolean {
  if (typeof item === "object" && item !== null) return inCanonicalOrder(item, level + 1, depthMax, parseShaped);
  // A hole reads as undefined, which primitiveOk refuses.
  return primitiveOk(item) && !(parseShaped && Object.is(item, -0));
}

/** A valid JSON primitive (null included); throws NOT_JSON for an invalid one; false for objects. */
function primitiveOk(item: unknown): boolean {
  switch (typeof item) {
    case "string":
      if (!item.isWellFormed()) throw NOT_JSON;
      return true;
    case "number":
      if (!Number.isFinite(item)) throw NOT_JSON;
      return true;
    case "boolean":
      return true;
    case "object":
      return item === null;
    default:
      throw NOT_JSON;
  }
}

/** A value's canonical text and a copy of it nothing else holds: see `ownedCanonicalJSON`. */
export interface OwnedJson {
  readonly text: string;
  readonly value: JsonValue;
}

/**
 * `canonicalJSON(value)` plus a value equal to `JSON.parse` of that text (same
 * members, same key order, -0 read back as 0) that no caller holds, in one
 * walk instead of serialize-then-parse. Nesting deeper than `depthMax`
 * brackets (the root's included) is refused like a value that is not JSON:
 * with a `JsonValueError` naming the place.
 *
 * `handedOver`: the caller gives `value` away and nobody else keeps it. It is
 * then returned itself when it already is exactly what the parse would build
 * (every object's keys in canonical order, no -0), so the common case copies
 * nothing; otherwise a copy is built as for any other value.
 */
export function ownedCanonicalJSON(value: unknown, depthMax: number, handedOver: boolean): OwnedJson {
  try {
    if (typeof value !== "object" || value === null) {
      const text = serialize(value);
      return { text, value: value === 0 ? 0 : (value as JsonPrimitive) };
    }
    if (handedOver && inCanonicalOrder(value, 1, depthMax, true)) return { text: JSON.stringify(value), value: value as JsonValue };
    const copy = sortedCopy(value, 1, depthMax);
    return { text: sortedText(copy), value: copy };
  } catch (error) {
    if (error === NOT_JSON || error === TOO_DEEP) assertJsonValue(value, depthMax);
    throw error;
  }
}

/** Set by `sortedCopy` when some key starts with a digit (possibly an array index). */
let digitKeySeen = false;

/** The canonical text of what `sortedCopy` just returned. */
function sortedText(copy: JsonValue): string {
  // An object whose keys look like array indexes lists them first, in numeric
  // order, whatever order they were added in: only serialize sorts those right.
  return digitKeySeen ? serialize(copy) : JSON.stringify(copy);
}

/**
 * A copy of `value` with every object's keys added in canonical order, as
 * JSON.parse of its canonical text would build it. Throws NOT_JSON or TOO_DEEP.
 */
function sortedCopy(value: object, level: number, depthMax: number): JsonValue {
  if (level === 1) digitKeySeen = false;
  if (level > depthMax) throw TOO_DEEP;
  if (Array.isArray(value)) {
    const out = new Array<JsonValue>(value.length);
    for (let i = 0; i < value.length; i++) out[i] = copyMember(value[i], level, depthMax);
    return out;
  }
  if (!isJsonObject(value)) throw NOT_JSON;
  const keys = sortKeys(Object.keys(value));
  const out: JsonObject = {};
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as string;
    if (!key.isWellFormed()) throw NOT_JSON;
    const first = key.charCodeAt(0);
    if (first >= 0x30 && first <= 0x39) digitKeySeen = true;
    const item = copyMember((value as Record<string, unknown>)[key], level, depthMax);
    // Plain assignment of "__proto__" would set the prototype; JSON.parse makes it an own key.
    if (key === "__proto__") Object.defineProperty(out, key, { value: item, enumerable: true, writable: true, configurable: true });
    else out[key] = item;
  }
  return out;
}

function copyMember(item: unknown, level: number, depthMax: number): JsonValue {
  if (typeof item === "object" && item !== null) return sortedCopy(item, level + 1, depthMax);
  primitiveOk(item); // throws NOT_JSON for anything else that is not JSON (a hole reads as undefined)
  // JSON.stringify writes -0 as 0.
  return item === 0 ? 0 : (item as JsonPrimitive);
}

/** Deepest bracket nesting of a JSON text, stopping once past `limit` (brackets inside strings do not count). */
export function nestingDepth(text: string, limit = Number.MAX_SAFE_INTEGER): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > deepest) {
        deepest = depth;
        if (deepest > limit) return deepest;
      }
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return deepest;
}

/** Deep copy of a JSON value through its canonical form (used where a value must not alias state). */
export function cloneJson<T extends JsonValue>(value: T): T {
  return JSON.parse(canonicalJSON(value)) as T;
}

/**
 * Freezes `value` and everything reachable from it (an object already frozen
 * is taken as done, with all it holds), and returns it. What the engine hands
 * out and keeps itself — results, events, the records of a state read — is
 * frozen so that a caller cannot change the engine's state by changing them.
 */
export function deepFreeze<T>(value: T): T {
  if (typeof value !== "object" || value === null || Object.isFrozen(value)) return value;
  const stack: object[] = [value];
  while (stack.length > 0) {
    const object = stack.pop() as object;
    Object.freeze(object);
    for (const child of Object.values(object)) {
      if (typeof child === "object" && child !== null && !Object.isFrozen(child)) stack.push(child as object);
    }
  }
  return value;
}

/** Freezes every value below the top two levels of `view` (state → collection → record): what a two-level copy still shares. */
export function freezeRecords(view: JsonObject): JsonObject {
  for (const member of Object.values(view)) {
    if (typeof member !== "object" || member === null) continue;
    for (const record of Object.values(member)) deepFreeze(record);
  }
  return view;
}
