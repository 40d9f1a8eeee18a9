/**
 * The idempotency table (SPEC G5): for every logged command that carried an
 * `id`, the outcome it got, so a resubmission is answered with it instead of
 * being applied again.
 *
 * It is derived from the log alone, as a replicated state machine's client
 * table is: replay rebuilds it and snapshots carry it, so it survives restarts
 * and WAL truncation. Retention is bounded three ways, all deterministic in the
 * log: at most `countMax` ids (oldest first out), none older than
 * `retentionMs` of HLC time before the newest command that carried an id, and
 * at most `weightMax` in all by the machine's weight of a result (a claim's
 * weighs the characters of the payloads it carries: kept whole, they would
 * otherwise hold every claimed payload for as long as the ids are kept).
 */
import { hlcWallMs } from "../core/hlc.ts";
import type { JsonValue } from "../core/json.ts";
import type { JsonRows } from "../storage/types.ts";

export interface Outcome {
  readonly index: number;
  readonly hlc: string;
  readonly result: JsonValue;
}

/** What the table holds per id: the outcome, its id, its HLC's wall ms (read on every eviction check) and its weight. */
interface Row extends Outcome {
  readonly id: string;
  readonly wallMs: number;
  readonly weight: number;
}

/** The weight of a result kept for duplicates: a function of the result alone (live and restored tables must agree). */
export type OutcomeWeight = (result: JsonValue) => number;

const weightless: OutcomeWeight = () => 0;

export interface OutcomeRetention {
  /** Most ids remembered. */
  readonly countMax: number;
  /** How long (HLC ms) an id is remembered. */
  readonly retentionMs: number;
  /** Most weight of the results remembered, in all (oldest first out); default OUTCOME_WEIGHT_MAX_DEFAULT. */
  readonly weightMax?: number;
}

/**
 * 64 Mi characters of claimed payloads, at most, kept for duplicates: what
 * they add to the heap and to every snapshot stays bounded, and a retry
 * within seconds still finds its claim (at 1.6 MB per claim, the last ~40).
 */
export const OUTCOME_WEIGHT_MAX_DEFAULT = 64 * 1024 * 1024;

export const DEFAULT_OUTCOME_RETENTION: OutcomeRetention = { countMax: 100_000, retentionMs: 24 * 60 * 60 * 1000, weightMax: OUTCOME_WEIGHT_MAX_DEFAULT };

/** Snapshot form: `[id, index, hlc, result]` rows in log order. */
export type OutcomeRows = Array<[string, number, string, JsonValue]>;

export class OutcomeTable {
  private readonly byId = new Map<string, Row>();
  /**
   * Recorded ids in log order, oldest at `head`: eviction looks only at the
   * head (no iteration per command), and snapshots list rows in this order,
   * so a restore from rows reproduces the same eviction order.
   */
  private order: Row[] = [];
  private head = 0;
  /**
   * Slots in [head, order.length) whose id was recorded again later (only a
   * replay under a longer retention than the original run does that): while
   * there are any, `capture` must filter, which takes a full pass.
   */
  private deadSlots = 0;
  /** The weight of the live rows. */
  private weightTotal = 0;
  private readonly weightMax: number;

  constructor(
    readonly retention: OutcomeRetention = DEFAULT_OUTCOME_RETENTION,
    private readonly weigh: OutcomeWeight = weightless,
  ) {
    this.weightMax = retention.weightMax ?? OUTCOME_WEIGHT_MAX_DEFAULT;
  }

  get size(): number {
    return this.byId.size;
  }

  get(id: string): Outcome | undefined {
    return this.byId.get(id);
  }

  /**
   * Remembers the outcome of the command at `index` that carried `id`, and
   * evicts what retention no longer covers. `wallMs` is `hlcWallMs(hlc)`,
   * which the caller has already read.
   */
  record(id: string, index: number, hlc: string, result: JsonValue, wallMs: number): void {
    const row: Row = { id, index, hlc, result, wallMs, weight: this.weigh(result) };
    // One hash lookup, not has-then-set: the table is large and a lookup of a
    // new id misses the cache (this table's lookups took ~10% of an in-process
    // submit). An unchanged size means the id was there already.
    const sizeBefore = this.byId.size;
    this.byId.set(id, row);
    if (this.byId.size === sizeBefore) {
      this.deadSlots += 1;
      // Rare (a replay under a longer retention): the replaced row's weight leaves the total now.
      this.weightTotal -= this.lastSlotOf(id).weight;
    }
    this.weightTotal += row.weight;
    this.order.push(row);
    const horizonMs = row.wallMs - this.retention.retentionMs;
    while (this.head < this.order.length) {
      const oldest = this.order[this.head] as Row;
      // Nothing to evict: rows behind the head are no older (HLC order), and
      // neither the size nor the weight depends on dead rows. Checked first,
      // so that the common case costs no map lookup.
      if (this.byId.size <= this.retention.countMax && oldest.wallMs >= horizonMs && this.weightTotal <= this.weightMax) break;
      // An id evicted and recorded again later has a newer slot; its old one is dead.
      if (this.byId.get(oldest.id) === oldest) {
        this.byId.delete(oldest.id);
        this.weightTotal -= oldest.weight;
      } else {
        this.deadSlots -= 1;
      }
      this.head += 1;
    }
    if (this.head > 1024 && this.head * 2 > this.order.length) {
      this.order = this.order.slice(this.head);
      this.head = 0;
    }
  }

  /** The slot before the newest that holds `id` (it exists: the caller just replaced its row). */
  private lastSlotOf(id: string): Row {
    for (let i = this.order.length - 1; i >= this.head; i--) {
      const row = this.order[i] as Row;
      if (row.id === id && this.byId.get(id) !== row) return row;
    }
    throw new Error(`outcome table: no earlier slot for id ${JSON.stringify(id)}`);
  }

  toRows(): OutcomeRows {
    const rows: OutcomeRows = [];
    for (let i = this.head; i < this.order.length; i++) {
      const row = this.order[i] as Row;
      if (this.byId.get(row.id) === row) rows.push([row.id, row.index, row.hlc, row.result]);
    }
    return rows;
  }

  /**
   * `toRows()` as of now, read later a row at a time (snapshots): O(1) now,
   * since the slots of [head, end) are never changed — new ones are appended
   * and compaction copies into a new array, leaving this one as it was.
   */
  captureRows(): JsonRows {
    if (this.deadSlots > 0) {
      const rows = this.toRows();
      return { length: rows.length, row: (i) => rows[i] as JsonValue };
    }
    const order = this.order;
    const start = this.head;
    return {
      length: order.length - start,
      row: (i) => {
        const row = order[start + i] as Row;
        return [row.id, row.index, row.hlc, row.result];
      },
    };
  }

  static fromRows(rows: unknown, retention: OutcomeRetention, weigh: OutcomeWeight = weightless): OutcomeTable {
    const table = new OutcomeTable(retention, weigh);
    if (!Array.isArray(rows)) throw new Error("outcomes must be an array of rows");
    for (const row of rows as unknown[]) {
      if (!Array.isArray(row) || row.length !== 4 || typeof row[0] !== "string" || typeof row[1] !== "number" || typeof row[2] !== "string") {
        throw new Error("malformed outcome row");
      }
      const restored: Row = { id: row[0], index: row[1], hlc: row[2], result: row[3] as JsonValue, wallMs: hlcWallMs(row[2]), weight: weigh(row[3] as JsonValue) };
      const replaced = table.byId.get(restored.id);
      if (replaced !== undefined) {
        table.deadSlots += 1;
        table.weightTotal -= replaced.weight;
      }
      table.byId.set(restored.id, restored);
      table.weightTotal += restored.weight;
      table.order.push(restored);
    }
    return table;
  }
}
