/**
 * One writer per data directory. LMDB lets several processes open the WAL, and
 * two engines appending to one log would fork the chain (the log's
 * compare-and-set would poison one of them). `DATA_DIR/LOCK` holds the pid of
 * the engine that owns the directory: a live other process — or another open
 * engine in this process — refuses the open; a dead pid (after SIGKILL or a
 * power loss) is taken over, so a crashed server restarts without help.
 *
 * Race-free between processes that start at once: the LOCK file is only ever
 * created by link(2) of a complete file, so of several creators one wins, and
 * no one reads a LOCK that is there but empty. A stale LOCK (naming
 * pid X, dead) is removed only by the taker that created `LOCK.takeover-X`,
 * created the same way, and only after reading X in LOCK once more while holding
 * it — nothing else removes a LOCK naming X — then everyone competes for a
 * fresh create. A taker that dies holding `LOCK.takeover-X` leaves it
 * to be removed by the next one (its pid is dead too).
 */
import { link, open, readFile, realpath, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { SwooshError } from "../core/errors.ts";

const heldInThisProcess = new Set<string>();

/** Rounds of trying to take the LOCK before giving up (another taker's takeover in progress costs a few). */
const LOCK_ROUNDS_MAX = 200;
/** Pause between rounds while another process takes over a stale LOCK. */
const TAKEOVER_WAIT_MS = 5;
/** How long a LOCK found empty may be its creator's, still writing its pid (without hard links). */
const EMPTY_LOCK_WAIT_MS = 100;

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else; still alive.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

function errnoOf(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException).code;
}

/** The pid a lock file names; null when the file is gone, 0 when it names none. */
async function holderOf(file: string): Promise<number | null> {
  try {
    const pid = Number.parseInt(await readFile(file, "utf8"), 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : 0;
  } catch (error) {
    if (errnoOf(error) === "ENOENT") return null;
    throw error;
  }
}

/**
 * Creates `file` holding this pid, only if no file of that name exists; false
 * when one does. The pid is written to a file of this process's own first and
 * then linked in (link(2) fails if the name exists): the file never appears
 * empty, which a contender would read as no owner and take over.
 */
async function createExclusive(file: string): Promise<boolean> {
  const own = `${file}.${process.pid}.new`;
  try {
    // Inside the try: a write that fails (a full disk) leaves an empty or partial file, removed below.
    await writeFile(own, `${process.pid}\n`);
    await link(own, file);
    return true;
  } catch (error) {
    const code = errnoOf(error);
    if (code === "EEXIST") return false;
    // A file system without hard links (some FUSE and network ones): create with O_EXCL and write after.
    if (code === "EPERM" || code === "ENOTSUP" || code === "ENOSYS" || code === "EOPNOTSUPP") return createExclusiveThenWrite(file);
    throw error;
  } finally {
    await rm(own, { force: true });
  }
}

/** O_EXCL create, then the pid: the file is empty for a moment, which `holderOf` callers wait out (EMPTY_LOCK_WAIT_MS). */
async function createExclusiveThenWrite(file: string): Promise<boolean> {
  let handle;
  try {
    handle = await open(file, "wx");
  } catch (error) {
    if (errnoOf(error) === "EEXIST") return false;
    throw error;
  }
  try {
    await handle.writeFile(`${process.pid}\n`);
  } finally {
    await handle.close();
  }
  return true;
}

export interface DirLock {
  release(): Promise<void>;
}

/** The data dir's subdirectories a symlink may put elsewhere; each is written by the one server holding the data dir. */
const SHARABLE_SUBDIRS = ["snapshots", "wal"] as const;

/** What a lock refusal says: of another process holding it, and of this process holding it already. */
interface LockWording {
  inUse(pid: number, lockPath: string): string;
  inThisProcess(): string;
}

/** Whether `name`, in a directory the lock may be taken in, is the lock's own (LOCK, its temp and takeover files): not data. */
export function isLockFileName(name: string): boolean {
  return name === "LOCK" || name.startsWith("LOCK.");
}

/**
 * Locks the data dir and, when its `snapshots` or `wal` is a symlink to a
 * directory elsewhere, that directory too: two data dirs linking one snapshots
 * dir would otherwise each run a server writing snapshots of the same names
 * into it, one replacing the other's, and truncate their WALs against
 * snapshots that are no longer theirs. All or none are held; released together.
 */
export async function lockDataDir(dataDir: string): Promise<DirLock> {
  // The real path: the same directory through a symlink is the same lock in this process too.
  const realDataDir = await realpath(dataDir);
  const held: DirLock[] = [];
  try {
    held.push(await lockIn(realDataDir, dataDirWording(dataDir)));
    for (const subdir of SHARABLE_SUBDIRS) {
      const elsewhere = await resolvedElsewhere(realDataDir, subdir);
      if (elsewhere !== null) held.push(await lockIn(elsewhere, sharedDirWording(path.join(dataDir, subdir), elsewhere)));
    }
  } catch (error) {
    await releaseAll(held);
    throw error;
  }
  return { release: () => releaseAll(held) };
}

async function releaseAll(locks: DirLock[]): Promise<void> {
  for (const lock of locks.reverse()) await lock.release();
}

/** The real directory `realDataDir/subdir` is, when a symlink puts it anywhere but there; null when it is there, or missing, or not a directory (opening reports those). */
async function resolvedElsewhere(realDataDir: string, subdir: string): Promise<string | null> {
  const inPlace = path.join(realDataDir, subdir);
  let real: string;
  try {
    real = await realpath(inPlace);
    if (!(await stat(real)).isDirectory()) return null;
  } catch (error) {
    if (errnoOf(error) === "ENOENT" || errnoOf(error) === "ENOTDIR") return null;
    throw error;
  }
  return real === inPlace ? null : real;
}

function dataDirWording(dataDir: string): LockWording {
  return {
    // A pid can be reused after a crash: say what to do if the live process is not the one that locked the dir.
    inUse: (pid, lockPath) =>
      `data dir ${dataDir} is in use by process ${pid} (${lockPath}); if process ${pid} is not a swoosh server on this dir, the LOCK is stale: remove it`,
    inThisProcess: () => `data dir ${dataDir} is already open in this process`,
  };
}

/** `linked` (DATA/snapshots or DATA/wal) resolves to `shared`: another data dir's server may be linked to it too. */
function sharedDirWording(linked: string, shared: string): LockWording {
  const what = `${linked} links to ${shared}, which another data dir shares`;
  return {
    inUse: (pid, lockPath) =>
      `${what}: it is in use by process ${pid} (${lockPath}); give each data dir its own ${path.basename(linked)} dir (if process ${pid} is not a swoosh server, the LOCK is stale: remove it)`,
    inThisProcess: () => `${what}: it is already in use by another engine in this process; give each data dir its own ${path.basename(linked)} dir`,
  };
}

/** Takes `dir/LOCK` (dir a real path), or refuses with `wording`'s message. */
async function lockIn(dir: string, wording: LockWording): Promise<DirLock> {
  const lockPath = path.join(dir, "LOCK");
  if (heldInThisProcess.has(lockPath)) throw new SwooshError("unavailable", wording.inThisProcess());
  const inUse = (pid: number) => new SwooshError("unavailable", wording.inUse(pid, lockPath), { pid });
  heldInThisProcess.add(lockPath);
  try {
    for (let round = 0; round < LOCK_ROUNDS_MAX; round++) {
      if (await createExclusive(lockPath)) return heldLock(lockPath);
      let holder = await holderOf(lockPath);
      if (holder === 0) {
        // Empty or unreadable: its creator may be writing it (no hard links here); stale only if it stays so.
        await new Promise((resolve) => setTimeout(resolve, EMPTY_LOCK_WAIT_MS));
        holder = await holderOf(lockPath);
      }
      if (holder === null) continue; // released meanwhile
      if (holder !== 0 && holder !== process.pid && isAlive(holder)) throw inUse(holder);
      // Stale (a dead pid; or this pid, from a run before a restart).
      const takeover = `${lockPath}.takeover-${holder}`;
      if (!(await createExclusive(takeover))) {
        const taker = await holderOf(takeover);
        // Its taker died taking over (or was this pid in a run before a restart: this process holds none now).
        if (taker !== null && (taker === process.pid || !isAlive(taker))) await rm(takeover, { force: true });
        await new Promise((resolve) => setTimeout(resolve, TAKEOVER_WAIT_MS));
        continue;
      }
      try {
        // Still X, read while holding the takeover: no one else may change it now.
        if ((await holderOf(lockPath)) === holder) await rm(lockPath, { force: true });
      } finally {
        await rm(takeover, { force: true });
      }
    }
    throw new SwooshError("unavailable", `could not take ${lockPath} (other processes kept taking it); retry`);
  } catch (error) {
    heldInThisProcess.delete(lockPath);
    throw error;
  }
}

function heldLock(lockPath: string): DirLock {
  let released = false;
  return {
    async release() {
      if (released) return;
      released = true;
      heldInThisProcess.delete(lockPath);
      // Only our own: a LOCK naming another pid is not ours to remove.
      if ((await holderOf(lockPath)) === process.pid) await rm(lockPath, { force: true });
    },
  };
}
