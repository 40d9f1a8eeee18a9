/**
 * Engine settings with their defaults. Every limit is named with its unit.
 */
import { NODE_ID_PATTERN } from "../core/hlc.ts";
import type { Clock } from "../core/hlc.ts";
import { DEFAULT_OUTCOME_RETENTION } from "./outcomes.ts";
import type { OutcomeRetention } from "./outcomes.ts";
import { heapFigures } from "./heap.ts";
import type { HeapFigures } from "./heap.ts";
import { systemClock } from "./system-clock.ts";
import type { TimeTravelMachine } from "./time-travel.ts";
import { problemText } from "./errors.ts";
import type { RecoveryProblem } from "./errors.ts";

export interface EngineSettings {
  readonly clock: Clock;
  /** This node's id in HLC stamps. */
  readonly nodeId: string;
  /** Client HLCs further ahead of local time than this are refused (`clock_drift`). */
  readonly maxDriftMs: number;
  /**
   * Take a snapshot after at least this many commands (0 = only on request);
   * with a large snapshot, later (one command per 256 bytes of the last
   * snapshot file: its state and its idempotency rows), so snapshot cost
   * stays proportional to the commands logged.
   */
  readonly snapshotEvery: number;
  /** How many snapshots to keep (K). */
  readonly snapshotsKept: number;
  /** Most records handed to one append (one flush). */
  readonly batchSizeMax: number;
  /**
   * Appends handed to the log before the first of them completed (the log
   * completes them in order, one transaction at a time). 1 by default: a batch
   * handed over early waits in the log's queue anyway and can no longer grow,
   * while commands kept pending until the flush returns all go in the next
   * one — measured over HTTP at 64 connections: batches of ~29 instead of ~20
   * and 10–17% more commands/s.
   */
  readonly appendsInFlightMax: number;
  readonly outcomeRetention: OutcomeRetention;
  /**
   * Where a worker thread finds the state machine for time travel (its module
   * URL and export): with it, `stateTextAt` runs in a worker; null: on the
   * main thread, a step at a time.
   */
  readonly timeTravelMachine: TimeTravelMachine | null;
  /** A flush failed: the engine is poisoned; the embedding process should exit non-zero. */
  readonly onFatal: (error: Error) => void;
  readonly onSnapshotError: (error: Error) => void;
  /** A `subscribe` or `onFlush` listener threw: the error is handed here (default: stderr) and the engine goes on. */
  readonly onListenerError: (error: Error) => void;
  /**
   * A kept snapshot was passed over, by recovery or by time travel, because
   * it does not load or is not of this WAL's history (G3: never silently;
   * default: stderr). Older bases are tried.
   */
  readonly onSkippedSnapshot: (problem: RecoveryProblem) => void;
  /**
   * The WAL's hash chain breaks at an entry older than the snapshot recovery
   * started from (found by the LMDB log's probe child as it read the file):
   * recovery never needed that entry, so the engine opens on the verified
   * current state, but reads over it (GET /log, time travel past it,
   * `swoosh verify`) will fail. Told once per open, never silently (G3;
   * default: stderr).
   */
  readonly onOldWalDamage: (problem: RecoveryProblem) => void;
  /** How full the heap is (heap.ts); a read that would hold a whole state's text checks it as it goes. */
  readonly heapFigures: () => HeapFigures;
}

export type EngineSettingsInput = Partial<EngineSettings>;

function defaultOnFatal(error: Error): void {
  process.stderr.write(`swoosh: fatal: write-ahead log flush failed, exiting: ${error.message}\n`);
  process.exit(1);
}

function defaultOnListenerError(error: Error): void {
  process.stderr.write(`swoosh: a subscribe/onFlush listener threw (the engine goes on): ${error.stack ?? error.message}\n`);
}

function defaultOnSkippedSnapshot(problem: RecoveryProblem): void {
  process.stderr.write(`swoosh: snapshot passed over: ${problemText(problem)}\n`);
}

function defaultOnOldWalDamage(problem: RecoveryProblem): void {
  process.stderr.write(`swoosh: WAL damaged behind the snapshot recovery started from: ${problemText(problem)}\n`);
}

function defaultOnSnapshotError(error: Error): void {
  process.stderr.write(`swoosh: snapshot failed (the WAL still holds everything): ${error.message}\n`);
}

export function resolveSettings(input: EngineSettingsInput = {}): EngineSettings {
  const settings: EngineSettings = {
    clock: input.clock ?? systemClock,
    nodeId: input.nodeId ?? "node-1",
    maxDriftMs: input.maxDriftMs ?? 60_000,
    snapshotEvery: input.snapshotEvery ?? 10_000,
    snapshotsKept: input.snapshotsKept ?? 3,
    batchSizeMax: input.batchSizeMax ?? 4096,
    appendsInFlightMax: input.appendsInFlightMax ?? 1,
    outcomeRetention: input.outcomeRetention ?? DEFAULT_OUTCOME_RETENTION,
    timeTravelMachine: input.timeTravelMachine ?? null,
    onFatal: input.onFatal ?? defaultOnFatal,
    onSnapshotError: input.onSnapshotError ?? defaultOnSnapshotError,
    onListenerError: input.onListenerError ?? defaultOnListenerError,
    onSkippedSnapshot: input.onSkippedSnapshot ?? defaultOnSkippedSnapshot,
    onOldWalDamage: input.onOldWalDamage ?? defaultOnOldWalDamage,
    heapFigures: input.heapFigures ?? heapFigures,
  };
  for (const [name, value, min] of [
    ["maxDriftMs", settings.maxDriftMs, 0],
    ["snapshotEvery", settings.snapshotEvery, 0],
    ["snapshotsKept", settings.snapshotsKept, 1],
    ["batchSizeMax", settings.batchSizeMax, 1],
    ["appendsInFlightMax", settings.appendsInFlightMax, 1],
    ["outcomeRetention.countMax", settings.outcomeRetention.countMax, 0],
    ["outcomeRetention.retentionMs", settings.outcomeRetention.retentionMs, 0],
    ["outcomeRetention.weightMax", settings.outcomeRetention.weightMax ?? 0, 0],
  ] as const) {
    if (!Number.isSafeInteger(value) || value < min) throw new RangeError(`${name} must be an integer >= ${min}, got ${value}`);
  }
  // Checked here, before anything is written to a data dir (the clock would refuse it only after).
  if (typeof settings.nodeId !== "string" || !NODE_ID_PATTERN.test(settings.nodeId)) throw new RangeError(`nodeId must be a string matching ${NODE_ID_PATTERN}, got ${JSON.stringify(settings.nodeId)}`);
  // Plain JavaScript callers get no type check: a wrong kind of value would otherwise fail every submit later, or the first flush failure.
  if (typeof settings.clock !== "object" || settings.clock === null || typeof settings.clock.nowMs !== "function") throw new TypeError("clock must be an object with a nowMs() method");
  for (const [name, hook] of [
    ["onFatal", settings.onFatal],
    ["onSnapshotError", settings.onSnapshotError],
    ["onListenerError", settings.onListenerError],
    ["onSkippedSnapshot", settings.onSkippedSnapshot],
    ["onOldWalDamage", settings.onOldWalDamage],
    ["heapFigures", settings.heapFigures],
  ] as const) {
    if (typeof hook !== "function") throw new TypeError(`${name} must be a function`);
  }
  return settings;
}
