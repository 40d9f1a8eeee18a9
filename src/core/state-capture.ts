/**
 * A picture of a state machine's state taken at one moment in O(1) and read
 * later, a slice at a time, while commands keep changing the live state
 * (`StateMachine.capture`). Snapshots use it so that a state of 100,000
 * records never stalls the event loop for the tens of milliseconds that
 * copying or sorting it in one go would take.
 *
 * How: the live collections keep changing; while a capture is open, the model
 * reports every write to a collection *before* making it
 * (`DictionaryCapture.beforeWrite`), and the capture keeps the first old value
 * of each id it hears about. A record is therefore read from that journal when
 * it was written since the capture, and from the live collection otherwise —
 * which reducer rule 2 makes safe: records are replaced, never mutated.
 */
import type { JsonValue } from "./json.ts";

/** The state's top level as of a capture; large collections appear as `DictionaryCapture`s. */
export interface StateCapture {
  readonly top: { readonly [key: string]: JsonValue | DictionaryCapture };
  /** Ends the capture; the model stops reporting writes to it. */
  release(): void;
}

/** Marks an id that had no record at the capture (it was created since). */
const ABSENT: unique symbol = Symbol("absent");

/**
 * One id → record collection (a null-prototype dictionary) as of a capture.
 * `liveIds` lists the live ids lazily and tolerates writes while it is read
 * (a Map's key iterator does: ids added later are listed too, ids deleted
 * before being reached are not).
 */
export class DictionaryCapture {
  /** The record each id had at the capture, for every id written since. */
  private readonly before = new Map<string, JsonValue | typeof ABSENT>();

  constructor(
    private readonly live: { readonly [id: string]: JsonValue | undefined },
    private readonly liveIds: () => Iterator<string>,
  ) {}

  /** Called by the model before it sets or deletes `id` in the live collection. */
  beforeWrite(id: string): void {
    if (this.before.has(id)) return;
    const value = this.live[id];
    this.before.set(id, value === undefined ? ABSENT : value);
  }

  /**
   * The ids present at the capture, in no particular order; an id may be
   * listed twice (once live, once from the journal) — callers sort and drop
   * repeats. Safe to read a few at a time between writes.
   */
  *ids(): Generator<string> {
    const live = this.liveIds();
    for (let next = live.next(); next.done !== true; next = live.next()) {
      // Created since the capture: its first write marked it absent before the id became visible.
      if (this.before.get(next.value) !== ABSENT) yield next.value;
    }
    // Deleted (or replaced) since the capture: the journal holds what was there.
    for (const [id, value] of this.before) if (value !== ABSENT) yield id;
  }

  /** The record under `id` at the capture (`id` one that `ids` listed). */
  get(id: string): JsonValue {
    const old = this.before.get(id);
    if (old === ABSENT) throw new Error(`capture: ${JSON.stringify(id)} did not exist at the capture`);
    if (old !== undefined) return old;
    const value = this.live[id];
    if (value === undefined) throw new Error(`capture: ${JSON.stringify(id)} vanished without being reported`);
    return value;
  }
}
