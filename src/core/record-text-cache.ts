/**
 * Canonical JSON of a large state, reusing the text of records that did not
 * change.
 *
 * The reducer contract (state-machine.ts, rule 2) says values below the second
 * level of the state (state → collection → record) are replaced, never
 * mutated. A record object therefore always has the same canonical text, and
 * a WeakMap from record to its `"id":text` member lets the engine
 * re-serialize (for the state hash and snapshots) only what changed since the
 * last time. The
 * output is byte-for-byte `canonicalJSON(state)`; a test holds it so.
 *
 * Only for states that follow rule 2: a record mutated in place would keep
 * its stale text. `computeStateHash` on arbitrary values never uses this.
 */
import { createHash } from "node:crypto";
import { JsonValueError, canonicalJSON } from "./json.ts";
import { DictionaryCapture } from "./state-capture.ts";
import type { StateCapture } from "./state-capture.ts";
import { IDS_PER_STEP, sortedUnique } from "./sliced-sort.ts";

/** Pieces handed to a hash or a file are about this long. */
const PIECE_CHARS = 1 << 18;

export class RecordTextCache {
  /** `"id":text` members, keyed by record; reused while the record sits under the same id. */
  private readonly members: WeakMap<object, { id: string; member: string }> | null;

  /** `remember: false` streams without caching: safe for any value, mutated or not. */
  constructor(options: { remember?: boolean } = {}) {
    this.members = options.remember === false ? null : new WeakMap();
  }

  /**
   * `canonicalJSON(state)` as a sequence of fragments (punctuation, keys,
   * cached `"id":record` members) whose concatenation is the canonical text.
   * Collections (plain objects at the first level) are written member by
   * member in sorted key order.
   */
  private *fragments(state: object): Generator<string> {
    if (!isCollection(state)) {
      yield canonicalJSON(state);
      return;
    }
    const keys = Object.keys(state).sort();
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i] as string;
      yield (i > 0 ? "," : "{") + canonicalJSON(key) + ":";
      const value = state[key];
      if (!isCollection(value)) {
        yield canonicalAt(value, [key]);
        continue;
      }
      const ids = Object.keys(value).sort();
      if (ids.length === 0) yield "{";
      for (let j = 0; j < ids.length; j++) {
        const id = ids[j] as string;
        yield j > 0 ? "," : "{";
        yield this.memberText(key, id, value[id]);
      }
      yield "}";
    }
    yield keys.length === 0 ? "{}" : "}";
  }

  /** `canonicalJSON(state)` as pieces of roughly `pieceChars` (for writing a snapshot a slice at a time). */
  *pieces(state: object, pieceChars = PIECE_CHARS): Generator<string> {
    const parts: string[] = [];
    let partChars = 0;
    for (const fragment of this.fragments(state)) {
      parts.push(fragment);
      partChars += fragment.length;
      if (partChars >= pieceChars) {
        yield parts.join("");
        parts.length = 0;
        partChars = 0;
      }
    }
    if (parts.length > 0) yield parts.join("");
  }

  /**
   * `canonicalJSON` of a captured state (state-capture.ts) as pieces of about
   * `pieceChars`, for writing a snapshot while commands go on. Every bounded
   * step of work ends in a piece, possibly empty: the caller may let the event
   * loop run after each one (the capture stays exact meanwhile), so no single
   * step — listing ids, sorting them, serializing records — takes long.
   */
  *capturedPieces(capture: StateCapture, pieceChars = PIECE_CHARS, idsPerStep = IDS_PER_STEP): Generator<string> {
    let part = "";
    const keys = Object.keys(capture.top).sort();
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i] as string;
      part += (i > 0 ? "," : "{") + canonicalJSON(key) + ":";
      const value = capture.top[key];
      if (!(value instanceof DictionaryCapture)) {
        part += canonicalAt(value, [key]);
        continue;
      }
      yield part;
      const ids: string[] = [];
      for (const step of sortedUnique(value.ids(), ids, idsPerStep)) yield step;
      part = "{";
      for (let j = 0; j < ids.length; j++) {
        const id = ids[j] as string;
        if (j > 0) part += ",";
        part += this.memberText(key, id, value.get(id), false);
        if (part.length >= pieceChars) {
          yield part;
          part = "";
        }
      }
      part += "}";
    }
    yield part + (keys.length === 0 ? "{}" : "}");
  }

  canonicalJSON(state: object): string {
    return [...this.pieces(state)].join("");
  }

  /** `computeStateHash(state)`, reusing record texts; fragments go to the hash as they are (no join). */
  stateHash(state: object): string {
    const hash = createHash("sha256");
    for (const fragment of this.fragments(state)) hash.update(fragment, "utf8");
    return hash.digest("hex");
  }

  /** `"id":<record text>`, cached per record object. */
  private memberText(collectionKey: string, id: string, record: unknown, remember = true): string {
    if (this.members === null || typeof record !== "object" || record === null) return canonicalJSON(id) + ":" + canonicalAt(record, [collectionKey, id]);
    const cached = this.members.get(record);
    if (cached !== undefined && cached.id === id) return cached.member;
    const member = canonicalJSON(id) + ":" + canonicalAt(record, [collectionKey, id]);
    if (remember) this.members.set(record, { id, member });
    return member;
  }
}

/** canonicalJSON of a value found at `path` in the state; errors name the full path. */
function canonicalAt(value: unknown, path: readonly string[]): string {
  try {
    return canonicalJSON(value);
  } catch (error) {
    if (!(error instanceof JsonValueError)) throw error;
    const prefix = path.map((part) => `/${part.replace(/~/g, "~0").replace(/\//g, "~1")}`).join("");
    throw new JsonValueError(prefix + error.path, error.reason);
  }
}

function isCollection(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}
