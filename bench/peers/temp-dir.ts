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

/**
 * Something started in a fresh temp dir: `start` brings it up there, and the
 * dir is removed after its own `stop` (or at once if `start` fails).
 */
export async function inTempDir<T extends { stop(): Promise<void> }>(prefix: string, start: (dir: string) => Promise<T>): Promise<T> {
  const dir = await createTempDir(prefix);
  let started: T;
  try {
    started = await start(dir.path);
  } catch (error) {
    await dir.remove();
    throw error;
  }
  return {
    ...started,
    stop: async () => {
      try {
        await started.stop();
      } finally {
        await dir.remove();
      }
    },
  };
}
