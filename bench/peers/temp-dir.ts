/**
 * Temporary data directories for peers, always removed afterwards, on the
 * same file system (os.tmpdir()) for every peer so that fsync costs compare.
 * A directory still registered when the process exits (a watchdog fired, an
 * exception escaped) is removed synchronously then, so nothing is left behind.
 */
import { rmSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";

const live = new Set<string>();
let hookInstalled = false;

export interface TempDir {
  readonly path: string;
  remove(): Promise<void>;
}

export async function createTempDir(prefix: string): Promise<TempDir> {
  if (!hookInstalled) {
    hookInstalled = true;
    process.on("exit", () => {
      for (const dir of live) rmSync(dir, { recursive: true, force: true });
    });
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), `${prefix}-`));
  live.add(dir);
  return {
    path: dir,
    remove: async () => {
      await rm(dir, { recursive: true, force: true });
      live.delete(dir);
    },
  };
}
