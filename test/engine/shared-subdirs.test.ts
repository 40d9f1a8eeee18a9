/**
 * Two data dirs whose `snapshots` (or `wal`) is a symlink to one directory
 * would each run a server writing into it: snapshots of the same names
 * replacing each other, a WAL appended by two. The data dir lock covers such a
 * directory too: the second opener is refused naming it and its holder, and
 * can open once the first has closed.
 */
import assert from "node:assert/strict";
import { cp, mkdir, readdir, rename, symlink } from "node:fs/promises";
import path from "node:path";
import { describe, it } from "node:test";
import { createGenesisState, orchestratorMachine } from "../../src/domain/index.ts";
import { createGenesis } from "../../src/engine/genesis.ts";
import { verifyDataDir } from "../../src/engine/verify.ts";
import { openSwoosh } from "../../src/index.ts";
import type { SwooshOptions } from "../../src/index.ts";
import { runCli } from "../e2e/processes.ts";
import { tempDirsRemovedAtEnd } from "../support/engine-fixtures.ts";

const tempDir = tempDirsRemovedAtEnd("swoosh-shared-subdirs-");

const open = (dir: string, options: Partial<SwooshOptions> = {}) => openSwoosh({ dataDir: dir, snapshotEvery: 0, onFatal: () => undefined, ...options });

const genesisOf = (clusterId: string) => createGenesis(clusterId, createGenesisState({ clusterId }), "2026-11-30T00:00:00.000Z");

const escaped = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** Two fresh data dirs, `a` and `b`, whose `snapshots` both link to `shared`. */
async function dirsSharingSnapshots(): Promise<{ a: string; b: string; shared: string }> {
  const root = await tempDir();
  const shared = path.join(root, "shared");
  const [a, b] = [path.join(root, "a"), path.join(root, "b")];
  for (const dir of [shared, a, b]) await mkdir(dir);
  await symlink(shared, path.join(a, "snapshots"));
  await symlink(shared, path.join(b, "snapshots"));
  return { a, b, shared };
}

describe("a snapshots or wal dir shared by two data dirs through a symlink", () => {
  it("refuses the second engine on a shared snapshots dir, naming it, until the first closes; the LOCK there is not taken for a snapshot", async () => {
    const { a, b, shared } = await dirsSharingSnapshots();
    const first = await open(a, { genesis: genesisOf("a") });
    try {
      await assert.rejects(open(b, { genesis: genesisOf("b") }), (error: Error) => {
        assert.match(error.message, new RegExp(`${escaped(path.join(b, "snapshots"))} links to ${escaped(shared)}, which another data dir shares`));
        return true;
      });
      // Another process: `swoosh serve` is refused at startup (exit 1), naming the shared dir and this process.
      const refused = await runCli(["serve", "--port", "0", "--host", "127.0.0.1", "--data-dir", b]);
      assert.equal(refused.status, 1, refused.stderr);
      assert.match(refused.stderr, new RegExp(`links to ${escaped(shared)}, which another data dir shares: it is in use by process ${process.pid} \\(${escaped(path.join(shared, "LOCK"))}\\)`));
      assert.equal((await readdir(b)).includes("genesis.json"), false, "the refused server wrote no genesis");
      await first.submit({ type: "agent.register", payload: { agentId: "x" } });
      await first.snapshot();
    } finally {
      await first.close({ snapshot: false });
    }
    assert.deepEqual((await readdir(shared)).filter((name) => name.startsWith("LOCK")), [], "the shared dir's LOCK is released on close");
    // verify still takes the lock, and reads past a LOCK file in the snapshots dir.
    const second = await open(a);
    try {
      await assert.rejects(verifyDataDir({ dataDir: b, machine: orchestratorMachine }), /which another data dir shares: it is already in use by another engine in this process/);
    } finally {
      await second.close({ snapshot: false });
    }
    const report = await verifyDataDir({ dataDir: a, machine: orchestratorMachine });
    assert.equal(report.ok, true, JSON.stringify(report.problems));
    assert.equal(report.snapshotsChecked, 1);
  });

  it("lets the second engine open once the first has closed", async () => {
    const { a, b } = await dirsSharingSnapshots();
    const first = await open(a, { genesis: genesisOf("a") });
    await first.close({ snapshot: false });
    const second = await open(b, { genesis: genesisOf("b") });
    await second.close({ snapshot: false });
  });

  it("refuses a copy of a data dir whose wal is a symlink while the original runs, naming the shared wal dir", async () => {
    const root = await tempDir();
    const a = path.join(root, "a");
    const shared = path.join(root, "shared-wal");
    const initial = await open(a, { genesis: genesisOf("a") });
    await initial.submit({ type: "agent.register", payload: { agentId: "x" } });
    await initial.close({ snapshot: false });
    // The WAL moved elsewhere and linked back; `cp -a` of the data dir then copies the link, not the WAL.
    await rename(path.join(a, "wal"), shared);
    await symlink(shared, path.join(a, "wal"));
    const b = path.join(root, "b");
    await cp(a, b, { recursive: true, verbatimSymlinks: true });
    const first = await open(a);
    try {
      await assert.rejects(open(b), new RegExp(`${escaped(path.join(b, "wal"))} links to ${escaped(shared)}, which another data dir shares`));
      const refused = await runCli(["serve", "--port", "0", "--host", "127.0.0.1", "--data-dir", b]);
      assert.equal(refused.status, 1, refused.stderr);
      assert.match(refused.stderr, new RegExp(`links to ${escaped(shared)}, which another data dir shares: it is in use by process ${process.pid}`));
    } finally {
      await first.close({ snapshot: false });
    }
    const second = await open(b);
    await second.close({ snapshot: false });
  });
});
