/**
 * A WAL whose files this process may not use is reported as that, not as a
 * damaged file (which would send an operator to restore a backup over a
 * healthy WAL): `swoosh serve` and `swoosh verify`, run as `nobody` on a data
 * dir `nobody` owns, with one of the WAL's files made read-only or unreadable.
 * Needs root (to run the CLI as another user); skipped otherwise.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmod, chown } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import type { TestContext } from "node:test";
import { openSwoosh } from "../../src/index.ts";
import { tempDirsRemovedAtEnd } from "../support/engine-fixtures.ts";
import { bin, killAll, runProcess } from "./processes.ts";
import type { CliRun } from "./processes.ts";

const NOBODY = { uid: 65534, gid: 65534 };
const AS_NOBODY = ["--reuid=nobody", "--regid=nogroup", "--clear-groups", "env", "HOME=/tmp"];

const newTempDir = tempDirsRemovedAtEnd("swoosh-wal-access-");
after(killAll);

/** Why the CLI cannot be run as nobody here (null when it can). */
function nobodyUnavailable(): string | null {
  if (process.getuid?.() !== 0) return "needs root, to run the CLI as nobody";
  const probe = spawnSync("setpriv", [...AS_NOBODY, process.execPath, "-e", "require('node:fs').accessSync(process.argv[1])", bin], { stdio: "ignore" });
  if (probe.error !== undefined) return `setpriv cannot be run: ${probe.error.message}`;
  if (probe.status !== 0) return `nobody cannot read ${bin} (make the checkout readable: chmod -R a+rX)`;
  return null;
}

/** `swoosh ARGS` run as nobody. */
function runAsNobody(args: readonly string[]): Promise<CliRun> {
  return runProcess("setpriv", [...AS_NOBODY, process.execPath, bin, ...args], { timeoutMs: 30_000 });
}

/** A data dir holding one command (the WAL has a data.mdb and a lock.mdb), given to nobody, its parents open to it. */
async function dataDirOwnedBy(owner: { uid: number; gid: number }): Promise<string> {
  const parent = await newTempDir();
  await chmod(parent, 0o755);
  const dataDir = path.join(parent, "data");
  const engine = await openSwoosh({ dataDir, snapshotEvery: 0 });
  await engine.submit({ type: "task.submit", payload: { taskId: "t1", kind: "k" } });
  await engine.close();
  for (const entry of [dataDir, path.join(dataDir, "genesis.json"), path.join(dataDir, "wal"), path.join(dataDir, "wal", "data.mdb"), path.join(dataDir, "wal", "lock.mdb"), path.join(dataDir, "snapshots")]) {
    await chown(entry, owner.uid, owner.gid);
  }
  return dataDir;
}

describe("a WAL this process may not use", () => {
  let unavailable: string | null = null;
  before(() => {
    unavailable = nobodyUnavailable();
  });
  const skipped = (t: TestContext): boolean => {
    if (unavailable !== null) t.skip(unavailable);
    return unavailable !== null;
  };

  it("swoosh serve with a read-only data.mdb: exit 1 naming the permission, not a damaged WAL", async (t) => {
    if (skipped(t)) return;
    const dataDir = await dataDirOwnedBy(NOBODY);
    await chmod(path.join(dataDir, "wal", "data.mdb"), 0o444);
    const run = await runAsNobody(["serve", "--data-dir", dataDir, "--port", "0", "--host", "127.0.0.1", "--log-level", "warn"]);
    assert.equal(run.status, 1, run.stderr);
    assert.match(run.stderr, /the WAL in \S+\/wal cannot be read and written by this process \(uid 65534\): data\.mdb: permission denied/);
    assert.doesNotMatch(run.stderr, /damaged|failed recovery|LMDB/);
  });

  it("swoosh serve with a read-only lock.mdb: exit 1 naming the permission, not a crash of LMDB", async (t) => {
    if (skipped(t)) return;
    const dataDir = await dataDirOwnedBy(NOBODY);
    await chmod(path.join(dataDir, "wal", "lock.mdb"), 0o444);
    const run = await runAsNobody(["serve", "--data-dir", dataDir, "--port", "0", "--host", "127.0.0.1", "--log-level", "warn"]);
    assert.equal(run.status, 1, run.stderr);
    assert.match(run.stderr, /cannot be read and written by this process \(uid 65534\): lock\.mdb: permission denied/);
    assert.doesNotMatch(run.stderr, /damaged|SIGSEGV|failed recovery/);
  });

  it("swoosh verify with an unreadable data.mdb: the problem names the permission, exit 1", async (t) => {
    if (skipped(t)) return;
    const dataDir = await dataDirOwnedBy(NOBODY);
    await chmod(path.join(dataDir, "wal", "data.mdb"), 0o000);
    const run = await runAsNobody(["verify", "--data-dir", dataDir]);
    assert.equal(run.status, 1, run.stdout + run.stderr);
    assert.match(run.stdout, /PROBLEM \S+\/wal\/data\.mdb: the WAL in \S+ cannot be read[a-z ]* by this process \(uid 65534\): data\.mdb: permission denied/);
    assert.doesNotMatch(run.stdout, /damaged|LMDB/);
  });
});
