/**
 * genesis.json is tied to the history by the snapshots once the WAL no longer
 * holds entry 1: every snapshot names the genesis it descends from (its state
 * hash and genesisTime), and recovery and verify refuse a genesis.json that is
 * not that one. Snapshots of formatVersion 1 (written before) name none and
 * still load. A genesis write killed midway leaves a temp file that the next
 * open removes.
 */
import assert from "node:assert/strict";
import { readFile, readdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, it } from "node:test";
import { sha256Hex } from "../../src/core/hash.ts";
import { canonicalJSON } from "../../src/core/json.ts";
import type { JsonValue } from "../../src/core/json.ts";
import { createGenesisState, orchestratorMachine } from "../../src/domain/index.ts";
import { RecoveryError } from "../../src/engine/errors.ts";
import { createGenesis } from "../../src/engine/genesis.ts";
import type { GenesisDocument } from "../../src/engine/genesis.ts";
import { openEngine } from "../../src/engine/open.ts";
import { verifyDataDir } from "../../src/engine/verify.ts";
import { NodeFileSystem } from "../../src/storage/node-fs.ts";
import { openSwoosh } from "../../src/index.ts";
import type { SwooshOptions } from "../../src/index.ts";
import { counterMachine } from "../support/counter-machine.ts";
import { counterGenesis, tempDirsRemovedAtEnd } from "../support/engine-fixtures.ts";

const dataDir = tempDirsRemovedAtEnd("swoosh-genesis-binding-");

const open = (dir: string, options: Partial<SwooshOptions> = {}) => openSwoosh({ dataDir: dir, snapshotEvery: 0, onFatal: () => undefined, ...options });

const TIME = "2026-11-30T00:00:00.000Z";
const genesisOf = (config: { leaseTtlMs?: number } = {}, time = TIME): GenesisDocument => createGenesis("c1", createGenesisState({ clusterId: "c1", config }), time);

/** A data dir of genesis `genesis` whose WAL no longer reaches back to entry 1 (three snapshots kept, the WAL cut below the oldest). */
async function truncatedDataDir(genesis: GenesisDocument): Promise<{ dir: string; stateHash: string }> {
  const dir = await dataDir();
  const engine = await open(dir, { genesis });
  for (let i = 0; i < 5; i++) {
    await engine.submit({ type: "agent.register", payload: { agentId: `a${i}` } });
    await engine.snapshot();
  }
  await engine.submit({ type: "agent.register", payload: { agentId: "tail" } });
  const stateHash = await engine.stateHash();
  await engine.close({ snapshot: false });
  const report = await verifyDataDir({ dataDir: dir, machine: orchestratorMachine });
  assert.equal(report.ok, true, JSON.stringify(report.problems));
  assert.ok((report.walFirstIndex ?? 0) > 1, `the WAL is truncated (starts at ${report.walFirstIndex})`);
  return { dir, stateHash };
}

async function replaceGenesis(dir: string, genesis: GenesisDocument): Promise<void> {
  await writeFile(path.join(dir, "genesis.json"), canonicalJSON(genesis) + "\n");
}

async function verifyProblems(dir: string): Promise<{ ok: boolean; files: string[]; details: string }> {
  const report = await verifyDataDir({ dataDir: dir, machine: orchestratorMachine });
  return { ok: report.ok, files: [...new Set(report.problems.map((problem) => path.basename(problem.file)))], details: report.problems.map((problem) => problem.detail).join("\n") };
}

/** Rewrites every snapshot in `dir` as the store wrote them before the genesis fields: formatVersion 1, no genesis named, its metaHash over the rest. */
async function rewriteSnapshotsAsFormat1(dir: string): Promise<void> {
  const snapshotDir = path.join(dir, "snapshots");
  for (const name of await readdir(snapshotDir)) {
    const file = path.join(snapshotDir, name);
    const doc = JSON.parse(await readFile(file, "utf8")) as Record<string, JsonValue>;
    assert.equal(doc.formatVersion, 2);
    const { clusterId, lastAppliedIndex, lastAppliedHlc, logHash, outcomes, state, stateHash } = doc;
    const meta = { formatVersion: 1, clusterId, lastAppliedIndex, lastAppliedHlc, logHash, outcomes, stateHash } as Record<string, JsonValue>;
    // The old file's field order: the header, the outcomes, the state, then stateHash and metaHash.
    const old = { formatVersion: 1, clusterId, lastAppliedIndex, lastAppliedHlc, logHash, outcomes, state, stateHash, metaHash: sha256Hex(canonicalJSON(meta)) };
    await writeFile(file, JSON.stringify(old) + "\n");
  }
}

describe("genesis.json tied to the snapshots", () => {
  it("refuses a genesis.json of the same cluster with another state once the WAL is truncated: open throws and verify fails, both naming genesis.json", async () => {
    const { dir } = await truncatedDataDir(genesisOf());
    await replaceGenesis(dir, genesisOf({ leaseTtlMs: 5000 }));
    await assert.rejects(open(dir), (error: unknown) => {
      assert.ok(error instanceof RecoveryError, String(error));
      assert.match(error.message, /genesis\.json is not the genesis this data dir's snapshots descend from/);
      assert.match(error.message, /state hash/);
      return true;
    });
    const verify = await verifyProblems(dir);
    assert.equal(verify.ok, false);
    assert.deepEqual(verify.files, ["genesis.json"], verify.details);
  });

  it("refuses another cluster's genesis.json once the WAL is truncated, naming genesis.json and both clusters (not every snapshot as corrupt); a snapshot of that cluster copied in is still the stranger", async () => {
    const { dir } = await truncatedDataDir(genesisOf());
    const otherCluster = createGenesis("other", createGenesisState({ clusterId: "other" }), TIME);
    await replaceGenesis(dir, otherCluster);
    await assert.rejects(open(dir), (error: unknown) => {
      assert.ok(error instanceof RecoveryError, String(error));
      assert.match(error.message, /genesis\.json is not the genesis this data dir's snapshots descend from/);
      assert.match(error.message, /it is of cluster "other", the snapshot of cluster "c1"/);
      return true;
    });
    const verify = await verifyProblems(dir);
    assert.equal(verify.ok, false);
    assert.deepEqual(verify.files, ["genesis.json"], verify.details);
    assert.match(verify.details, /cluster "other", the snapshot of cluster "c1"/);

    // The right genesis back, and a snapshot of the other cluster's own data dir copied in: that snapshot is named, not genesis.json.
    await replaceGenesis(dir, genesisOf());
    const { dir: theirs } = await truncatedDataDir(otherCluster);
    const [newest] = (await readdir(path.join(theirs, "snapshots"))).filter((name) => name.endsWith(".json")).sort().reverse();
    await writeFile(path.join(dir, "snapshots", newest as string), await readFile(path.join(theirs, "snapshots", newest as string)));
    const stranger = await verifyProblems(dir);
    assert.deepEqual(stranger.files, [newest], stranger.details);
    assert.match(stranger.details, /belongs to cluster "other"/);
    const skipped: string[] = [];
    const engine = await open(dir, { onSkippedSnapshot: (problem) => skipped.push(problem.detail) });
    await engine.close({ snapshot: false });
    assert.match(skipped.join("\n"), /belongs to cluster "other"/);
  });

  it("refuses a genesis.json that differs only in its genesisTime once the WAL is truncated", async () => {
    const { dir } = await truncatedDataDir(genesisOf());
    await replaceGenesis(dir, genesisOf({}, "2026-12-01T00:00:00.000Z"));
    await assert.rejects(open(dir), (error: unknown) => error instanceof RecoveryError && /genesis\.json/.test(error.message) && /genesisTime/.test(error.message));
    const verify = await verifyProblems(dir);
    assert.equal(verify.ok, false);
    assert.deepEqual(verify.files, ["genesis.json"], verify.details);
    assert.match(verify.details, /genesisTime/);
  });

  it("opens and verifies the same data dir once the right genesis.json is back", async () => {
    const genesis = genesisOf();
    const { dir, stateHash } = await truncatedDataDir(genesis);
    await replaceGenesis(dir, genesisOf({ leaseTtlMs: 5000 }));
    await assert.rejects(open(dir), RecoveryError);
    await replaceGenesis(dir, genesis);
    const verify = await verifyProblems(dir);
    assert.equal(verify.ok, true, verify.details);
    const engine = await open(dir);
    try {
      assert.equal(await engine.stateHash(), stateHash);
      assert.equal(engine.genesis.stateHash, genesis.stateHash);
    } finally {
      await engine.close({ snapshot: false });
    }
  });

  it("opens and verifies a data dir whose snapshots are all of formatVersion 1 (no genesis named), and writes its next ones naming it", async () => {
    const genesis = genesisOf();
    const { dir, stateHash } = await truncatedDataDir(genesis);
    await rewriteSnapshotsAsFormat1(dir);
    const verify = await verifyProblems(dir);
    assert.equal(verify.ok, true, verify.details);
    const engine = await open(dir);
    try {
      assert.equal(await engine.stateHash(), stateHash);
      assert.equal(engine.stats().lastSnapshotIndex, 5, "recovered from the newest, an old-format snapshot");
      await engine.submit({ type: "agent.register", payload: { agentId: "after" } });
      await engine.snapshot();
    } finally {
      await engine.close({ snapshot: false });
    }
    const newest = JSON.parse(await readFile(path.join(dir, "snapshots", "snapshot-00000000000000000007.json"), "utf8")) as Record<string, unknown>;
    assert.deepEqual([newest.formatVersion, newest.genesisStateHash, newest.genesisTime], [2, genesis.stateHash, genesis.genesisTime]);
    assert.equal((await verifyProblems(dir)).ok, true);
  });

  it("removes a genesis.json temp file a killed write left in the data dir, fsyncing the dir after, and nothing else", async () => {
    const dir = await dataDir();
    const engine = await openEngine({ dataDir: dir, machine: counterMachine, genesis: counterGenesis(), snapshotEvery: 0 });
    await engine.submit({ type: "counter.add", payload: { amount: 2 } });
    await engine.close({ snapshot: false });
    const before = (await readdir(dir)).sort();
    // What a process killed while writing genesis.json leaves (another pid's), and a file that is not Swoosh's.
    await writeFile(path.join(dir, "genesis.json.tmp-99999999-1"), '{"clusterId":"c');
    await writeFile(path.join(dir, "genesis.json.tmp-1-7"), "");
    await writeFile(path.join(dir, "notes.txt.tmp-1-1"), "mine");
    const calls: string[] = [];
    const fs = new (class extends NodeFileSystem {
      override async unlink(file: string): Promise<void> {
        calls.push(`unlink ${path.relative(dir, file)}`);
        return super.unlink(file);
      }
      override async syncDir(at: string): Promise<void> {
        calls.push(`syncDir ${path.relative(dir, at) || "."}`);
        return super.syncDir(at);
      }
    })();
    const reopened = await openEngine({ dataDir: dir, machine: counterMachine, snapshotEvery: 0, fs });
    try {
      // LOCK: the open engine holds the data dir (a NodeFileSystem is the real disk).
      assert.deepEqual((await readdir(dir)).sort(), [...before, "notes.txt.tmp-1-1", "LOCK"].sort());
      assert.equal((await reopened.readState()).state.count, 2);
    } finally {
      await reopened.close({ snapshot: false });
    }
    const lastUnlink = calls.findLastIndex((call) => call.startsWith("unlink genesis.json.tmp-"));
    assert.ok(lastUnlink >= 0, calls.join(", "));
    assert.ok(calls.indexOf("syncDir .", lastUnlink) > lastUnlink, `the data dir is fsynced after the removal: ${calls.join(", ")}`);
  });

  it("of two initializers of one empty dir, only the one holding the lock writes genesis.json: the other is refused, and the one that runs runs on the file's genesis", async () => {
    const dir = path.join(await dataDir(), "fresh");
    const slowGenesis = genesisOf({ leaseTtlMs: 5_000 });
    const quickGenesis = genesisOf();
    // The slow initializer stalls as it starts writing genesis.json; the quick one opens meanwhile.
    let stalled: () => void = () => undefined;
    const writing = new Promise<void>((resolve) => (stalled = resolve));
    let go: () => void = () => undefined;
    const resume = new Promise<void>((resolve) => (go = resolve));
    const slowFs = new (class extends NodeFileSystem {
      override async create(file: string): ReturnType<NodeFileSystem["create"]> {
        if (path.basename(file).startsWith("genesis.json.tmp-")) {
          stalled();
          await resume;
        }
        return super.create(file);
      }
    })();
    const slow = openSwoosh({ dataDir: dir, genesis: slowGenesis, snapshotEvery: 0, fs: slowFs } as SwooshOptions);
    slow.catch(() => undefined);
    await writing;
    const [quickOutcome] = await Promise.allSettled([open(dir, { genesis: quickGenesis })]);
    go();
    const [slowOutcome] = await Promise.allSettled([slow]);
    const outcomes = [slowOutcome, quickOutcome];
    const opened = outcomes.filter((outcome) => outcome?.status === "fulfilled");
    assert.equal(opened.length, 1, `exactly one opens: ${JSON.stringify(outcomes.map((outcome) => (outcome?.status === "rejected" ? String(outcome.reason) : "opened")))}`);
    const engine = (opened[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof openSwoosh>>>).value;
    const onDisk = JSON.parse(await readFile(path.join(dir, "genesis.json"), "utf8")) as GenesisDocument;
    try {
      assert.equal((await engine.stateAt(0)).logHash, onDisk.stateHash, "the engine that runs runs on the genesis genesis.json holds");
      assert.equal(onDisk.stateHash, slowGenesis.stateHash, "the initializer holding the lock wrote it");
    } finally {
      await engine.close({ snapshot: false });
    }
    // Refused at the lock, having written nothing (another process would read "in use by process P").
    assert.match(String((quickOutcome as PromiseRejectedResult).reason), /already open in this process/);
  });
  it("does not blame genesis.json for a snapshot of another genesis copied in: verify names the snapshot, with the WAL whole or truncated", async () => {
    const ours = genesisOf();
    const theirs = genesisOf({ leaseTtlMs: 5_000 });
    // Whole WAL: entry 1 vouches for genesis.json; the stranger is the copied snapshot.
    const whole = async (genesis: GenesisDocument): Promise<string> => {
      const dir = await dataDir();
      const engine = await open(dir, { genesis });
      await engine.submit({ type: "agent.register", payload: { agentId: "a" } });
      await engine.submit({ type: "agent.register", payload: { agentId: "b" } });
      await engine.snapshot();
      await engine.submit({ type: "agent.register", payload: { agentId: "c" } });
      await engine.close({ snapshot: false });
      return dir;
    };
    const [x, y] = [await whole(ours), await whole(theirs)];
    const truncatedX = (await truncatedDataDir(ours)).dir;
    const truncatedY = (await truncatedDataDir(theirs)).dir;
    for (const [into, from] of [
      [x, y],
      [truncatedX, truncatedY],
    ] as const) {
      const names = (await readdir(path.join(from, "snapshots"))).filter((name) => name.endsWith(".json")).sort();
      const newest = names[names.length - 1] as string;
      await writeFile(path.join(into, "snapshots", newest), await readFile(path.join(from, "snapshots", newest)));
      const { ok, files, details } = await verifyProblems(into);
      assert.equal(ok, false);
      assert.ok(files.includes(newest), `the copied snapshot is named: ${files.join(", ")}\n${details}`);
      assert.ok(!files.includes("genesis.json"), `genesis.json is not blamed: ${details}`);
      // Recovery passes over it as well and opens.
      const engine = await open(into, { onSkippedSnapshot: () => undefined });
      await engine.close({ snapshot: false });
    }
  });
});
