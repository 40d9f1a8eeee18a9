/**
 * Opening a data directory (SPEC §4, §8):
 *
 *     DATA_DIR/genesis.json        the genesis document this directory was initialized with
 *     DATA_DIR/wal/                the LMDB environment holding the hash-chained WAL
 *     DATA_DIR/snapshots/          snapshot-<index, 20 digits>.json, newest K kept
 *
 * The genesis file is written first (atomically, directory fsynced after the
 * rename), so a directory with a WAL but no genesis is never produced by
 * Swoosh and is refused as corrupt.
 */
import { statfs } from "node:fs/promises";
import path from "node:path";
import { SwooshError } from "../core/errors.ts";
import { canonicalJSON } from "../core/json.ts";
import type { JsonObject } from "../core/json.ts";
import type { StateMachine } from "../core/state-machine.ts";
import { removeTempFiles, writeFileAtomic } from "../storage/atomic-file.ts";
import { LogFileDamagedError } from "../storage/errors.ts";
import { LmdbCommandLog } from "../storage/lmdb-log.ts";
import { NodeFileSystem } from "../storage/node-fs.ts";
import { FileSnapshotStore } from "../storage/snapshot-store.ts";
import type { CommandLog, FileSystem, SnapshotStore } from "../storage/types.ts";
import { Engine } from "./engine.ts";
import { isLockFileName, lockDataDir } from "./dir-lock.ts";
import type { DirLock } from "./dir-lock.ts";
import { DataDirNotDirectoryError, DiskSpaceError, RecoveryError, walOpenProblem } from "./errors.ts";
import type { RecoveryProblem } from "./errors.ts";
import { checkGenesis, sameGenesis } from "./genesis.ts";
import type { GenesisDocument } from "./genesis.ts";
import { recover } from "./recovery.ts";
import type { PreloadedSnapshot } from "./recovery.ts";
import { resolveSettings } from "./settings.ts";
import type { EngineSettingsInput } from "./settings.ts";

export interface OpenEngineOptions<Model> extends EngineSettingsInput {
  readonly dataDir: string;
  readonly machine: StateMachine<Model>;
  /** Initializes an empty data dir; on an initialized one it must be the same genesis. */
  readonly genesis?: unknown;
  /** Used for an empty data dir when no `genesis` is given. */
  readonly defaultGenesis?: () => GenesisDocument;
  readonly fs?: FileSystem;
  /** Replaces the LMDB log (tests, other log implementations). */
  readonly log?: CommandLog;
  readonly snapshots?: SnapshotStore;
  readonly onProgress?: (index: number, lastIndex: number) => void;
  /**
   * Stops a recovery under way (an operator's Ctrl-C while a long WAL
   * replays): `openEngine` then rejects with the signal's reason, after
   * closing the log and releasing the lock. Recovery writes nothing, so the
   * data dir is as it was (a genesis written for an empty dir stays).
   */
  readonly signal?: AbortSignal;
}

export interface DataDirLayout {
  readonly genesisPath: string;
  readonly walPath: string;
  readonly snapshotDir: string;
}

export function dataDirLayout(dataDir: string): DataDirLayout {
  return {
    genesisPath: path.join(dataDir, "genesis.json"),
    walPath: path.join(dataDir, "wal"),
    snapshotDir: path.join(dataDir, "snapshots"),
  };
}

/**
 * The genesis a data dir was initialized with, verified; `null` when there is
 * none. A `dataDir` that is a file, or lies under one, is refused here with a
 * `DataDirNotDirectoryError` naming the file: every opener (openEngine,
 * initializeDataDir, serve --await-genesis, verify) looks here first, before
 * anything is written.
 */
export async function readGenesisFile(fs: FileSystem, dataDir: string): Promise<GenesisDocument | null> {
  const { genesisPath } = dataDirLayout(dataDir);
  if (!(await existsInDataDir(fs, dataDir, genesisPath))) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse((await fs.readFile(genesisPath)).toString("utf8"));
  } catch (error) {
    throw new RecoveryError("the genesis file is unreadable", [{ file: genesisPath, detail: (error as Error).message }]);
  }
  try {
    return checkGenesis(parsed);
  } catch (error) {
    const details = error instanceof SwooshError ? (error.details as { expected?: string; actual?: string } | undefined) : undefined;
    throw new RecoveryError("the genesis file does not verify", [
      { file: genesisPath, expectedHash: details?.expected, actualHash: details?.actual, detail: (error as Error).message },
    ]);
  }
}

/** Whether `file`, in `dataDir`, exists; `DataDirNotDirectoryError` when a file stands where the data dir or a directory above it should be. */
async function existsInDataDir(fs: FileSystem, dataDir: string, file: string): Promise<boolean> {
  try {
    return await fs.exists(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOTDIR") throw error;
    throw new DataDirNotDirectoryError(dataDir, await deepestExisting(fs, dataDir));
  }
}

/** The deepest of `dir` and the directories above it that exists: under a path that is a file, nothing does, so that is the file. */
async function deepestExisting(fs: FileSystem, dir: string): Promise<string> {
  let candidate = dir;
  while (!(await existsOrUnderFile(fs, candidate)) && path.dirname(candidate) !== candidate) candidate = path.dirname(candidate);
  return candidate;
}

/** `fs.exists`, with a path under a file (ENOTDIR) as not existing. */
async function existsOrUnderFile(fs: FileSystem, target: string): Promise<boolean> {
  try {
    return await fs.exists(target);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOTDIR") return false;
    throw error;
  }
}

/**
 * Binds `dataDir` to `genesis` (SPEC §4): writes it when the dir is empty,
 * accepts the same genesis again, refuses another with `already_initialized`
 * and a bad hash with `genesis_hash_mismatch`. Returns whether it wrote.
 *
 * `beforeWrite` runs once everything is checked and before anything is
 * written: `openEngine` takes the data dir's lock there, so that of two
 * processes initializing one empty dir at once only one writes genesis.json
 * (the other is refused at the lock). The file is read again after it, since
 * another initializer may have written it meanwhile.
 */
export async function initializeDataDir(
  fs: FileSystem,
  dataDir: string,
  input: unknown,
  checkState?: (state: JsonObject) => void,
  beforeWrite?: () => Promise<void>,
): Promise<{ genesis: GenesisDocument; created: boolean }> {
  const genesis = checkGenesis(input);
  const existing = await readGenesisFile(fs, dataDir);
  if (existing !== null) return { genesis: sameOrRefused(existing, genesis, dataDir), created: false };
  const layout = dataDirLayout(dataDir);
  await refuseDataWithoutGenesis(fs, layout);
  // Before anything is written: a dir bound to a state no engine can load would never open again.
  checkState?.(genesis.state);
  if (fs instanceof NodeFileSystem) await refuseNearlyFullDisk(fs, dataDir);
  if (beforeWrite !== undefined) {
    await beforeWrite();
    const written = await readGenesisFile(fs, dataDir);
    if (written !== null) return { genesis: sameOrRefused(written, genesis, dataDir), created: false };
  }
  await mkdirDurable(fs, dataDir);
  await writeFileAtomic(fs, layout.genesisPath, [canonicalJSON(genesis) + "\n"]);
  return { genesis, created: true };
}

/**
 * Free space a new data dir's file system must have. LMDB maps its lock and
 * data files sparse and first touches their pages through the map: on a disk
 * that cannot allocate such a page the process dies of SIGBUS or SIGSEGV,
 * with no message, leaving a half-made dir (measured: 8–16 KiB free). A
 * server also needs room at once for its WAL and first snapshots; 64 MiB
 * covers both with a wide margin, and is nothing on any disk meant to hold one.
 */
export const NEW_DATA_DIR_FREE_BYTES_MIN = 64 * 1024 * 1024;

/** Refuses to create a data dir on a file system with less than NEW_DATA_DIR_FREE_BYTES_MIN free, before anything is written. */
async function refuseNearlyFullDisk(fs: FileSystem, dataDir: string): Promise<void> {
  // The data dir may not exist yet: its file system is the one of the deepest directory above it that does.
  const figures = await statfs(await deepestExisting(fs, dataDir));
  // bavail, not bfree: what an unprivileged writer may still use.
  const freeBytes = figures.bavail * figures.bsize;
  if (freeBytes < NEW_DATA_DIR_FREE_BYTES_MIN) throw new DiskSpaceError(dataDir, freeBytes, NEW_DATA_DIR_FREE_BYTES_MIN);
}

/** The data dir's genesis `existing` when `genesis` is the same one; `already_initialized` otherwise. */
function sameOrRefused(existing: GenesisDocument, genesis: GenesisDocument, dataDir: string): GenesisDocument {
  if (sameGenesis(existing, genesis)) return existing;
  throw new SwooshError("already_initialized", `data dir ${dataDir} was initialized with cluster ${JSON.stringify(existing.clusterId)} (state hash ${existing.stateHash})`, {
    clusterId: existing.clusterId,
    stateHash: existing.stateHash,
  });
}

/** The machine's own check of a genesis state (restoring it), as a `bad_request` naming what is wrong. */
function stateCheckOf<Model>(machine: StateMachine<Model>): (state: JsonObject) => void {
  return (state) => {
    try {
      machine.restore(state);
    } catch (error) {
      throw new SwooshError("bad_request", `genesis.state is not a state this server can run: ${error instanceof Error ? error.message : String(error)}`, { field: "state" });
    }
  };
}

/** mkdir -p, then fsync the parent so the new directory's entry survives a power loss. */
async function mkdirDurable(fs: FileSystem, dir: string): Promise<void> {
  await fs.mkdirp(dir);
  await fs.syncDir(path.dirname(path.resolve(dir)));
}

/** Starts loading the newest snapshot, if any; a failure surfaces only if recovery awaits it (and then names the file). */
async function preloadNewest(snapshots: SnapshotStore): Promise<PreloadedSnapshot | null> {
  const [newest] = await snapshots.list();
  if (newest === undefined) return null;
  const doc = snapshots.load(newest);
  doc.catch(() => undefined);
  return { index: newest, doc };
}

/**
 * A genesis is only written into an empty data dir (SPEC §4): one that holds
 * a WAL or snapshots but no genesis.json lost it, and a new genesis would
 * bury the evidence (every snapshot then "of another cluster", a restored WAL
 * refused). Refused before anything is written; DURABILITY.md says to put
 * the original file back.
 */
async function refuseDataWithoutGenesis(fs: FileSystem, layout: DataDirLayout): Promise<void> {
  const held: string[] = [];
  if (await fs.exists(layout.walPath)) held.push("a WAL");
  // A LOCK there is not history: a snapshots dir shared through a symlink holds the lock of the server using it (dir-lock.ts), refused at the lock.
  if ((await fs.exists(layout.snapshotDir)) && (await fs.readdir(layout.snapshotDir)).some((name) => !isLockFileName(name))) held.push("snapshots");
  if (held.length === 0) return;
  throw new RecoveryError(historyWithoutGenesis(held), [{ file: layout.genesisPath, detail: "missing" }]);
}

/** What serve and verify say of a data dir that holds `held` ("a WAL", "snapshots") but lost its genesis.json (DURABILITY.md's troubleshooting matches it). */
export function historyWithoutGenesis(held: readonly string[]): string {
  return `the data dir has ${held.join(" and ")} but no genesis file`;
}

/**
 * Every option `openEngine` takes, listed once (the type holds the list to
 * OpenEngineOptions: a name missing or extra does not compile), so that a
 * misspelt one (`snapshotEvry`) is refused instead of silently left at its
 * default, as the HTTP API refuses an unknown field.
 */
const OPEN_OPTION_NAMES: { readonly [Name in keyof Required<OpenEngineOptions<unknown>>]: true } = {
  dataDir: true,
  machine: true,
  genesis: true,
  defaultGenesis: true,
  fs: true,
  log: true,
  snapshots: true,
  onProgress: true,
  signal: true,
  clock: true,
  nodeId: true,
  maxDriftMs: true,
  snapshotEvery: true,
  snapshotsKept: true,
  batchSizeMax: true,
  appendsInFlightMax: true,
  outcomeRetention: true,
  timeTravelMachine: true,
  onFatal: true,
  onSnapshotError: true,
  onListenerError: true,
  onSkippedSnapshot: true,
  onOldWalDamage: true,
  heapFigures: true,
};

function refuseUnknownOptions(options: object): void {
  const unknown = Object.keys(options).filter((name) => !Object.hasOwn(OPEN_OPTION_NAMES, name));
  if (unknown.length > 0) throw new TypeError(`unknown option ${unknown.map((name) => JSON.stringify(name)).join(", ")}`);
}

/** Opens (recovering) or initializes a data directory and returns a running engine. */
export async function openEngine<Model>(given: OpenEngineOptions<Model>): Promise<Engine<Model>> {
  refuseUnknownOptions(given);
  const settings = resolveSettings(given);
  if (typeof given.dataDir !== "string" || given.dataDir === "") throw new RangeError("dataDir must be a non-empty path");
  // Resolved once: every path below stays the same directory if the process changes its working directory later.
  const options = { ...given, dataDir: path.resolve(given.dataDir) };
  const fs = options.fs ?? new NodeFileSystem();
  const layout = dataDirLayout(options.dataDir);

  // The lock lives on the real disk; a simulated file system (tests) has no
  // other process to exclude. It is taken before genesis.json is written (an
  // initializer writes it only while holding the lock), or once it is known
  // to be there. The dir it is taken in is made durable by the genesis write
  // that follows (initializeDataDir), or already was: no fsync here.
  const held: { lock: DirLock | null } = { lock: null };
  const takeLock = async (): Promise<void> => {
    if (held.lock !== null || !(fs instanceof NodeFileSystem)) return;
    await fs.mkdirp(options.dataDir);
    held.lock = await lockDataDir(options.dataDir);
  };
  let genesis: GenesisDocument;
  let snapshots: SnapshotStore;
  let log: CommandLog;
  let preloaded: PreloadedSnapshot | null;
  try {
    // A stop asked for before anything is written leaves the dir untouched (no default genesis in an empty dir).
    options.signal?.throwIfAborted();
    const found = await readGenesisFile(fs, options.dataDir);
    const given = options.genesis ?? (found === null ? options.defaultGenesis?.() : undefined);
    if (given !== undefined) {
      genesis = (await initializeDataDir(fs, options.dataDir, given, stateCheckOf(options.machine), takeLock)).genesis;
    } else if (found !== null) {
      genesis = found;
    } else {
      throw new SwooshError("bad_request", `data dir ${options.dataDir} is not initialized and no genesis was given`);
    }
    await mkdirDurable(fs, layout.snapshotDir);
    options.signal?.throwIfAborted();
    await takeLock();
    snapshots = options.snapshots ?? new FileSnapshotStore(fs, layout.snapshotDir, { clusterId: genesis.clusterId });
    // Holding the lock, this process is the only snapshot and genesis writer: a
    // temp file found now was left by a writer that died mid-write (the genesis
    // above was written whole, or was there already).
    await removeTempFiles(fs, layout.snapshotDir);
    await removeTempFiles(fs, options.dataDir, path.basename(layout.genesisPath));
    // The newest snapshot is read and verified while the WAL's file is read in
    // a child process (lmdb-probe.ts), on the other core: recovery usually
    // starts from it, and on a large state the two take about as long.
    const [opened, preload] = await Promise.allSettled([options.log ?? LmdbCommandLog.open(layout.walPath), preloadNewest(snapshots)]);
    if (opened.status === "rejected") throw opened.reason;
    log = opened.value;
    if (preload.status === "rejected") {
      if (options.log === undefined) await log.close();
      throw preload.reason;
    }
    preloaded = preload.value;
  } catch (error) {
    await held.lock?.release();
    throw walOpenFailure(error);
  }
  try {
    const recovered = await recover({
      machine: options.machine,
      genesis,
      log,
      snapshots,
      outcomeRetention: settings.outcomeRetention,
      walPath: layout.walPath,
      genesisPath: layout.genesisPath,
      snapshotDir: layout.snapshotDir,
      onProgress: options.onProgress,
      onSkippedSnapshot: settings.onSkippedSnapshot,
      preloaded,
      signal: options.signal,
    });
    // Recovery read each record once the WAL's probe child had read past it
    // (lmdb-probe.ts); the engine starts only on a file read back whole.
    if (log instanceof LmdbCommandLog) await log.probed();
    const oldDamage = chainBreakBehind(log, recovered.snapshotIndex, layout.walPath);
    if (oldDamage !== null) settings.onOldWalDamage(oldDamage);
    return new Engine(options.machine, genesis, log, snapshots, settings, recovered, held.lock);
  } catch (error) {
    await log.close().catch(() => undefined);
    await held.lock?.release();
    // The probe child finds damage as late as it lies in the file: reported as one found before the open returned.
    throw error instanceof LogFileDamagedError ? walOpenFailure(error) : error;
  }
}

/**
 * The first WAL entry at or before `startedFrom` (the snapshot recovery
 * started from) whose link to the entry before it fails, as the log's other
 * reader found it while checking the chain (`chainCheckedThrough`); null when
 * the chain holds there or nothing is known. Entries after `startedFrom` need
 * no look: recovery replayed them and would have refused a break.
 */
function chainBreakBehind(log: CommandLog, startedFrom: number, walPath: string): RecoveryProblem | null {
  const checkedThrough = log.chainCheckedThrough?.();
  const first = log.firstIndex();
  if (checkedThrough === undefined || log.lastIndex() <= first) return null;
  // Nothing checked means the first link already failed: the entry after the log's first.
  const broken = Math.max(checkedThrough, first) + 1;
  if (broken > Math.min(startedFrom, log.lastIndex())) return null;
  return {
    file: walPath,
    index: broken,
    detail: `entry ${broken} does not follow the entry before it (its hash, or a missing entry): recovery started from snapshot ${startedFrom} and the state is verified, but reading the WAL over entry ${broken} (GET /log, time travel, swoosh verify) fails`,
  };
}

/** A failure to open the WAL because of what is on disk as the RecoveryError `serve` reports; any other error as it is. */
function walOpenFailure(error: unknown): unknown {
  const problem = walOpenProblem(error);
  return problem === null ? error : new RecoveryError("the WAL does not open", [problem]);
}
