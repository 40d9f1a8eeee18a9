/**
 * A WAL whose files this process may not use is reported as that, not as a
 * damaged file (which would send an operator to restore a backup over a
 * healthy WAL): `swoosh serve` and `swoosh verify`, run as `nobody` on a data
 * dir `nobody` owns, with one of the WAL's files made read-only or unreadable.
 * And `swoosh verify` checks a dir it cannot write (the WAL opened read-only):
 * another user's, or a backup on a read-only mount. Needs root (to run the CLI
 * as another user, to mount a tmpfs); skipped otherwise.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmod, chown, cp, mkdir, rm } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import type { TestContext } from "node:test";
import { openSwoosh } from "../../src/index.ts";
import { tempDirsRemovedAtEnd } from "../support/engine-fixtures.ts";
import { bin, killAll, runCli, runProcess } from "./processes.ts";
import type { CliRun } from "./processes.ts";

const NOBODY = { uid: 65534, gid: 65534 };
const ROOT = { uid: 0, gid: 0 };
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

/** `swoosh ARGS` run as nobody, its temp dir (where tsx keeps its cache, tsx-<uid>) one this test removes. */
async function runAsNobody(args: readonly string[]): Promise<CliRun> {
  const ownTemp = await newTempDir();
  await chmod(ownTemp, 0o777);
  return runProcess("setpriv", [...AS_NOBODY, `TMPDIR=${ownTemp}`, process.execPath, bin, ...args], { timeoutMs: 30_000 });
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

/** `swoosh serve` run as nobody on a data dir nobody owns, with one of its WAL files (`data.mdb` or `lock.mdb`) made read-only. */
async function serveAsNobodyWithReadOnly(walFile: string): Promise<CliRun> {
  const dataDir = await dataDirOwnedBy(NOBODY);
  await chmod(path.join(dataDir, "wal", walFile), 0o444);
  return runAsNobody(["serve", "--data-dir", dataDir, "--port", "0", "--host", "127.0.0.1", "--log-level", "warn"]);
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
    const run = await serveAsNobodyWithReadOnly("data.mdb");
    assert.equal(run.status, 1, run.stderr);
    assert.match(run.stderr, /^swoosh: the WAL in \S+\/wal cannot be read and written by this process \(uid 65534\): data\.mdb: permission denied$/m);
    assert.doesNotMatch(run.stderr, /damaged|failed recovery|LMDB/);
  });

  it("swoosh serve with a read-only lock.mdb: exit 1 naming the permission, not a crash of LMDB", async (t) => {
    if (skipped(t)) return;
    const run = await serveAsNobodyWithReadOnly("lock.mdb");
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

/**
 * A copy of `dataDir` on a tmpfs mounted read-only, handed to `body`; unmounted
 * afterwards. Null (body not run) with the reason when the mount is refused.
 */
async function onReadOnlyMount(dataDir: string, body: (copy: string) => Promise<void>): Promise<string | null> {
  const mountPoint = path.join(await newTempDir(), "mnt");
  await mkdir(mountPoint);
  const mounted = await runProcess("mount", ["-t", "tmpfs", "-o", "size=16m", "tmpfs", mountPoint]);
  if (mounted.status !== 0) return `cannot mount a tmpfs: ${mounted.stderr.trim()}`;
  try {
    const copy = path.join(mountPoint, "data");
    await cp(dataDir, copy, { recursive: true, preserveTimestamps: true });
    const remounted = await runProcess("mount", ["-o", "remount,ro", mountPoint]);
    if (remounted.status !== 0) return `cannot remount the tmpfs read-only: ${remounted.stderr.trim()}`;
    await body(copy);
    return null;
  } finally {
    const unmounted = await runProcess("umount", [mountPoint]);
    assert.equal(unmounted.status, 0, `umount ${mountPoint}: ${unmounted.stderr}`);
    await rm(mountPoint, { recursive: true, force: true });
  }
}

describe("swoosh verify on a data dir it cannot write: the WAL opened read-only", () => {
  it("a backup on a read-only mount: verified, exit 0", async (t) => {
    if (process.getuid?.() !== 0) return t.skip("needs root, to mount a tmpfs");
    const dataDir = await dataDirOwnedBy(ROOT);
    const refused = await onReadOnlyMount(dataDir, async (copy) => {
      const run = await runCli(["verify", "--data-dir", copy]);
      assert.equal(run.status, 0, run.stdout + run.stderr);
      assert.match(run.stdout, /replayed: +1 entries\nstate hash: +[0-9a-f]{64}\nOK\n$/);
    });
    if (refused !== null) t.skip(refused);
  });

  it("another user's dir (root's, mode 755) verified as nobody: exit 0", async (t) => {
    if (process.getuid?.() !== 0) return t.skip("needs root, to run the CLI as nobody");
    const unavailable = nobodyUnavailable();
    if (unavailable !== null) return t.skip(unavailable);
    const dataDir = await dataDirOwnedBy(ROOT);
    const run = await runAsNobody(["verify", "--data-dir", dataDir]);
    assert.equal(run.status, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /replayed: +1 entries\nstate hash: +[0-9a-f]{64}\nOK\n$/);
  });

  it("its own dir with a read-only data.mdb, verified as nobody: exit 0 (serve refuses it, verify needs only to read)", async (t) => {
    if (process.getuid?.() !== 0) return t.skip("needs root, to run the CLI as nobody");
    const unavailable = nobodyUnavailable();
    if (unavailable !== null) return t.skip(unavailable);
    const dataDir = await dataDirOwnedBy(NOBODY);
    await chmod(path.join(dataDir, "wal", "data.mdb"), 0o444);
    const run = await runAsNobody(["verify", "--data-dir", dataDir]);
    assert.equal(run.status, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /OK\n$/);
  });
});
