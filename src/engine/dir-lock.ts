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
import { link, open, readFile, realpath, rm, writeFile } from "node:fs/promises";
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
  await writeFile(own, `${process.pid}\n`);
  try {
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

export async function lockDataDir(dataDir: string): Promise<DirLock> {
  // The real path: the same directory through a symlink is the same lock in this process too.
  const lockPath = path.join(await realpath(dataDir), "LOCK");
  if (heldInThisProcess.has(lockPath)) {
    throw new SwooshError("unavailable", `data dir ${dataDir} is already open in this process`);
  }
  // A pid can be reused after a crash: say what to do if the live process is not the one that locked the dir.
  const inUse = (pid: number) =>
    new SwooshError("unavailable", `data dir ${dataDir} is in use by process ${pid} (${lockPath}); if process ${pid} is not a swoosh server on this dir, the LOCK is stale: remove it`, { pid });
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
    throw new SwooshError("unavailable", `data dir ${dataDir}: could not take ${lockPath} (other processes kept taking it); retry`);
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
