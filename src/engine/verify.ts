/**
 * Offline verification of a data directory (`swoosh verify`, SPEC §8): every
 * snapshot's hashes, the whole WAL chain, and a replay that compares the state
 * hash and chain hash at every kept snapshot, and that genesis.json is the
 * genesis every snapshot names. Reports every problem it finds rather than
 * stopping at the first.
 */
import { stat } from "node:fs/promises";
import path from "node:path";
import { computeStateHash } from "../core/hash.ts";
import type { StateMachine } from "../core/state-machine.ts";
import { LogAccessError, LogCorruptError, SnapshotOtherClusterError, isAccessRefusal } from "../storage/errors.ts";
import { LmdbCommandLog, lmdbDataFile } from "../storage/lmdb-log.ts";
import { NodeFileSystem } from "../storage/node-fs.ts";
import { walAccessRefusal } from "../storage/wal-access.ts";
import { FileSnapshotStore, snapshotFileName } from "../storage/snapshot-store.ts";
import type { FileSystem, SnapshotDocument } from "../storage/types.ts";
import { lockDataDir } from "./dir-lock.ts";
import type { DirLock } from "./dir-lock.ts";
import { DataDirNotDirectoryError, ReplayDivergenceError, WalChainError, walOpenProblem } from "./errors.ts";
import type { RecoveryProblem } from "./errors.ts";
import { genesisStateCopy } from "./genesis.ts";
import { genesisMismatch, loadProblem, snapshotGenesisMismatch, snapshotOffHistory } from "./recovery.ts";
import { dataDirLayout, historyWithoutGenesis, readGenesisFile } from "./open.ts";
import type { DataDirLayout } from "./open.ts";
import { replayInto } from "./replay.ts";

export interface VerifyReport {
  readonly ok: boolean;
  readonly problems: RecoveryProblem[];
  readonly genesisHash: string | null;
  /** The WAL's first and last index (null if the WAL was not read: missing, unreadable, or no genesis to check it against). */
  readonly walFirstIndex: number | null;
  readonly walLastIndex: number | null;
  readonly snapshotsChecked: number;
  /** Snapshots whose state hash the replay reproduced. */
  readonly snapshotsMatched: number;
  /** WAL entries replayed: all after the start, or those before the entry the replay stopped at. */
  readonly entriesReplayed: number;
  /** State hash after the last entry (null if replay could not finish). */
  readonly finalStateHash: string | null;
}

export interface VerifyOptions<Model> {
  readonly dataDir: string;
  readonly machine: StateMachine<Model>;
  readonly fs?: FileSystem;
  readonly onProgress?: (done: number, total: number) => void;
}

export async function verifyDataDir<Model>(options: VerifyOptions<Model>): Promise<VerifyReport> {
  const fs = options.fs ?? new NodeFileSystem();
  // Holding the data dir's lock while it reads: a running server (or one
  // started meanwhile) would write snapshots and truncate the WAL under the
  // checks, so verify refuses a dir in use, naming the process, rather than
  // report damage that is only a write in progress. A simulated file system
  // (tests) has no other process; a dir that is not there has nothing to lock.
  const lock = fs instanceof NodeFileSystem && (await isDirectory(options.dataDir)) ? await lockUnlessReadOnly(options.dataDir) : null;
  try {
    return await verifyUnlocked(options, fs, lock !== READ_ONLY);
  } finally {
    if (lock !== null && lock !== READ_ONLY) await lock.release();
  }
}

/** What `lockUnlessReadOnly` gives for a data dir this process cannot write. */
const READ_ONLY = "read-only";

/** The data dir's lock; none on a dir this process cannot write (a backup on read-only media: no server writes there either). */
async function lockUnlessReadOnly(dataDir: string): Promise<DirLock | typeof READ_ONLY> {
  try {
    return await lockDataDir(dataDir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (isAccessRefusal(code)) return READ_ONLY;
    throw error;
  }
}

async function isDirectory(dir: string): Promise<boolean> {
  try {
    return (await stat(dir)).isDirectory();
  } catch {
    return false;
  }
}

async function verifyUnlocked<Model>(options: VerifyOptions<Model>, fs: FileSystem, dataDirWritable: boolean): Promise<VerifyReport> {
  const layout = dataDirLayout(options.dataDir);
  const problems: RecoveryProblem[] = [];
  const report = (partial: Partial<VerifyReport>): VerifyReport => ({
    ok: problems.length === 0,
    problems,
    genesisHash: null,
    walFirstIndex: null,
    walLastIndex: null,
    snapshotsChecked: 0,
    snapshotsMatched: 0,
    entriesReplayed: 0,
    finalStateHash: null,
    ...partial,
  });

  let genesis;
  try {
    genesis = await readGenesisFile(fs, options.dataDir);
  } catch (error) {
    // A data dir path that is a file is reported as the wal or snapshots path that is one is: the file, "not a directory".
    problems.push(error instanceof DataDirNotDirectoryError ? { file: error.file, detail: error.detail } : { file: layout.genesisPath, detail: (error as Error).message });
    return report({});
  }
  if (genesis === null) {
    problems.push({ file: layout.genesisPath, detail: await missingGenesisDetail(fs, layout) });
    return report({});
  }

  const snapshots = new FileSnapshotStore(fs, layout.snapshotDir, { clusterId: genesis.clusterId });
  const verified = new Map<number, SnapshotDocument>();
  // Whole snapshots of another cluster than genesis.json's: strangers, unless of this history (sorted out once the WAL is open).
  const otherCluster: SnapshotOtherClusterError[] = [];
  let indexes: number[] = [];
  try {
    indexes = await snapshots.list();
  } catch (error) {
    problems.push(unreadableDirProblem(layout.snapshotDir, error));
  }
  for (const index of indexes) {
    try {
      verified.set(index, await snapshots.load(index));
    } catch (error) {
      if (error instanceof SnapshotOtherClusterError) otherCluster.push(error);
      else problems.push(loadProblem(error, layout.snapshotDir, index));
    }
  }
  const otherClusterProblems = (): RecoveryProblem[] => otherCluster.map((error) => loadProblem(error, layout.snapshotDir, error.index));

  const wal = await openWal(fs, layout.walPath, dataDirWritable);
  if ("problem" in wal) {
    problems.push(...otherClusterProblems(), wal.problem);
    return report({ genesisHash: genesis.stateHash, snapshotsChecked: indexes.length });
  }
  const { log } = wal;
  const snapshotFile = (index: number): string => path.join(layout.snapshotDir, snapshotFileName(index));
  // Whether a snapshot is of this WAL's history (a few WAL reads): asked once per snapshot, whichever check below asks first.
  const offHistoryByDoc = new Map<SnapshotDocument, Promise<RecoveryProblem | null>>();
  const offHistory = (doc: SnapshotDocument): Promise<RecoveryProblem | null> => {
    let answer = offHistoryByDoc.get(doc);
    if (answer === undefined) {
      answer = snapshotOffHistory(log, doc, snapshotFile(doc.lastAppliedIndex));
      offHistoryByDoc.set(doc, answer);
    }
    return answer;
  };
  try {
    const firstIndex = log.firstIndex();
    const lastIndex = log.lastIndex();
    const wrongGenesis = await genesisMismatch(log, genesis, layout.genesisPath);
    if (wrongGenesis !== null) {
      problems.push(...otherClusterProblems(), wrongGenesis);
      return report({ genesisHash: genesis.stateHash, walFirstIndex: firstIndex, walLastIndex: lastIndex, snapshotsChecked: indexes.length });
    }
    // Once the WAL no longer holds entry 1, the snapshots of this history are what
    // vouch for genesis.json: each names the genesis it descends from (but those
    // written before they did), and genesis.json must be that one. While it holds
    // entry 1, the WAL vouched for genesis.json above, and a snapshot naming
    // another genesis is itself the stranger (named below, as one of another
    // history). So is a snapshot the WAL disowns: genesis.json is not blamed for it.
    // A whole snapshot of another cluster is a stranger too, unless the WAL lacks entry 1 and owns it (its logHash is the
    // WAL's): then it is of this history, blames genesis.json below, and the replay checks it.
    for (const error of otherCluster) {
      if (firstIndex > 1 && (await offHistory(error.doc)) === null) verified.set(error.index, error.doc);
      else problems.push(loadProblem(error, layout.snapshotDir, error.index));
    }
    if (firstIndex > 1) {
      for (const doc of verified.values()) {
        if ((await offHistory(doc)) !== null) continue;
        const otherGenesis = snapshotGenesisMismatch(doc, genesis, layout.genesisPath, snapshotFile(doc.lastAppliedIndex));
        if (otherGenesis !== null) problems.push(otherGenesis);
      }
    }
    // Start from genesis when the WAL reaches back to it, else from the oldest
    // verified snapshot the WAL continues.
    let start: { index: number; hlc: string; logHash: string; state: SnapshotDocument["state"] } | null = null;
    if (firstIndex <= 1) {
      start = { index: 0, hlc: "", logHash: genesis.stateHash, state: genesisStateCopy(genesis) };
    } else {
      const usable = [...verified.values()].filter((d) => d.lastAppliedIndex + 1 >= firstIndex).sort((a, b) => a.lastAppliedIndex - b.lastAppliedIndex);
      for (const doc of usable) {
        // A snapshot of another history (copied from a diverged dir) verifies on its own: named here, not as the WAL entry after it.
        const disowned = await offHistory(doc);
        if (disowned !== null) {
          problems.push(disowned);
          continue;
        }
        start = { index: doc.lastAppliedIndex, hlc: doc.lastAppliedHlc, logHash: doc.logHash, state: doc.state };
        break;
      }
      if (start === null && usable.length === 0) problems.push({ file: layout.walPath, index: firstIndex, detail: `the WAL starts at ${firstIndex} and no verified snapshot precedes it` });
    }
    if (start === null) return report({ genesisHash: genesis.stateHash, walFirstIndex: firstIndex, walLastIndex: lastIndex, snapshotsChecked: indexes.length });

    const model = options.machine.restore(start.state, start.hlc);
    let matched = 0;
    let chainHash = start.logHash;
    const total = lastIndex - start.index;
    options.onProgress?.(0, total);
    const checkAt = (index: number, logHash: string): void => {
      const doc = verified.get(index);
      if (!doc) return;
      const actual = computeStateHash(options.machine.state(model));
      if (actual !== doc.stateHash || logHash !== doc.logHash) {
        problems.push({
          file: snapshotFile(index),
          index,
          expectedHash: doc.stateHash,
          actualHash: actual,
          detail: logHash !== doc.logHash ? `chain hash ${logHash} differs from snapshot logHash ${doc.logHash}` : "replayed state hash differs from the snapshot's",
        });
      } else {
        matched += 1;
      }
    };
    let finalStateHash: string | null = null;
    let replayed = 0;
    try {
      // Replay in slices so the chain hash is known at every snapshot index.
      let position = { index: start.index, hlc: start.hlc, logHash: start.logHash };
      if (verified.has(position.index)) checkAt(position.index, position.logHash);
      const stops = [...verified.keys()].filter((i) => i > start.index && i <= lastIndex).sort((a, b) => a - b);
      for (const stop of [...stops, lastIndex]) {
        if (stop <= position.index) continue;
        position = await replayInto(options.machine, model, log, {
          fromIndex: position.index,
          toIndex: stop,
          logHash: position.logHash,
          hlc: position.hlc,
          file: layout.walPath,
          onProgress: (index) => options.onProgress?.(index - start.index, total),
        });
        chainHash = position.logHash;
        checkAt(stop, chainHash);
      }
      replayed = position.index - start.index;
      finalStateHash = computeStateHash(options.machine.state(model));
    } catch (error) {
      if (error instanceof WalChainError || error instanceof ReplayDivergenceError || error instanceof LogCorruptError) {
        problems.push({ file: layout.walPath, index: error.index, detail: error.detail });
        // The entries before the one that failed were replayed: the count says how far the replay got.
        replayed = Math.max(0, error.index - 1 - start.index);
      } else {
        throw error;
      }
    }
    for (const index of verified.keys()) {
      if (index > lastIndex) problems.push({ file: layout.snapshotDir, index, detail: `snapshot is ahead of the WAL (last index ${lastIndex})` });
    }
    return report({
      genesisHash: genesis.stateHash,
      walFirstIndex: firstIndex,
      walLastIndex: lastIndex,
      snapshotsChecked: indexes.length,
      snapshotsMatched: matched,
      entriesReplayed: replayed,
      finalStateHash,
    });
  } finally {
    await log.close();
  }
}

/**
 * The data dir's WAL opened, or why it cannot be: absent (checked first, since
 * opening creates an empty one, and verify changes nothing in the dir it
 * checks), not this process's to use, or its file damaged. It is opened
 * read-only where this process may not write the data dir or the WAL's files
 * (a backup on read-only media, another user's dir): LMDB's read-write open,
 * which takes its locks, is refused there, and verify writes nothing anyway.
 */
async function openWal(fs: FileSystem, walPath: string, dataDirWritable: boolean): Promise<{ log: LmdbCommandLog } | { problem: RecoveryProblem }> {
  const absent = await absentWal(fs, walPath);
  if (absent !== null) return { problem: absent };
  const readOnly = !dataDirWritable || walAccessRefusal(walPath, false) !== null;
  let log: LmdbCommandLog | undefined;
  try {
    log = await LmdbCommandLog.open(walPath, { readOnly });
    // Every record read back in the probe child before verify reads any here.
    await log.probed();
    return { log };
  } catch (error) {
    await log?.close();
    if (error instanceof LogAccessError) return { problem: { file: error.file, detail: error.message, accessDenied: true } };
    const problem = walOpenProblem(error);
    if (problem === null) throw error;
    return { problem };
  }
}

/** The WAL absent from the data dir: its directory missing or a file, or the LMDB file in it missing; null when both are there. */
async function absentWal(fs: FileSystem, walPath: string): Promise<RecoveryProblem | null> {
  let names: string[];
  try {
    names = await fs.readdir(walPath);
  } catch (error) {
    return unreadableDirProblem(walPath, error);
  }
  const dataFile = lmdbDataFile(walPath);
  if (!names.includes(path.basename(dataFile))) return { file: dataFile, detail: "missing: the WAL's LMDB file is gone (only its directory is left)" };
  return null;
}

/** What is wrong with the data dir's directory `dir` that reading it failed with `error`; any other failure than its being missing or a file is no fault of the data, and is thrown. */
function unreadableDirProblem(dir: string, error: unknown): RecoveryProblem {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === "ENOENT") return { file: dir, detail: "missing" };
  if (code === "ENOTDIR") return { file: dir, detail: "not a directory: a file is in its place" };
  throw error;
}

/**
 * Why genesis.json is missing: a dir holding a history (a WAL, snapshots)
 * lost it, and wants the original put back (as serve says); one holding
 * neither was never initialized.
 */
async function missingGenesisDetail(fs: FileSystem, layout: DataDirLayout): Promise<string> {
  const held: string[] = [];
  if ((await absentWal(fs, layout.walPath)) === null) held.push("a WAL");
  // Unreadable (a file in its place) counts as holding none: only genesis.json is reported.
  const snapshotIndexes = await new FileSnapshotStore(fs, layout.snapshotDir).list().catch(() => []);
  if (snapshotIndexes.length > 0) held.push("snapshots");
  if (held.length === 0) return "missing: the data dir is not initialized";
  return `missing: ${historyWithoutGenesis(held)} (put back the one it was created with)`;
}
