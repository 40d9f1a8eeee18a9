/**
 * The idempotency table (SPEC G5): for every logged command that carried an
 * `id`, the outcome it got, so a resubmission is answered with it instead of
 * being applied again.
 *
 * It is derived from the log alone, as a replicated state machine's client
 * table is: replay rebuilds it and snapshots carry it, so it survives restarts
 * and WAL truncation. Retention is bounded two ways, both deterministic in the
 * log: at most `countMax` ids (oldest first out) and none older than
 * `retentionMs` of HLC time before the newest command that carried an id.
 */
import { hlcWallMs } from "../core/hlc.ts";
import type { JsonValue } from "../core/json.ts";
import type { JsonRows } from "../storage/types.ts";

export interface Outcome {
  readonly index: number;
  readonly hlc: string;
  readonly result: JsonValue;
}

export interface OutcomeRetention {
  /** Most ids remembered. */
  readonly countMax: number;
  /** How long (HLC ms) an id is remembered. */
  readonly retentionMs: number;
}

export const DEFAULT_OUTCOME_RETENTION: OutcomeRetention = { countMax: 100_000, retentionMs: 24 * 60 * 60 * 1000 };

/** Snapshot form: `[id, index, hlc, result]` rows in log order. */
export type OutcomeRows = Array<[string, number, string, JsonValue]>;

export class OutcomeTable {
  private readonly byId = new Map<string, Outcome>();
  /**
   * Recorded ids in log order, oldest at `head`: eviction looks only at the
   * head (no iteration per command), and snapshots list rows in this order,
   * so a restore from rows reproduces the same eviction order.
   */
  private order: Array<{ readonly id: string; readonly outcome: Outcome }> = [];
  private head = 0;
  /**
   * Slots in [head, order.length) whose id was recorded again later (only a
   * replay under a longer retention than the original run does that): while
   * there are any, `capture` must filter, which takes a full pass.
   */
  private deadSlots = 0;

  constructor(readonly retention: OutcomeRetention = DEFAULT_OUTCOME_RETENTION) {}

  get size(): number {
    return this.byId.size;
  }

  get(id: string): Outcome | undefined {
    return this.byId.get(id);
  }

  record(id: string, outcome: Outcome): void {
    if (this.byId.has(id)) this.deadSlots += 1;
    this.byId.set(id, outcome);
    this.order.push({ id, outcome });
    const horizonMs = hlcWallMs(outcome.hlc) - this.retention.retentionMs;
    while (this.head < this.order.length) {
      const oldest = this.order[this.head] as { id: string; outcome: Outcome };
      // An id evicted and recorded again later has a newer slot; its old one is dead.
      if (this.byId.get(oldest.id) === oldest.outcome) {
        if (this.byId.size <= this.retention.countMax && hlcWallMs(oldest.outcome.hlc) >= horizonMs) break;
        this.byId.delete(oldest.id);
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

  toRows(): OutcomeRows {
    const rows: OutcomeRows = [];
    for (let i = this.head; i < this.order.length; i++) {
      const { id, outcome } = this.order[i] as { id: string; outcome: Outcome };
      if (this.byId.get(id) === outcome) rows.push([id, outcome.index, outcome.hlc, outcome.result]);
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
        const { id, outcome } = order[start + i] as { id: string; outcome: Outcome };
        return [id, outcome.index, outcome.hlc, outcome.result];
      },
    };
  }

  static fromRows(rows: unknown, retention: OutcomeRetention): OutcomeTable {
    const table = new OutcomeTable(retention);
    if (!Array.isArray(rows)) throw new Error("outcomes must be an array of rows");
    for (const row of rows as unknown[]) {
      if (!Array.isArray(row) || row.length !== 4 || typeof row[0] !== "string" || typeof row[1] !== "number" || typeof row[2] !== "string") {
        throw new Error("malformed outcome row");
      }
      const outcome: Outcome = { index: row[1], hlc: row[2], result: row[3] as JsonValue };
      if (table.byId.has(row[0])) table.deadSlots += 1;
      table.byId.set(row[0], outcome);
      table.order.push({ id: row[0], outcome });
    }
    return table;
  }
}
