/**
 * A small tmpfs mounted on a fresh temp dir (root only), for tests of a disk
 * that fills up: `fillTo` leaves a given number of bytes free. Unmounted and
 * removed by `cleanup`.
 */
import { execFileSync } from "node:child_process";
import { mkdtemp, open, rm, statfs } from "node:fs/promises";
import os from "node:os";
import path from "node:path";

export interface Tmpfs {
  readonly dir: string;
  /** Writes a filler file until the file system has at most `bytesFree` free. */
  fillTo(bytesFree: number): Promise<void>;
  freeBytes(): Promise<number>;
  /** Remounts it at `size` in place (its files stay). */
  resize(size: string): Promise<void>;
  cleanup(): Promise<void>;
}

/** Whether this process may mount a tmpfs (tests needing one skip otherwise). */
export const canMountTmpfs = process.platform === "linux" && process.getuid?.() === 0;

export async function mountTmpfs(size = "1m"): Promise<Tmpfs> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "swoosh-tmpfs-"));
  execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir]);
  const freeBytes = async () => {
    const figures = await statfs(dir);
    return figures.bavail * figures.bsize;
  };
  return {
    dir,
    freeBytes,
    async fillTo(bytesFree) {
      const filler = await open(path.join(dir, `filler-${Date.now()}`), "w");
      try {
        const block = Buffer.alloc(4096, 1);
        while ((await freeBytes()) > bytesFree) {
          const chunk = Math.min(block.length, (await freeBytes()) - bytesFree);
          try {
            await filler.write(block, 0, chunk);
          } catch (error) {
            if ((error as NodeJS.ErrnoException).code === "ENOSPC") break;
            throw error;
          }
        }
      } finally {
        await filler.close();
      }
    },
    async resize(newSize) {
      execFileSync("mount", ["-o", `remount,size=${newSize}`, dir]);
    },
    async cleanup() {
      execFileSync("umount", [dir]);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
