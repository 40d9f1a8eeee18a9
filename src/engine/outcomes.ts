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
  // A Map iterates in insertion order, which is log order here: eviction takes
  // the oldest first, and a restore from rows reproduces the same order.
  private readonly byId = new Map<string, Outcome>();

  constructor(readonly retention: OutcomeRetention = DEFAULT_OUTCOME_RETENTION) {}

  get size(): number {
    return this.byId.size;
  }

  get(id: string): Outcome | undefined {
    return this.byId.get(id);
  }

  record(id: string, outcome: Outcome): void {
    this.byId.set(id, outcome);
    const horizonMs = hlcWallMs(outcome.hlc) - this.retention.retentionMs;
    for (const [oldId, old] of this.byId) {
      if (this.byId.size <= this.retention.countMax && hlcWallMs(old.hlc) >= horizonMs) break;
      this.byId.delete(oldId);
    }
  }

  toRows(): OutcomeRows {
    const rows: OutcomeRows = [];
    for (const [id, o] of this.byId) rows.push([id, o.index, o.hlc, o.result]);
    return rows;
  }

  static fromRows(rows: unknown, retention: OutcomeRetention): OutcomeTable {
    const table = new OutcomeTable(retention);
    if (!Array.isArray(rows)) throw new Error("outcomes must be an array of rows");
    for (const row of rows as unknown[]) {
      if (!Array.isArray(row) || row.length !== 4 || typeof row[0] !== "string" || typeof row[1] !== "number" || typeof row[2] !== "string") {
        throw new Error("malformed outcome row");
      }
      table.byId.set(row[0], { index: row[1], hlc: row[2], result: row[3] as JsonValue });
    }
    return table;
  }
}
