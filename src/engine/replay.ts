/**
 * Replay: applies WAL entries to a model, checking the hash chain on the way.
 * Used by recovery, by time travel (`stateAt`) and by the offline verifier.
 */
import { openRecord } from "../core/log-record.ts";
import { hlcWallMs } from "../core/hlc.ts";
import type { StateMachine } from "../core/state-machine.ts";
import type { CommandLog } from "../storage/types.ts";
import { ReplayDivergenceError, WalChainError } from "./errors.ts";
import type { OutcomeTable } from "./outcomes.ts";

export interface ReplayFrom {
  /** Index the model is at (its last applied entry; 0 = genesis). */
  readonly fromIndex: number;
  /** Last index to apply (inclusive). */
  readonly toIndex: number;
  /** Chain hash at `fromIndex`. */
  readonly logHash: string;
  /** HLC at `fromIndex` ("" at genesis). */
  readonly hlc: string;
  /** Rebuilt with every entry that carries an id. */
  readonly outcomes?: OutcomeTable;
  /** Called every `progressEvery` entries with the index reached. */
  readonly onProgress?: (index: number) => void;
  /** Called after each entry is applied (verify compares hashes at snapshots). */
  readonly afterEntry?: (index: number) => void;
  /** Label for errors (the WAL's path). */
  readonly file?: string;
  /** Awaited every PAUSE_EVERY entries: lets the event loop run during a replay on a live server (time travel). */
  readonly pause?: () => Promise<void>;
}

export interface ReplayPosition {
  readonly index: number;
  readonly hlc: string;
  readonly logHash: string;
}

/**
 * Records per read. Small enough that a replay right after the open trails
 * the LMDB log's probe child closely (a read waits until the child has read
 * past all of it), large enough that reads cost nothing next to applying.
 */
const READ_BATCH = 1024;
/** Entries applied between two pauses (a millisecond or two of work). */
const PAUSE_EVERY = 1024;

export async function replayInto<Model>(machine: StateMachine<Model>, model: Model, log: CommandLog, from: ReplayFrom): Promise<ReplayPosition> {
  let index = from.fromIndex;
  let hash = from.logHash;
  let hlc = from.hlc;
  const file = from.file ?? "wal";
  let sincePause = 0;
  while (index < from.toIndex) {
    const records = await log.read(index + 1, Math.min(READ_BATCH, from.toIndex - index));
    if (records.length === 0) throw new WalChainError(index + 1, "entry missing", file);
    // Checked by another reader up to here: each record's hash against the
    // one before's. The first record of a replay is always hashed here, since
    // its predecessor's hash comes from a snapshot or genesis, not the log.
    const checkedThrough = log.chainCheckedThrough?.() ?? 0;
    for (const record of records) {
      const expected = index + 1;
      const opened = openRecord(record, expected, hash, expected > from.fromIndex + 1 && expected <= checkedThrough);
      if (opened.entry === undefined) throw new WalChainError(expected, opened.problem, file);
      const entry = opened.entry;
      if (!(entry.hlc > hlc)) throw new WalChainError(expected, `HLC ${entry.hlc} does not follow ${hlc || "genesis"}`, file);
      const nowMs = hlcWallMs(entry.hlc);
      const outcome = machine.apply(model, { type: entry.type, payload: entry.payload }, { hlc: entry.hlc, index: expected, nowMs });
      if (!outcome.ok) throw new ReplayDivergenceError(expected, `${entry.type} refused: ${outcome.error.code}: ${outcome.error.message}`);
      if (entry.id !== undefined && from.outcomes) from.outcomes.record(entry.id, expected, entry.hlc, outcome.result, nowMs);
      index = expected;
      hash = record.hash;
      hlc = entry.hlc;
      from.afterEntry?.(index);
      if (from.pause !== undefined && ++sincePause === PAUSE_EVERY) {
        sincePause = 0;
        await from.pause();
      }
    }
    from.onProgress?.(index);
  }
  return { index, hlc, logHash: hash };
}
