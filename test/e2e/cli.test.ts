/**
 * The built CLI as a child process: hash, genesis, verify and their exit codes (SPEC §9).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { computeStateHash } from "../../src/core/hash.ts";
import { canonicalJSON } from "../../src/core/json.ts";
import { createGenesisState } from "../../src/domain/index.ts";
import { createGenesis } from "../../src/engine/genesis.ts";
import { openSwoosh } from "../../src/index.ts";
import { tempDir } from "../support/engine-fixtures.ts";

const bin = fileURLToPath(new URL("../../bin/swoosh.js", import.meta.url));
const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups) await cleanup();
});

function swoosh(args: string[], input?: string): { status: number | null; stdout: string; stderr: string } {
  const run = spawnSync(process.execPath, [bin, ...args], { encoding: "utf8", input, timeout: 60_000 });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

async function dir(): Promise<string> {
  const { dir, cleanup } = await tempDir("swoosh-cli-");
  cleanups.push(cleanup);
  return dir;
}

describe("swoosh CLI", () => {
  it("hash prints the state hash of a JSON file and exits 2 on invalid JSON", async () => {
    const d = await dir();
    const file = path.join(d, "state.json");
    await writeFile(file, '{"b": [1, 2.50, "x"], "a": null, "__proto__": {"k": "😀"}}');
    const ok = swoosh(["hash", file]);
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal(ok.stdout.trim(), computeStateHash(JSON.parse('{"b": [1, 2.50, "x"], "a": null, "__proto__": {"k": "😀"}}')));
    assert.equal(swoosh(["hash", "-"], "{}").stdout.trim(), "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
    await writeFile(file, "{ not json");
    const bad = swoosh(["hash", file]);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /not valid JSON/);
    assert.doesNotMatch(bad.stderr, /\n\s+at /, "no stack trace");
    // JSON.parse's message quotes the text, newlines and all: still one line, and no made-up byte offset.
    const multiLine = swoosh(["hash", "-"], '{"a":1,\n"b":x}');
    assert.equal(multiLine.status, 2);
    assert.equal(multiLine.stderr.trim().split("\n").length, 1, `one line: ${multiLine.stderr}`);
    assert.doesNotMatch(multiLine.stderr, /at byte 0/);
    // A path that names no file is bad usage, like any bad argument.
    assert.equal(swoosh(["hash", path.join(d, "missing.json")]).status, 2);
    assert.equal(swoosh(["hash", d]).status, 2, "a directory");
  });
  it("hash of a value nested 20,000 deep exits 2 with one line saying the nesting is too deep, no stack", () => {
    const deep = swoosh(["hash", "-"], "[".repeat(20_000) + "1" + "]".repeat(20_000));
    assert.equal(deep.status, 2, deep.stderr.slice(0, 300));
    assert.equal(deep.stderr.split("\n").length, 2, "one line");
    assert.match(deep.stderr, /^swoosh: -: (\/0){1000}: nesting deeper than 1000\n$/);
  });

  it("genesis prints a document whose hash verifies, with config flags applied", () => {
    const run = swoosh(["genesis", "--cluster-id", "farm", "--lease-ttl-ms", "5000", "--genesis-time", "2026-11-29T12:00:00Z"]);
    assert.equal(run.status, 0, run.stderr);
    const doc = JSON.parse(run.stdout) as { clusterId: string; genesisTime: string; state: { clusterId: string; config: { leaseTtlMs: number } }; stateHash: string };
    assert.equal(doc.clusterId, "farm");
    assert.equal(doc.state.clusterId, "farm");
    assert.equal(doc.state.config.leaseTtlMs, 5000);
    assert.equal(doc.genesisTime, "2026-11-29T12:00:00.000Z");
    assert.equal(doc.stateHash, computeStateHash(doc.state));
    assert.equal(swoosh(["genesis", "--cluster-id", "farm", "--max-attempts", "zero"]).status, 2);
    // Decimal integers and ISO-8601 times only, as serve's flags: nothing JavaScript would coerce.
    // A date or time that does not exist is refused, not rolled over by Date.parse (02-30 had become 03-02).
    const impossible = ["2026-02-30T00:00:00Z", "2027-02-29T12:00Z", "2026-01-01T24:00:00Z", "2026-04-31T00:00:00+02:00"];
    for (const flags of [["--max-attempts", "0x10"], ["--lease-ttl-ms", "1e3"], ["--max-attempts", "1.0"], ["--genesis-time", "1"], ["--genesis-time", "March 7 2020"], ...impossible.map((time) => ["--genesis-time", time])]) {
      const refused = swoosh(["genesis", "--cluster-id", "farm", ...flags]);
      assert.equal(refused.status, 2, `${flags.join(" ")}: ${refused.stdout}`);
    }
    const leapDayInAnotherZone = JSON.parse(swoosh(["genesis", "--cluster-id", "farm", "--genesis-time", "2028-02-29T23:30:00-01:00"]).stdout) as { genesisTime: string };
    assert.equal(leapDayInAnotherZone.genesisTime, "2028-03-01T00:30:00.000Z", "a real time in another zone is kept");
    assert.equal(swoosh(["genesis"]).status, 2, "missing --cluster-id is bad usage");
    assert.equal(swoosh(["no-such-command"]).status, 2);
    assert.equal(swoosh(["--help"]).status, 0);
    assert.match(swoosh(["--version"]).stdout, /^\d+\.\d+\.\d+/);
  });

  it("verify passes on a healthy data dir and fails with exit 2 naming a corrupted snapshot", async () => {
    const d = await dir();
    const engine = await openSwoosh({ dataDir: d, snapshotEvery: 0, onFatal: () => undefined });
    await engine.submit({ type: "agent.register", payload: { agentId: "a1", labels: ["linux"], capacity: 2 } });
    for (let i = 0; i < 20; i++) {
      await engine.submit({ type: "task.submit", payload: { taskId: `t${i}`, kind: "build" } });
      if (i % 7 === 6) await engine.snapshot();
    }
    await engine.close();
    const ok = swoosh(["verify", "--data-dir", d]);
    assert.equal(ok.status, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /OK/);
    // SWOOSH_DATA_DIR as for serve, and --help says so; empty is refused, not taken as the current directory.
    const fromEnv = spawnSync(process.execPath, [bin, "verify"], { encoding: "utf8", env: { ...process.env, SWOOSH_DATA_DIR: d }, timeout: 60_000 });
    assert.equal(fromEnv.status, 0, fromEnv.stderr);
    assert.match(swoosh(["verify", "--help"]).stdout, /env: SWOOSH_DATA_DIR/);
    assert.equal(spawnSync(process.execPath, [bin, "verify"], { encoding: "utf8", env: { ...process.env, SWOOSH_DATA_DIR: "" }, timeout: 60_000 }).status, 2);
    const snapshots = (await readdir(path.join(d, "snapshots"))).sort();
    const victim = path.join(d, "snapshots", snapshots[1] as string);
    await writeFile(victim, "{}");
    const bad = swoosh(["verify", "--data-dir", d]);
    assert.equal(bad.status, 2);
    assert.ok(bad.stdout.includes(victim), bad.stdout);
    assert.equal(swoosh(["verify", "--data-dir", path.join(d, "nope")]).status, 2);
  });

  it("verify refuses a data dir a running engine holds (exit 1 naming the process) and checks it once that one closed, leaving no LOCK behind", async () => {
    const d = await dir();
    const engine = await openSwoosh({ dataDir: d, snapshotEvery: 0, onFatal: () => undefined });
    await engine.submit({ type: "task.submit", payload: { taskId: "t", kind: "build" } });
    const refused = swoosh(["verify", "--data-dir", d]);
    assert.equal(refused.status, 1, refused.stdout + refused.stderr);
    assert.match(refused.stderr, new RegExp(`in use by process ${process.pid}\\b`));
    assert.doesNotMatch(refused.stderr, /\n\s+at /, "no stack trace");
    await engine.submit({ type: "task.submit", payload: { taskId: "u", kind: "build" } });
    await engine.close();
    const ok = swoosh(["verify", "--data-dir", d]);
    assert.equal(ok.status, 0, ok.stdout + ok.stderr);
    assert.ok(!(await readdir(d)).includes("LOCK"), "verify released the lock it took");
  });

  it("verify fails with exit 2 naming genesis.json when it was replaced by another genesis of the cluster after the WAL was truncated, and passes with the right one", async () => {
    const d = await dir();
    const genesis = createGenesis("c1", createGenesisState({ clusterId: "c1" }), "2026-11-30T00:00:00.000Z");
    const engine = await openSwoosh({ dataDir: d, genesis, snapshotEvery: 0, onFatal: () => undefined });
    for (let i = 0; i < 5; i++) {
      await engine.submit({ type: "agent.register", payload: { agentId: `a${i}` } });
      await engine.snapshot();
    }
    await engine.close({ snapshot: false });
    const file = path.join(d, "genesis.json");
    // Same cluster, same genesisTime, another lease TTL: only the snapshots can tell.
    await writeFile(file, canonicalJSON(createGenesis("c1", createGenesisState({ clusterId: "c1", config: { leaseTtlMs: 5000 } }), genesis.genesisTime)));
    const bad = swoosh(["verify", "--data-dir", d]);
    assert.equal(bad.status, 2, bad.stdout + bad.stderr);
    assert.match(bad.stdout, /wal: {8}entries [2-9]\d*\.\./, "the WAL no longer holds entry 1");
    assert.ok(bad.stdout.includes(`PROBLEM ${file}: not the genesis snapshot`), bad.stdout);
    await writeFile(file, canonicalJSON(genesis));
    const ok = swoosh(["verify", "--data-dir", d]);
    assert.equal(ok.status, 0, ok.stdout + ok.stderr);
  });
  it("serve and verify on a data dir that is a file, or under one: exit 2 with one line naming the file, nothing written", async () => {
    const root = await dir();
    const file = path.join(root, "file");
    await writeFile(file, "x\n");
    for (const dataDir of [file, path.join(file, "sub")]) {
      const served = swoosh(["serve", "--data-dir", dataDir, "--port", "0", "--log-level", "silent"]);
      assert.equal(served.status, 2, served.stdout + served.stderr);
      const said = dataDir === file ? `swoosh: data dir ${file} is not a directory: a file is in its place\n` : `swoosh: data dir ${dataDir} cannot be a directory: ${file} on its path is a file\n`;
      assert.equal(served.stderr, said);
      const verified = swoosh(["verify", "--data-dir", dataDir]);
      assert.equal(verified.status, 2, verified.stdout + verified.stderr);
      assert.ok(verified.stdout.includes(`PROBLEM ${file}: not a directory: a file is in its place`), verified.stdout);
    }
    assert.deepEqual(await readdir(root), ["file"]);
  });
  it("verify with genesis.json gone from a data dir holding a WAL and snapshots: exit 2 saying so, as serve does, and no WAL indexes it did not read", async () => {
    const d = await dir();
    const engine = await openSwoosh({ dataDir: d, snapshotEvery: 0, onFatal: () => undefined });
    await engine.submit({ type: "agent.register", payload: { agentId: "a1" } });
    await engine.snapshot();
    await engine.close({ snapshot: false });
    await rm(path.join(d, "genesis.json"));
    const run = swoosh(["verify", "--data-dir", d]);
    assert.equal(run.status, 2, run.stdout + run.stderr);
    assert.ok(run.stdout.includes(`PROBLEM ${path.join(d, "genesis.json")}: missing: the data dir has a WAL and snapshots but no genesis file`), run.stdout);
    assert.match(run.stdout, /^wal: {8}-$/m, "not an empty WAL (entries 0..0)");
    const empty = swoosh(["verify", "--data-dir", await dir()]);
    assert.equal(empty.status, 2);
    assert.match(empty.stdout, /genesis\.json: missing: the data dir is not initialized/);
  });
});
