/**
 * Recovery (SPEC §8): start from the newest snapshot whose hashes verify and
 * that the WAL continues, falling back to older ones and then to genesis;
 * replay the WAL after it with the chain checked. When nothing verifiable
 * remains, throw a `RecoveryError` naming every file, index and hash that
 * failed — the server never serves state it could not verify. genesis.json
 * must be the genesis WAL entry 1 follows (while the WAL holds it) and the
 * one the snapshot recovery starts from names (`snapshotGenesisMismatch`).
 */
import path from "node:path";
import type { StateMachine } from "../core/state-machine.ts";
import { LogCorruptError, SnapshotOtherClusterError } from "../storage/errors.ts";
import { snapshotFileName } from "../storage/snapshot-store.ts";
import type { CommandLog, SnapshotDocument, SnapshotStore } from "../storage/types.ts";
import type { RecoveredPosition } from "./engine.ts";
import { RecoveryError, ReplayDivergenceError, WalChainError } from "./errors.ts";
import type { RecoveryProblem } from "./errors.ts";
import { genesisStateCopy } from "./genesis.ts";
import type { GenesisDocument } from "./genesis.ts";
import { OutcomeTable } from "./outcomes.ts";
import type { OutcomeRetention, OutcomeWeight } from "./outcomes.ts";
import { replayInto } from "./replay.ts";
import { parseRecord } from "../core/log-record.ts";
import type { LogRecord } from "../core/log-record.ts";

export interface RecoverInput<Model> {
  readonly machine: StateMachine<Model>;
  readonly genesis: GenesisDocument;
  readonly log: CommandLog;
  readonly snapshots: SnapshotStore;
  readonly outcomeRetention: OutcomeRetention;
  /** Names for error messages. */
  readonly walPath: string;
  readonly genesisPath: string;
  readonly snapshotDir: string;
  readonly onProgress?: (index: number, lastIndex: number) => void;
  /** Called when a snapshot is passed over, with why. */
  readonly onSkippedSnapshot?: (problem: RecoveryProblem) => void;
  /** A snapshot whose load was started before the log was open (openEngine: the newest), used if recovery gets to it. */
  readonly preloaded?: PreloadedSnapshot | null;
  /** Aborts the recovery between steps (openEngine's `signal`). */
  readonly signal?: AbortSignal;
}

export interface PreloadedSnapshot {
  readonly index: number;
  readonly doc: Promise<SnapshotDocument>;
}

export interface RecoveryReport<Model> extends RecoveredPosition<Model> {
  /** Snapshots passed over, newest first, with why. */
  readonly skipped: readonly RecoveryProblem[];
  /** Entries replayed from the WAL. */
  readonly replayed: number;
}

/**
 * A genesis.json the WAL was not written under (replaced by another valid
 * genesis of the same cluster): entry 1, while the WAL still holds it, names
 * the genesis state hash it follows. Null when it agrees, or is gone.
 */
export async function genesisMismatch(log: CommandLog, genesis: GenesisDocument, genesisPath: string): Promise<RecoveryProblem | null> {
  if (log.firstIndex() !== 1 || log.lastIndex() < 1) return null;
  // What entry 1 follows; null (a damaged entry 1) is the replay's to name.
  const follows = await walHashAt(log, 0);
  if (follows === null || follows === genesis.stateHash) return null;
  return { file: genesisPath, expectedHash: follows, actualHash: genesis.stateHash, detail: "not the genesis this WAL was written under: its entry 1 follows another genesis state" };
}

/**
 * A genesis.json the snapshot `doc` (in `file`) does not descend from: its
 * cluster, its state hash or its genesisTime is not the one the snapshot
 * names. What ties genesis.json to the history once the WAL no longer holds
 * entry 1. Null when they agree; a formatVersion 1 snapshot (written before
 * snapshots named their genesis) has only its cluster to compare.
 */
export function snapshotGenesisMismatch(
  doc: Pick<SnapshotDocument, "clusterId" | "genesisStateHash" | "genesisTime">,
  genesis: GenesisDocument,
  genesisPath: string,
  file: string,
): RecoveryProblem | null {
  if (doc.clusterId !== genesis.clusterId) {
    return { file: genesisPath, detail: `not the genesis snapshot ${file} descends from: it is of cluster ${JSON.stringify(genesis.clusterId)}, the snapshot of cluster ${JSON.stringify(doc.clusterId)}` };
  }
  if (doc.genesisStateHash === undefined) return null;
  if (doc.genesisStateHash !== genesis.stateHash) {
    return {
      file: genesisPath,
      expectedHash: doc.genesisStateHash,
      actualHash: genesis.stateHash,
      detail: `not the genesis snapshot ${file} descends from: its state hash is ${genesis.stateHash}, the snapshot's genesis ${doc.genesisStateHash}`,
    };
  }
  if (doc.genesisTime !== genesis.genesisTime) {
    return { file: genesisPath, detail: `not the genesis snapshot ${file} descends from: its genesisTime is ${genesis.genesisTime}, the snapshot's genesis ${String(doc.genesisTime)}` };
  }
  return null;
}

/**
 * The hash `log` gives its entry at `index` (the logHash a snapshot at that
 * index must carry): the entry's own, or, when it was truncated, the next
 * entry's `prevHash`; null when the log holds neither.
 */
export async function walHashAt(log: CommandLog, index: number): Promise<string | null> {
  const [record] = index >= 1 ? await log.read(index, 1) : [];
  if (record !== undefined) return record.hash;
  const [next] = await log.read(index + 1, 1);
  return next === undefined ? null : prevHashOf(next);
}

/**
 * Why the snapshot `doc` (in `file`) is no base for this log's history, or
 * null: its logHash must be the log's hash of its entry. One copied from a
 * diverged data dir verifies on its own and fails only this.
 */
export async function snapshotOffHistory(log: CommandLog, doc: Pick<SnapshotDocument, "lastAppliedIndex" | "logHash">, file: string): Promise<RecoveryProblem | null> {
  if (doc.lastAppliedIndex === 0) return null;
  const walHash = await walHashAt(log, doc.lastAppliedIndex);
  if (walHash === doc.logHash) return null;
  return { file, index: doc.lastAppliedIndex, expectedHash: doc.logHash, actualHash: walHash ?? undefined, detail: "snapshot's logHash differs from the WAL entry at its index" };
}

/** The prevHash a record's body names; null when the body is damaged (the replay names that entry). */
function prevHashOf(record: LogRecord): string | null {
  try {
    const prevHash: unknown = parseRecord(record).prevHash;
    return typeof prevHash === "string" ? prevHash : null;
  } catch {
    return null;
  }
}

export async function recover<Model>(input: RecoverInput<Model>): Promise<RecoveryReport<Model>> {
  const { machine, genesis, log, snapshots } = input;
  input.signal?.throwIfAborted();
  const lastIndex = log.lastIndex();
  const firstIndex = log.firstIndex();
  const wrongGenesis = await genesisMismatch(log, genesis, input.genesisPath);
  if (wrongGenesis !== null) throw new RecoveryError(`${input.genesisPath} does not belong to this data dir's WAL`, [wrongGenesis]);
  const problems: RecoveryProblem[] = [];
  const skip = (problem: RecoveryProblem): void => {
    problems.push(problem);
    input.onSkippedSnapshot?.(problem);
  };

  const listed = await snapshots.list();
  for (const snapshotIndex of listed) {
    input.signal?.throwIfAborted();
    const file = path.join(input.snapshotDir, snapshotFileName(snapshotIndex));
    if (snapshotIndex > lastIndex) {
      // A snapshot is written only once its index is durable in the WAL: the
      // WAL has lost acknowledged entries (deleted, replaced, cut short).
      // Starting from anything older would serve a past state and hand its
      // indexes out again; a snapshot that is itself damaged proves the same,
      // but the refusal says so, since the file may be what is wrong.
      const itself = await snapshots.load(snapshotIndex).then(
        () => "",
        (error: unknown) => ` (the snapshot itself does not verify either: ${error instanceof Error ? error.message : String(error)})`,
      );
      throw new RecoveryError(`the WAL ${input.walPath} ends at index ${lastIndex}, behind snapshot ${snapshotIndex}: entries it held are gone${itself}`, [
        ...problems,
        { file: input.walPath, index: lastIndex + 1, detail: `missing: snapshot ${file} was written after index ${snapshotIndex} was durable in the WAL${itself}` },
      ]);
    }
    if (snapshotIndex + 1 < firstIndex) {
      skip({ file, index: snapshotIndex, detail: `the WAL no longer reaches back to it (starts at ${firstIndex})` });
      continue;
    }
    let doc;
    let otherCluster: RecoveryProblem | null = null;
    try {
      doc = await (input.preloaded?.index === snapshotIndex ? input.preloaded.doc : snapshots.load(snapshotIndex));
    } catch (error) {
      const problem = loadProblem(error, file, snapshotIndex);
      // Whole but of another cluster: a stranger, unless it is of this history (then genesis.json is the stranger, below).
      if (!(error instanceof SnapshotOtherClusterError)) {
        skip(problem);
        continue;
      }
      doc = error.doc;
      otherCluster = problem;
    }
    // A store told no cluster (openEngine's `snapshots` option) loads any: the same test.
    if (doc.clusterId !== genesis.clusterId) {
      otherCluster ??= { file, index: snapshotIndex, detail: `snapshot of cluster ${JSON.stringify(doc.clusterId)}, not ${JSON.stringify(genesis.clusterId)}` };
    }
    // The WAL entry at the snapshot's index (or, cut, the next one's prevHash) must be the one the snapshot names.
    const offHistory = await snapshotOffHistory(log, doc, file);
    if (offHistory !== null) {
      // Another cluster's is named as such: copied from another deployment, not damaged.
      skip(otherCluster ?? offHistory);
      continue;
    }
    // Of this history (its logHash is the WAL's), yet of another cluster or genesis: genesis.json is what is wrong, and serving it would
    // hand out a foreign genesis (GET /state?at=0, the genesis hash printed at startup). An older snapshot cannot make it right.
    const otherGenesis = snapshotGenesisMismatch(doc, genesis, input.genesisPath, file);
    if (otherGenesis !== null) throw new RecoveryError(`${input.genesisPath} is not the genesis this data dir's snapshots descend from`, [...problems, otherGenesis]);
    let outcomes: OutcomeTable;
    try {
      outcomes = OutcomeTable.fromRows(doc.outcomes, input.outcomeRetention, outcomeWeightOf(machine));
    } catch (error) {
      skip({ file, index: snapshotIndex, detail: `outcomes: ${(error as Error).message}` });
      continue;
    }
    let model: Model;
    try {
      model = machine.restore(doc.state, doc.lastAppliedHlc);
    } catch (error) {
      // Its hash verifies, but the machine cannot load it (written by a bug): an older snapshot and a replay can.
      skip({ file, index: snapshotIndex, detail: `the state does not load: ${(error as Error).message}` });
      continue;
    }
    // Its size paces the engine's first automatic snapshot; not knowing it (a file gone meanwhile) only makes that one come early.
    const snapshotFileBytes = (await snapshots.fileBytes?.(snapshotIndex).catch(() => 0)) ?? 0;
    return replayTail(input, model, { index: snapshotIndex, hlc: doc.lastAppliedHlc, logHash: doc.logHash, outcomes, snapshotIndex, snapshotHlc: doc.lastAppliedHlc, snapshotFileBytes }, problems);
  }

  if (firstIndex > 1) {
    // With none at all, say where they were looked for: a snapshots directory deleted or emptied is the likely cause.
    const none = listed.length === 0 ? ` (there is no snapshot in ${input.snapshotDir})` : "";
    throw new RecoveryError(`no snapshot verifies${none} and the WAL ${input.walPath} starts at ${firstIndex}, so genesis cannot be replayed`, problems);
  }
  const model = machine.restore(genesisStateCopy(genesis));
  return replayTail(input, model, { index: 0, hlc: "", logHash: genesis.stateHash, outcomes: new OutcomeTable(input.outcomeRetention, outcomeWeightOf(machine)), snapshotIndex: 0, snapshotHlc: "", snapshotFileBytes: 0 }, problems);
}

/** The problem a snapshot that did not load (`error`) is skipped for: its file, index and hashes, and why. */
export function loadProblem(error: unknown, file: string, index: number): RecoveryProblem {
  const e = error as { file?: string; expectedHash?: string; actualHash?: string; message?: string };
  return { file: e.file ?? file, index, expectedHash: e.expectedHash, actualHash: e.actualHash, detail: e.message ?? String(error) };
}

/** The machine's weight of a kept result, bound to it (results weigh nothing without one). */
function outcomeWeightOf<Model>(machine: StateMachine<Model>): OutcomeWeight | undefined {
  const weigh = machine.outcomeWeight;
  return weigh === undefined ? undefined : (result) => weigh.call(machine, result);
}

async function replayTail<Model>(
  input: RecoverInput<Model>,
  model: Model,
  start: { index: number; hlc: string; logHash: string; outcomes: OutcomeTable; snapshotIndex: number; snapshotHlc: string; snapshotFileBytes: number },
  skipped: RecoveryProblem[],
): Promise<RecoveryReport<Model>> {
  const lastIndex = input.log.lastIndex();
  try {
    const position = await replayInto(input.machine, model, input.log, {
      fromIndex: start.index,
      toIndex: lastIndex,
      logHash: start.logHash,
      hlc: start.hlc,
      outcomes: start.outcomes,
      file: input.walPath,
      onProgress: input.onProgress ? (index) => input.onProgress?.(index, lastIndex) : undefined,
      // Signals and timers get their turn during a long replay: a Ctrl-C stops it (signal) instead of waiting for the end.
      pause: () => yieldToEventLoop(input.signal),
    });
    return {
      model,
      index: position.index,
      hlc: position.hlc,
      logHash: position.logHash,
      outcomes: start.outcomes,
      snapshotIndex: start.snapshotIndex,
      snapshotHlc: start.snapshotHlc,
      snapshotFileBytes: start.snapshotFileBytes,
      skipped,
      replayed: position.index - start.index,
    };
  } catch (error) {
    if (error instanceof WalChainError || error instanceof ReplayDivergenceError || error instanceof LogCorruptError) {
      throw new RecoveryError("the WAL does not verify", [...skipped, { file: input.walPath, index: error.index, detail: error.detail }]);
    }
    throw error;
  }
}

/** Resolves after the event loop has run once (timers, signals, I/O callbacks); rejects if `signal` was aborted by then. */
function yieldToEventLoop(signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) =>
    setImmediate(() => {
      if (signal?.aborted) reject(signal.reason);
      else resolve();
    }),
  );
}
