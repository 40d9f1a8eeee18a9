/**
 * One writer per data directory. LMDB lets several processes open the WAL, and
 * two engines appending to one log would fork the chain (the log's
 * compare-and-set would poison one of them). `DATA_DIR/LOCK` holds the pid of
 * the engine that owns the directory: a live other process — or another open
 * engine in this process — refuses the open; a dead pid (after SIGKILL or a
 * power loss) is taken over, so a crashed server restarts without help.
 */
import { readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { SwooshError } from "../core/errors.ts";

const heldInThisProcess = new Set<string>();

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else; still alive.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

export interface DirLock {
  release(): Promise<void>;
}

export async function lockDataDir(dataDir: string): Promise<DirLock> {
  const lockPath = path.join(path.resolve(dataDir), "LOCK");
  if (heldInThisProcess.has(lockPath)) {
    throw new SwooshError("unavailable", `data dir ${dataDir} is already open in this process`);
  }
  let holder: number | null = null;
  try {
    holder = Number.parseInt(await readFile(lockPath, "utf8"), 10);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  if (holder !== null && Number.isSafeInteger(holder) && holder > 0 && holder !== process.pid && isAlive(holder)) {
    throw new SwooshError("unavailable", `data dir ${dataDir} is in use by process ${holder} (${lockPath})`, { pid: holder });
  }
  await writeFile(lockPath, `${process.pid}\n`);
  heldInThisProcess.add(lockPath);
  let released = false;
  return {
    async release() {
      if (released) return;
      released = true;
      heldInThisProcess.delete(lockPath);
      await rm(lockPath, { force: true });
    },
  };
}
