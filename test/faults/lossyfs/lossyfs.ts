/**
 * Test-side driver of lossyfs (lossyfs.c, POWERLOSS.md): builds the daemon
 * once per source version, mounts a backing directory, powers it off, reads its
 * counters, and unmounts. Every mount this module makes is unmounted again,
 * on the normal path, on failure, and (synchronously) at process exit.
 */
import { spawn, spawnSync } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";

const SOURCE = fileURLToPath(new URL("./lossyfs.c", import.meta.url));
/** Where built binaries are kept between runs: the checkout's own cache, not the machine's temp dir (tests leave nothing there). */
const BUILD_CACHE = fileURLToPath(new URL("../../../node_modules/.cache/", import.meta.url));
export const CTL_NAME = ".lossyfs-ctl";
const MOUNT_TIMEOUT_MS = 10_000;
const UNMOUNT_TIMEOUT_MS = 10_000;

export type PowerOffMode = "drop" | "prefix" | "subset";
/** Operations a power off can be armed on: it happens at the K-th next one (see `arm`). */
export type PowerOffEvent = "write" | "fsync" | "fsyncdir";

/** The daemon's counters (see `stats_text` in lossyfs.c). */
export type LossyStats = Record<string, number>;

/** Mount points made by this process and not unmounted yet. */
const live = new Set<string>();
process.on("exit", () => {
  for (const mountpoint of live) forceUnmountSync(mountpoint);
});

function forceUnmountSync(mountpoint: string): void {
  if (spawnSync("fusermount3", ["-u", "-z", mountpoint], { stdio: "ignore", timeout: 5000 }).status !== 0) {
    spawnSync("umount", ["-l", mountpoint], { stdio: "ignore", timeout: 5000 });
  }
}

function isMounted(mountpoint: string): boolean {
  try {
    const info = readFileSync("/proc/self/mountinfo", "utf8");
    // Field 5 of mountinfo is the mount point (spaces escaped as \040).
    return info.split("\n").some((line) => line.split(" ")[4] === mountpoint.replace(/ /g, "\\040"));
  } catch {
    return false;
  }
}

/**
 * Builds lossyfs (cached in node_modules/.cache by the source's hash), or returns why
 * it cannot run here: missing gcc, pkg-config, fuse3 headers, fusermount3 or /dev/fuse.
 */
export async function buildLossyfs(): Promise<{ binary: string } | { skip: string }> {
  const install = "apt-get install -y fuse3 libfuse3-dev pkg-config gcc";
  if (!existsSync("/dev/fuse")) return { skip: "/dev/fuse is missing: FUSE is not available here" };
  if (spawnSync("fusermount3", ["-V"]).status !== 0) return { skip: `fusermount3 is missing (${install})` };
  const flags = spawnSync("pkg-config", ["fuse3", "--cflags", "--libs"], { encoding: "utf8" });
  if (flags.status !== 0) return { skip: `pkg-config fuse3 failed, libfuse3-dev or pkg-config is missing (${install})` };
  const source = await readFile(SOURCE);
  const hash = createHash("sha256").update(source).digest("hex").slice(0, 16);
  const dir = path.join(BUILD_CACHE, `swoosh-lossyfs-${hash}`);
  const binary = path.join(dir, "lossyfs");
  if (existsSync(binary)) return { binary };
  await mkdir(dir, { recursive: true });
  const temp = `${binary}.tmp-${process.pid}`;
  const build = spawnSync("gcc", ["-O2", "-Wall", SOURCE, ...flags.stdout.trim().split(/\s+/), "-o", temp], { encoding: "utf8", timeout: 120_000 });
  if (build.error) return { skip: `gcc is missing (${install}): ${build.error.message}` };
  if (build.status !== 0) throw new Error(`building lossyfs failed:\n${build.stderr}`);
  await rename(temp, binary); // atomic: a concurrent build of the same source is harmless
  return { binary };
}

export class LossyMount {
  private stderrText = "";
  private exited: Promise<number | null>;
  private exitCode: number | null | undefined;

  private constructor(
    readonly mountpoint: string,
    readonly backing: string,
    private readonly daemon: ChildProcess,
  ) {
    this.exited = new Promise((resolve) => {
      daemon.on("exit", (code) => {
        this.exitCode = code;
        resolve(code);
      });
    });
    daemon.stderr?.setEncoding("utf8");
    daemon.stderr?.on("data", (chunk: string) => {
      // Keep the tail only: the counters and the last messages.
      this.stderrText = (this.stderrText + chunk).slice(-8000);
    });
  }

  /** Mounts `backing` at `mountpoint` (both directories are created). */
  static async mount(binary: string, backing: string, mountpoint: string): Promise<LossyMount> {
    await mkdir(backing, { recursive: true });
    await mkdir(mountpoint, { recursive: true });
    const daemon = spawn(binary, [backing, mountpoint], { stdio: ["ignore", "ignore", "pipe"] });
    const mount = new LossyMount(path.resolve(mountpoint), path.resolve(backing), daemon);
    live.add(mount.mountpoint);
    const deadline = Date.now() + MOUNT_TIMEOUT_MS;
    try {
      while (!(mount.stderrText.includes("lossyfs: mounted") && isMounted(mount.mountpoint) && existsSync(mount.ctlPath))) {
        if (mount.exitCode !== undefined) throw new Error(`lossyfs exited with ${String(mount.exitCode)} before mounting: ${mount.stderrText.trim()}`);
        if (Date.now() > deadline) throw new Error(`lossyfs did not mount within ${MOUNT_TIMEOUT_MS} ms: ${mount.stderrText.trim()}`);
        await sleep(20);
      }
    } catch (error) {
      await mount.unmount().catch(() => undefined);
      throw error;
    }
    return mount;
  }

  get ctlPath(): string {
    return path.join(this.mountpoint, CTL_NAME);
  }

  /** What the daemon wrote to stderr (the tail): messages and, after unmount, its counters. */
  get log(): string {
    return this.stderrText;
  }

  /** Pulls the plug: unsynced data and metadata are gone (or torn, with a seed). I/O fails with EIO from now on. */
  async powerOff(mode: PowerOffMode, seed: number): Promise<void> {
    await writeFile(this.ctlPath, mode === "drop" ? "poweroff" : `poweroff ${mode} ${seed >>> 0}`);
  }

  /**
   * Arms a power off at the `count`-th next `event`: after that write reached
   * the overlay, or before that fsync/fsyncdir does anything (it fails with EIO).
   */
  async arm(event: PowerOffEvent, count: number, mode: PowerOffMode, seed: number): Promise<void> {
    await writeFile(this.ctlPath, `arm ${event} ${count} ${mode} ${seed >>> 0}`);
  }

  /** Waits until the power is off (an armed event happened); false after `timeoutMs`. */
  async waitPoweredOff(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if ((await this.stats()).powered_off === 1) return true;
      await sleep(10);
    }
    return false;
  }

  /** Like sync(2): every overlay reaches the backing files and every metadata op becomes durable. */
  async sync(): Promise<void> {
    await writeFile(this.ctlPath, "sync");
  }

  async stats(): Promise<LossyStats> {
    const text = await readFile(this.ctlPath, "utf8");
    const stats: LossyStats = {};
    for (const line of text.split("\n")) {
      const [name, value] = line.split(" ");
      if (name && value !== undefined) stats[name] = Number(value);
    }
    return stats;
  }

  /**
   * Unmounts (fusermount3 -u, retried while busy; then a lazy unmount) and
   * waits for the daemon to exit (killing it if it does not). Idempotent.
   */
  async unmount(): Promise<void> {
    const deadline = Date.now() + UNMOUNT_TIMEOUT_MS;
    while (isMounted(this.mountpoint) && Date.now() < deadline) {
      if (spawnSync("fusermount3", ["-u", this.mountpoint], { stdio: "ignore", timeout: 5000 }).status === 0) break;
      await sleep(50);
    }
    if (isMounted(this.mountpoint)) forceUnmountSync(this.mountpoint);
    const exited = await Promise.race([this.exited.then(() => true), sleep(UNMOUNT_TIMEOUT_MS).then(() => false)]);
    if (!exited) {
      this.daemon.kill("SIGKILL");
      await this.exited;
    }
    if (isMounted(this.mountpoint)) forceUnmountSync(this.mountpoint);
    live.delete(this.mountpoint);
  }
}

/** Mounts and unmounts once in a scratch dir: a reason to skip if FUSE does not work here, else null. */
export async function probeMount(binary: string): Promise<string | null> {
  const dir = path.join(os.tmpdir(), `swoosh-lossyfs-probe-${process.pid}`);
  try {
    const mount = await LossyMount.mount(binary, path.join(dir, "backing"), path.join(dir, "mnt"));
    await mount.unmount();
    return null;
  } catch (error) {
    return `mounting lossyfs failed: ${(error as Error).message}`;
  } finally {
    await removeUnlessMounted(dir, [path.join(dir, "mnt")]);
  }
}

/** rm -rf `dir`, unless one of `mountpoints` is still mounted (never delete through a live mount). */
export async function removeUnlessMounted(dir: string, mountpoints: readonly string[]): Promise<void> {
  if (mountpoints.some((mountpoint) => isMounted(path.resolve(mountpoint)))) return;
  await rm(dir, { recursive: true, force: true }).catch(() => undefined);
}
