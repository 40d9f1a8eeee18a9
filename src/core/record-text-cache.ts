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
import { JsonValueError, canonicalJSON, canonicalJSONBelow } from "./json.ts";
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
   * `canonicalJSON` of a state's top level as a sequence of fragments
   * (punctuation, keys, `"id":record` members) whose concatenation is the
   * canonical text. A value `readerOf` gives a reader for is a collection,
   * written member by member in sorted id order; any other is written whole.
   * An empty fragment is only a pause point (a reader listing ids a step at a
   * time); `remember` says whether new member texts join the cache.
   */
  private *fragments(top: { readonly [key: string]: unknown }, readerOf: (value: unknown) => CollectionReader | null, remember: boolean): Generator<string> {
    const keys = Object.keys(top).sort();
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i] as string;
      yield (i > 0 ? "," : "{") + canonicalJSON(key) + ":";
      const value = top[key];
      const reader = readerOf(value);
      if (reader === null) {
        yield canonicalAt(value, [key]);
        continue;
      }
      const ids = yield* reader.sortedIds();
      yield "{";
      for (let j = 0; j < ids.length; j++) {
        const id = ids[j] as string;
        if (j > 0) yield ",";
        yield this.memberText(key, id, reader.get(id), remember);
      }
      yield "}";
    }
    yield keys.length === 0 ? "{}" : "}";
  }

  /** The fragments of a live (plain) state: collections are the plain objects at its first level. */
  private *plainFragments(state: object): Generator<string> {
    if (isCollection(state)) yield* this.fragments(state, plainReader, true);
    else yield canonicalJSON(state);
  }

  /** `canonicalJSON(state)` as pieces of roughly `pieceChars` (for writing a snapshot a slice at a time). */
  pieces(state: object, pieceChars = PIECE_CHARS): Generator<string> {
    return joinFragments(this.plainFragments(state), pieceChars);
  }

  /**
   * `canonicalJSON` of a captured state (state-capture.ts) as pieces of about
   * `pieceChars`, for writing a snapshot while commands go on. Every bounded
   * step of work ends in a piece, possibly empty: the caller may let the event
   * loop run after each one (the capture stays exact meanwhile), so no single
   * step — listing ids, sorting them, serializing records — takes long.
   * Member texts are read from the cache; `remember` adds new ones to it, as
   * reading the live state does (off for snapshots: a snapshot of new records
   * would keep them all alive through young-generation GCs, for one use).
   * Remembering is sound for a capture too: the cache is keyed by record
   * object, and a captured record that was replaced since is an object no
   * live state holds any more.
   */
  capturedPieces(capture: StateCapture, pieceChars = PIECE_CHARS, idsPerStep = IDS_PER_STEP, remember = false): Generator<string> {
    return joinFragments(this.fragments(capture.top, (value) => capturedReader(value, idsPerStep), remember), pieceChars);
  }

  canonicalJSON(state: object): string {
    return [...this.pieces(state)].join("");
  }

  /** `computeStateHash(state)`, reusing record texts; fragments go to the hash as they are (no join). */
  stateHash(state: object): string {
    const hash = createHash("sha256");
    for (const fragment of this.plainFragments(state)) hash.update(fragment, "utf8");
    return hash.digest("hex");
  }

  /** `"id":<record text>`, cached per record object. */
  private memberText(collectionKey: string, id: string, record: unknown, remember: boolean): string {
    if (this.members === null || typeof record !== "object" || record === null) return canonicalJSON(id) + ":" + canonicalAt(record, [collectionKey, id]);
    const cached = this.members.get(record);
    if (cached !== undefined && cached.id === id) return cached.member;
    const member = canonicalJSON(id) + ":" + canonicalAt(record, [collectionKey, id]);
    if (remember) this.members.set(record, { id, member });
    return member;
  }
}

/** How `fragments` reads one collection: its ids in sorted order (yielding "" between steps), and the record under each. */
interface CollectionReader {
  sortedIds(): Generator<string, string[]>;
  get(id: string): unknown;
}

/** A plain collection, read and sorted in one go. */
function plainReader(value: unknown): CollectionReader | null {
  if (!isCollection(value)) return null;
  return {
    // eslint-disable-next-line require-yield -- one step: nothing to pause between
    *sortedIds() {
      return Object.keys(value).sort();
    },
    get: (id) => value[id],
  };
}

/** A captured collection, its ids listed and sorted `idsPerStep` at a time. */
function capturedReader(value: unknown, idsPerStep: number): CollectionReader | null {
  if (!(value instanceof DictionaryCapture)) return null;
  return {
    *sortedIds() {
      const ids: string[] = [];
      yield* sortedUnique(value.ids(), ids, idsPerStep);
      return ids;
    },
    get: (id) => value.get(id),
  };
}

/** Fragments gathered into pieces of about `pieceChars`; an empty fragment (a pause point) hands over what is gathered, possibly nothing. */
function* joinFragments(fragments: Iterable<string>, pieceChars: number): Generator<string> {
  let part = "";
  for (const fragment of fragments) {
    if (fragment.length === 0) {
      yield part;
      part = "";
      continue;
    }
    part += fragment;
    if (part.length >= pieceChars) {
      yield part;
      part = "";
    }
  }
  if (part.length > 0) yield part;
}

/** canonicalJSON of a value found at `path` in the state (its nesting counted from the state's root); errors name the full path. */
function canonicalAt(value: unknown, path: readonly string[]): string {
  try {
    return canonicalJSONBelow(value, path.length);
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
