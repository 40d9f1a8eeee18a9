/**
 * `swoosh serve` on a disk that is full: one line naming the data dir and
 * saying the disk is full (exit 1), and nothing half-written left behind. A
 * new data dir on a nearly full disk (where LMDB would die of SIGBUS mapping
 * its files) is refused before anything is written.
 */
import assert from "node:assert/strict";
import { mkdir, readdir } from "node:fs/promises";
import path from "node:path";
import { describe, it } from "node:test";
import { startupError } from "../../src/cli/commands/serve.ts";
import { CliError, EXIT_RUNTIME_FAILURE } from "../../src/cli/exit-codes.ts";
import { openSwoosh } from "../../src/index.ts";
import { runCli } from "../e2e/processes.ts";
import { canMountTmpfs, mountTmpfs } from "../support/tmpfs.ts";

describe("swoosh serve on a full disk", () => {
  it("says the disk is full, naming the data dir", () => {
    const enospc = Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC", syscall: "write" });
    const refused = startupError(enospc, { dataDir: "/srv/swoosh", host: "127.0.0.1", port: 80 });
    assert.ok(refused instanceof CliError);
    assert.equal(refused.exitCode, EXIT_RUNTIME_FAILURE);
    assert.match(refused.message, /^data dir \/srv\/swoosh cannot be written: the disk is full \(ENOSPC/);
  });

  it("on an initialized data dir with no byte free: exit 1 with that message, and no lock file left half-written", { skip: !canMountTmpfs && "needs root to mount a tmpfs" }, async () => {
    // Large enough for a new data dir, then shrunk.
    const tmpfs = await mountTmpfs("80m");
    try {
      const dataDir = path.join(tmpfs.dir, "data");
      // Initialized while there is room (genesis, WAL, snapshots dir); then the disk fills up.
      const engine = await openSwoosh({ dataDir, snapshotEvery: 0, onFatal: () => undefined });
      await engine.close({ snapshot: false });
      await tmpfs.resize("1m");
      await tmpfs.fillTo(0);
      const run = await runCli(["serve", "--port", "0", "--host", "127.0.0.1", "--data-dir", dataDir]);
      assert.equal(run.status, EXIT_RUNTIME_FAILURE, run.stderr);
      assert.match(run.stderr, new RegExp(`data dir ${dataDir} cannot be written: the disk is full`));
      assert.deepEqual((await readdir(dataDir)).filter((name) => name.startsWith("LOCK")), [], "no LOCK or LOCK.<pid>.new left");
    } finally {
      await tmpfs.cleanup();
    }
  });

  it("refuses a new data dir on a nearly full disk, naming it and the free space, having written nothing", { skip: !canMountTmpfs && "needs root to mount a tmpfs" }, async () => {
    const tmpfs = await mountTmpfs("1m");
    try {
      // Where LMDB used to die of SIGBUS or SIGSEGV (exit 135/139) with no message.
      await tmpfs.fillTo(12 * 1024);
      const dataDir = path.join(tmpfs.dir, "new");
      await mkdir(dataDir);
      const run = await runCli(["serve", "--port", "0", "--host", "127.0.0.1", "--data-dir", dataDir]);
      assert.equal(run.signal, null, run.stderr);
      assert.equal(run.status, EXIT_RUNTIME_FAILURE, run.stderr);
      assert.match(run.stderr, new RegExp(`^swoosh: data dir ${dataDir} is not created: its file system has \\d+\\.\\d KiB free, and a new data dir needs at least 64\\.0 MiB; `, "m"));
      assert.equal(run.stderr.split("\n").filter((line) => line.startsWith("swoosh:")).length, 1, `one line: ${run.stderr}`);
      assert.deepEqual(await readdir(dataDir), [], "nothing written in the data dir");
    } finally {
      await tmpfs.cleanup();
    }
  });
});
