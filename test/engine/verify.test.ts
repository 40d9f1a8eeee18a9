/**
 * `verifyDataDir` (`swoosh verify`) on a data dir with parts missing or of the
 * wrong kind: it reports what is wrong, naming the path, and changes nothing
 * in the dir it checks.
 */
import assert from "node:assert/strict";
import { readdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, it } from "node:test";
import { open } from "lmdb";
import { openEngine } from "../../src/engine/open.ts";
import { verifyDataDir } from "../../src/engine/verify.ts";
import { LMDB_LOG_DB_OPTIONS, LMDB_LOG_ENV_OPTIONS } from "../../src/storage/lmdb-log.ts";
import type { VerifyReport } from "../../src/engine/verify.ts";
import { counterMachine } from "../support/counter-machine.ts";
import { counterGenesis, tempDirsRemovedAtEnd } from "../support/engine-fixtures.ts";

const dataDir = tempDirsRemovedAtEnd("swoosh-verify-");

/** A data dir of the counter machine holding a WAL of 4 entries and a snapshot at 2. */
async function builtDataDir(): Promise<string> {
  const dir = await dataDir();
  const engine = await openEngine({ dataDir: dir, machine: counterMachine, genesis: counterGenesis(), snapshotEvery: 0 });
  for (let i = 0; i < 4; i++) {
    await engine.submit({ type: "counter.add", payload: { amount: 1 } });
    if (i === 1) await engine.snapshot();
  }
  await engine.close({ snapshot: false });
  return dir;
}

const verify = (dir: string): Promise<VerifyReport> => verifyDataDir({ dataDir: dir, machine: counterMachine });

/** Every path below `dir`, relative to it, sorted. */
async function tree(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true })).sort();
}

describe("verifyDataDir on a data dir missing parts", () => {
  it("reports a WAL whose LMDB file is gone, or whose directory is, as missing, and creates nothing", async () => {
    const dir = await builtDataDir();
    assert.equal((await verify(dir)).ok, true);
    await rm(path.join(dir, "wal", "data.mdb"));
    await rm(path.join(dir, "wal", "lock.mdb"), { force: true });
    const before = await tree(dir);
    const noFile = await verify(dir);
    assert.deepEqual(await tree(dir), before, "verify created nothing");
    assert.equal(noFile.ok, false);
    assert.deepEqual(
      noFile.problems.map((problem) => [path.relative(dir, problem.file), problem.detail.split(":")[0]]),
      [[path.join("wal", "data.mdb"), "missing"]],
    );

    await rm(path.join(dir, "wal"), { recursive: true });
    const noDir = await verify(dir);
    assert.deepEqual(await tree(dir), before.filter((name) => name !== "wal"), "verify created nothing");
    assert.deepEqual(noDir.problems.map((problem) => [path.relative(dir, problem.file), problem.detail]), [["wal", "missing"]]);
  });

  it("reports a snapshots or wal path that is a file, naming it, instead of throwing", async () => {
    const dir = await builtDataDir();
    await rm(path.join(dir, "snapshots"), { recursive: true });
    await writeFile(path.join(dir, "snapshots"), "x\n");
    const snapshotsFile = await verify(dir);
    assert.equal(snapshotsFile.ok, false);
    assert.deepEqual(snapshotsFile.problems.map((problem) => [path.relative(dir, problem.file), problem.detail]), [["snapshots", "not a directory: a file is in its place"]]);
    assert.equal(snapshotsFile.walLastIndex, 4, "the WAL is still verified");
    assert.notEqual(snapshotsFile.finalStateHash, null);

    await rm(path.join(dir, "wal"), { recursive: true });
    await writeFile(path.join(dir, "wal"), "x\n");
    const before = await tree(dir);
    const walFile = await verify(dir);
    assert.deepEqual(await tree(dir), before, "verify created nothing");
    assert.deepEqual(walFile.problems.map((problem) => [path.relative(dir, problem.file), problem.detail]), [
      ["snapshots", "not a directory: a file is in its place"],
      ["wal", "not a directory: a file is in its place"],
    ]);
  });
  it("reports a data dir path that is a file, or lies under one, naming the file, instead of its genesis.json with ENOTDIR", async () => {
    const root = await dataDir();
    const file = path.join(root, "file");
    await writeFile(file, "x\n");
    const itself = await verify(file);
    assert.equal(itself.ok, false);
    assert.deepEqual(itself.problems.map((problem) => [problem.file, problem.detail]), [[file, "not a directory: a file is in its place"]]);
    const under = path.join(file, "sub");
    assert.deepEqual((await verify(under)).problems.map((problem) => [problem.file, problem.detail]), [[file, `not a directory: a file is in its place, on the path to the data dir ${under}`]]);
    assert.deepEqual(await tree(root), ["file"], "verify created nothing");
  });
  it("counts the entries replayed up to a break in the chain, not 0", async () => {
    const dir = await builtDataDir();
    // Entry 4's stored hash no longer matches its body: the chain breaks there, after the replay of 1..3.
    const env = open({ path: path.join(dir, "wal"), ...LMDB_LOG_ENV_OPTIONS });
    try {
      const db = env.openDB<string, number>(LMDB_LOG_DB_OPTIONS);
      const record = db.get(4) as string;
      await db.put(4, (record.startsWith("0") ? "1" : "0") + record.slice(1));
      await db.flushed;
    } finally {
      await env.close();
    }
    const report = await verify(dir);
    assert.deepEqual(report.problems.map((problem) => [path.relative(dir, problem.file), problem.index]), [["wal", 4]], JSON.stringify(report.problems));
    assert.equal(report.snapshotsMatched, 1, "the snapshot at 2 was reproduced on the way");
    assert.equal(report.entriesReplayed, 3);
    assert.equal(report.finalStateHash, null);
  });
});
