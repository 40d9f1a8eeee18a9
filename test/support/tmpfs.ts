/**
 * tmpfs mounts for tests of a disk that fills up (root on Linux only):
 * mount, resize and unmount a given dir, or a small tmpfs on a fresh temp dir
 * whose `fillTo` leaves a given number of bytes free.
 */
import { execFile } from "node:child_process";
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

function run(file: string, args: readonly string[]): Promise<{ ok: boolean; output: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: 30_000 }, (error, stdout, stderr) => resolve({ ok: error === null, output: `${stdout}${stderr}`.trim() }));
  });
}

/** Mounts a tmpfs of `size` (e.g. "2m") on `dir`; returns null on success, or why it could not. */
export async function mountTmpfsAt(dir: string, size: string): Promise<string | null> {
  if (process.platform !== "linux") return `tmpfs mounts need Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return "mounting a tmpfs needs root";
  const result = await run("mount", ["-t", "tmpfs", "-o", `size=${size},mode=0700`, "tmpfs", dir]);
  return result.ok ? null : `mount -t tmpfs refused: ${result.output}`;
}

/** Changes a mounted tmpfs' size in place (its files stay). */
export async function resizeTmpfs(dir: string, size: string): Promise<void> {
  const result = await run("mount", ["-o", `remount,size=${size}`, dir]);
  if (!result.ok) throw new Error(`remount ${dir} size=${size}: ${result.output}`);
}

/** Unmounts `dir`, lazily if it is still busy; never throws. */
export async function unmount(dir: string): Promise<void> {
  const result = await run("umount", [dir]);
  if (!result.ok) await run("umount", ["-l", dir]);
}

/** A tmpfs of `size` on a fresh temp dir; throws when it cannot be mounted. */
export async function mountTmpfs(size = "1m"): Promise<Tmpfs> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "swoosh-tmpfs-"));
  const refusal = await mountTmpfsAt(dir, size);
  if (refusal !== null) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(refusal);
  }
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
    resize: (newSize) => resizeTmpfs(dir, newSize),
    async cleanup() {
      await unmount(dir);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
