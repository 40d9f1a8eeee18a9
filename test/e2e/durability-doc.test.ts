/**
 * DURABILITY.md's operator procedure "Restoring from a snapshot", run as
 * printed: a server's data dir is given leases and a clean shutdown (which
 * writes a snapshot), its WAL is then damaged so the dir no longer starts,
 * and the document's two commands — the `node -e` that turns the newest
 * snapshot into a genesis document, and `swoosh serve --genesis …` on a new
 * data dir — bring up a server whose state is the snapshot's, whose fencing
 * tokens carry on, and that takes new commands.
 */
import assert from "node:assert/strict";
import { readdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { after, it } from "node:test";
import { tempDir } from "../support/engine-fixtures.ts";
import { http, killAll, runCli, runProcess, startServe, stopServe } from "./processes.ts";
import { fencedBlocksAfter } from "./doc-blocks.ts";

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  killAll();
  for (const cleanup of cleanups) await cleanup();
});

/** The shell lines of the `sh` block that follows `marker`, continuation-free and without comments. */
async function procedureLines(marker: string): Promise<string[]> {
  const doc = await readFile(new URL("../../DURABILITY.md", import.meta.url), "utf8");
  const block = fencedBlocksAfter(doc, "DURABILITY.md", marker).find((fenced) => fenced.lang === "sh");
  assert.ok(block, `an sh block follows "${marker}"`);
  // The `node -e '…'` command spans lines inside its quotes; split on lines that start a new command.
  const commands: string[] = [];
  for (const line of block.text.trimEnd().split("\n")) {
    if (/^(node|swoosh) /.test(line) || commands.length === 0) commands.push(line);
    else commands[commands.length - 1] += "\n" + line;
  }
  return commands.map((command) => command.replace(/\s+# .*$/, ""));
}

type Json = Record<string, unknown>;

it("DURABILITY.md's restore-from-snapshot procedure brings up the snapshot's state with its fencing tokens", async () => {
  const [toGenesis, serveRestored] = await procedureLines("**Restoring from a snapshot.**");
  assert.ok(toGenesis !== undefined && serveRestored !== undefined && toGenesis.startsWith("node -e '") && serveRestored.startsWith("swoosh serve "), "the procedure's two commands");

  const { dir: work, cleanup } = await tempDir("swoosh-restore-");
  cleanups.push(cleanup);
  const dataDir = path.join(work, "data");
  const original = await startServe(["--data-dir", dataDir]);
  const command = async (type: string, payload: Json): Promise<Json> => {
    const answer = await http(original.url, "POST", "/command", { body: { type, payload } });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    return (answer.body as { result: Json }).result;
  };
  await command("agent.register", { agentId: "w1", labels: ["linux"], capacity: 4 });
  for (const taskId of ["a", "b", "c", "d"]) await command("task.submit", { taskId, kind: "build" });
  const leases = (await command("task.claim", { agentId: "w1", limit: 2 })).leases as Array<{ taskId: string; token: number }>;
  assert.equal(leases.length, 2);
  await command("task.complete", { taskId: leases[0]?.taskId, token: leases[0]?.token });
  assert.equal((await stopServe(original)).code, 0);

  const snapshots = (await readdir(path.join(dataDir, "snapshots"))).filter((name) => name.endsWith(".json")).sort();
  const newest = snapshots[snapshots.length - 1];
  assert.ok(newest !== undefined, "the clean shutdown wrote a snapshot");
  const snapshot = JSON.parse(await readFile(path.join(dataDir, "snapshots", newest), "utf8")) as { state: Json; stateHash: string; lastAppliedIndex: number };
  assert.ok(snapshot.lastAppliedIndex >= 7, `the snapshot covers the 7 commands: ${snapshot.lastAppliedIndex}`);

  // The WAL "damaged past repair": its data file overwritten, so the dir no longer starts.
  const walFiles = await readdir(path.join(dataDir, "wal"));
  for (const name of walFiles) await writeFile(path.join(dataDir, "wal", name), Buffer.alloc(8192, 0x5a));
  const broken = await runCli(["serve", "--port", "0", "--data-dir", dataDir], { timeoutMs: 30_000 });
  assert.equal(broken.status, 2, `a data dir with a damaged WAL does not start: ${broken.stderr}`);

  // The document's first command, on the newest snapshot.
  const snapshotPath = path.join("data", "snapshots", newest);
  const script = toGenesis.replace(/data\/snapshots\/snapshot-\d+\.json/, snapshotPath);
  assert.notEqual(script, toGenesis, "the procedure names a snapshot file to replace");
  const made = await runProcess("bash", ["-c", script], { cwd: work, timeoutMs: 30_000 });
  assert.equal(made.status, 0, made.stderr);
  const genesis = JSON.parse(await readFile(path.join(work, "restored-genesis.json"), "utf8")) as Json;
  assert.equal(genesis.stateHash, snapshot.stateHash);

  // The second: `swoosh serve` with the flags it gives, run where the first wrote its file.
  const args = serveRestored.trim().split(/\s+/).slice(2);
  const restored = await startServe(args, { cwd: work });
  assert.equal(restored.genesisHash, snapshot.stateHash, "the genesis hash is the snapshot's state hash");
  const state = await http(restored.url, "GET", "/state");
  assert.equal(state.status, 200);
  const body = state.body as { index: number; stateHash: string; state: Json };
  assert.equal(body.stateHash, snapshot.stateHash);
  assert.deepEqual(body.state, snapshot.state);
  assert.equal(body.index, 0);

  // Fencing carries on: the next lease's token is above every token handed out before.
  const claim = await http(restored.url, "POST", "/command", { body: { type: "task.claim", payload: { agentId: "w1", limit: 1 } } });
  assert.equal(claim.status, 200, JSON.stringify(claim.body));
  const [next] = (claim.body as { result: { leases: Array<{ token: number }> } }).result.leases;
  assert.ok(next !== undefined && next.token > Math.max(...leases.map((lease) => lease.token)), `token ${next?.token} after ${leases.map((l) => l.token).join(",")}`);
  // The lease still held at the snapshot is still fenced: an old token cannot complete a task another lease holds.
  const stale = await http(restored.url, "POST", "/command", { body: { type: "task.complete", payload: { taskId: leases[0]?.taskId, token: leases[0]?.token } } });
  assert.equal(stale.status, 409);
  assert.equal((await stopServe(restored)).code, 0);
});
