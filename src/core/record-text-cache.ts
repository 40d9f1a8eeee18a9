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
import { canonicalJSON } from "./json.ts";

/** Pieces handed to a hash or a file are about this long. */
const PIECE_CHARS = 1 << 18;

export class RecordTextCache {
  /** `"id":text` members, keyed by record; reused while the record sits under the same id. */
  private readonly members = new WeakMap<object, { id: string; member: string }>();

  /**
   * `canonicalJSON(state)` as pieces of roughly `pieceChars`; collections (plain
   * objects at the first level) are written key by key with cached record texts.
   */
  *pieces(state: object, pieceChars = PIECE_CHARS): Generator<string> {
    if (Array.isArray(state) || Object.getPrototypeOf(state) !== Object.prototype && Object.getPrototypeOf(state) !== null) {
      yield canonicalJSON(state);
      return;
    }
    const top = state as Record<string, unknown>;
    const keys = Object.keys(top).sort();
    let buffer = "{";
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i] as string;
      buffer += (i > 0 ? "," : "") + canonicalJSON(key) + ":";
      const value = top[key];
      if (!isCollection(value)) {
        buffer += canonicalJSON(value);
        continue;
      }
      const ids = Object.keys(value).sort();
      buffer += "{";
      // Parts are joined once per piece: one flat string instead of a rope per record.
      const parts: string[] = [];
      let partChars = 0;
      let continued = false;
      for (let j = 0; j < ids.length; j++) {
        const id = ids[j] as string;
        const part = this.memberText(id, value[id]);
        parts.push(part);
        partChars += part.length;
        if (partChars >= pieceChars) {
          yield buffer + (continued ? "," : "") + parts.join(",");
          buffer = "";
          continued = true;
          parts.length = 0;
          partChars = 0;
        }
      }
      buffer += (continued && parts.length > 0 ? "," : "") + parts.join(",") + "}";
    }
    yield buffer + "}";
  }

  /** `"id":<record text>`, cached per record object. */
  private memberText(id: string, record: unknown): string {
    if (typeof record !== "object" || record === null) return canonicalJSON(id) + ":" + canonicalJSON(record);
    const cached = this.members.get(record);
    if (cached !== undefined && cached.id === id) return cached.member;
    const member = canonicalJSON(id) + ":" + canonicalJSON(record);
    this.members.set(record, { id, member });
    return member;
  }

  canonicalJSON(state: object): string {
    return [...this.pieces(state)].join("");
  }

  /** `computeStateHash(state)`, reusing record texts. */
  stateHash(state: object): string {
    const hash = createHash("sha256");
    for (const piece of this.pieces(state)) hash.update(piece, "utf8");
    return hash.digest("hex");
  }
}

function isCollection(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}
