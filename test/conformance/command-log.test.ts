/**
 * Runs the CommandLog contract suite against every log implementation.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LmdbCommandLog } from "../../src/storage/lmdb-log.ts";
import { MemoryCommandLog, MemoryLogDisk } from "../../src/storage/memory-log.ts";
import type { CommandLog } from "../../src/storage/types.ts";
import { runCommandLogSuite } from "./command-log.suite.ts";

runCommandLogSuite("MemoryCommandLog", {
  async open() {
    const disk = new MemoryLogDisk();
    let current = new MemoryCommandLog(disk);
    return {
      get log(): CommandLog {
        return current;
      },
      async reopen() {
        await current.close();
        current = new MemoryCommandLog(disk);
        return current;
      },
      failNextFlush: () => current.failNextFlush(),
      followersWaiting: () => current.followersWaiting(),
      cleanup: () => current.close(),
    };
  },
});

runCommandLogSuite("LmdbCommandLog", {
  async open() {
    const dir = await mkdtemp(join(tmpdir(), "swoosh-log-conformance-"));
    let failNext = false;
    const options = {
      failpoints: {
        beforeFlush: () => {
          if (!failNext) return;
          failNext = false;
          throw new Error("injected flush failure (EIO)");
        },
      },
    };
    let current = await LmdbCommandLog.open(join(dir, "wal"), options);
    return {
      get log(): CommandLog {
        return current;
      },
      async reopen() {
        await current.close();
        current = await LmdbCommandLog.open(join(dir, "wal"), options);
        return current;
      },
      failNextFlush: () => {
        failNext = true;
      },
      followersWaiting: () => current.followersWaiting(),
      async cleanup() {
        await current.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  },
});
