/**
 * Corruption at the server level (SPEC G3: corruption is reported with the
 * file and index; the server never serves state it could not verify).
 *
 * A pristine data dir is built once by a real `swoosh serve` (snapshots on,
 * loaded until three snapshots are kept and the WAL runs 40+ entries past the
 * newest, then SIGKILL: a start loads the newest snapshot and replays the
 * tail, and the WAL no longer reaches back to genesis).
 * Each case copies it, damages the copy, and runs `swoosh serve` and
 * `swoosh verify` on it. Two acceptable outcomes:
 *  - fallback: the server starts from an older snapshot, logs a warning naming
 *    the file it passed over, and serves exactly the pristine state hash;
 *    `swoosh verify` exits 2 naming the damaged file (a deleted snapshot is
 *    not damage: verify passes);
 *  - refusal: `swoosh serve` exits 2 with a message naming the file and the
 *    index, no stack trace; `swoosh verify` exits 2 naming them too.
 */
import assert from "node:assert/strict";
import { cp, readFile, readdir, rm, truncate, writeFile } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { open } from "lmdb";
import { sealEntryText } from "../../src/core/log-record.ts";
import { canonicalJSON } from "../../src/core/json.ts";
import type { JsonValue } from "../../src/core/json.ts";
import { createGenesisState, orchestratorMachine } from "../../src/domain/index.ts";
import { verifyDataDir } from "../../src/engine/verify.ts";
import { createGenesis } from "../../src/engine/genesis.ts";
import { LMDB_LOG_DB_OPTIONS, LMDB_LOG_ENV_OPTIONS } from "../../src/storage/lmdb-log.ts";
import { snapshotFileName } from "../../src/storage/snapshot-store.ts";
import { tempDir } from "../support/engine-fixtures.ts";
import { LMDB_FILE_DAMAGES, LMDB_MIDDLE_LEAF_DAMAGE } from "../support/lmdb-damage.ts";
import { DURATION_MS_MAX } from "../../src/domain/limits.ts";
import { getJson, killChildren, post, request, spawnServer, stopServer, verifyCli, writeGenesis } from "./harness.ts";
import type { ServerChild } from "./harness.ts";

after(killChildren);

const SNAPSHOT_EVERY = 50;
/** The fixture loads at most this many commands. */
const COMMANDS_MAX = 5000;
const RECORD_HASH_CHARS = 64;

interface Pristine {
  readonly dir: string;
  readonly stateHash: string;
  readonly index: number;
  readonly clusterId: string;
  /** Indexes of the kept snapshots, oldest first. */
  readonly snapshots: number[];
}

/** A data dir loaded by a real server until it keeps three snapshots and a WAL tail, then SIGKILLed (no final snapshot). */
async function buildDataDir(dir: string, genesisFile: string): Promise<Pristine> {
  const server = spawnServer(["--data-dir", dir, "--genesis", genesisFile, "--snapshot-every", String(SNAPSHOT_EVERY)]);
  try {
    const { url } = await server.ready;
    assert.equal((await post(url, { type: "agent.register", payload: { agentId: "a", capacity: 5 } })).status, 200);
    // When snapshots land depends on the engine's policy (snapshotEvery, amortized by state size): load in
    // batches until three are kept and the WAL runs on past the newest (bounded).
    const snapshotsNow = async () => (await readdir(path.join(dir, "snapshots"))).filter((name) => /^snapshot-\d+\.json$/.test(name)).sort().map((name) => Number(/(\d+)/.exec(name)?.[1]));
    let index = 1;
    let ready = false;
    for (let n = 1; n < COMMANDS_MAX && !ready; n += 10) {
      const batch = Array.from({ length: 10 }, (_, k) => {
        const i = n + k;
        return i % 7 === 0
          ? post(url, { type: "task.claim", payload: { agentId: "a" }, id: `claim-${i}` })
          : post(url, { type: "task.submit", payload: { taskId: `t${i}`, kind: "k", payload: { i } }, id: `submit-${i}` });
      });
      for (const answer of await Promise.all(batch)) {
        assert.equal(answer.status, 200, answer.text);
        index = Math.max(index, answer.body.index as number);
      }
      const kept = await snapshotsNow();
      ready = kept.length >= 3 && index - (kept.at(-1) as number) >= 40;
    }
    assert.ok(ready, `three snapshots and a WAL tail within ${COMMANDS_MAX} commands`);
    const read = await getJson<{ index: number; stateHash: string; state: { clusterId: string } }>(url, "/state");
    assert.equal(read.index, index);
    server.child.kill("SIGKILL");
    await server.exited;
    const snapshots = await snapshotsNow();
    assert.equal(snapshots.length, 3, `three snapshots kept: ${snapshots.join(", ")}`);
    return { dir, stateHash: read.stateHash, index: read.index, clusterId: read.state.clusterId, snapshots };
  } finally {
    server.child.kill("SIGKILL");
    await server.exited;
  }
}

/**
 * Rewrites, in place, the first task.submit record at or after `from` with
 * `edit(hash, body)`, straight in LMDB (the server must not be running);
 * returns its index.
 */
async function editWalRecord(dataDir: string, from: number, edit: (hash: string, body: string) => { hash: string; body: string }, exactly = false): Promise<number> {
  const env = open({ path: path.join(dataDir, "wal"), ...LMDB_LOG_ENV_OPTIONS });
  try {
    const db = env.openDB<string, number>(LMDB_LOG_DB_OPTIONS);
    for (let index = from; index < from + 20; index++) {
      const value = db.get(index);
      assert.ok(typeof value === "string", `WAL record ${index} exists`);
      const body = value.slice(RECORD_HASH_CHARS);
      // The first task.submit from `from` on, unless the record at `from` itself is wanted (whatever its type).
      if (!exactly && (JSON.parse(body) as { type: string }).type !== "task.submit") continue;
      const edited = edit(value.slice(0, RECORD_HASH_CHARS), body);
      await db.put(index, edited.hash + edited.body);
      await db.flushed;
      return index;
    }
    throw new Error(`no task.submit in the WAL from ${from}`);
  } finally {
    await env.close();
  }
}

/** The body of a WAL record with its payload changed (and, when `reseal`, a hash that matches the new body). */
function tamper(reseal: boolean): (hash: string, body: string) => { hash: string; body: string } {
  return (hash, body) => {
    const entry = JSON.parse(body) as { index: number; hlc: string; type: string; payload: Record<string, unknown>; id?: string; prevHash: string };
    const payload = { ...entry.payload, kind: "tampered" };
    const resealed = sealEntryText(entry.index, entry.hlc, entry.type, canonicalJSON(payload), entry.id, entry.prevHash);
    assert.notEqual(resealed.body, body);
    return { hash: reseal ? resealed.hash : hash, body: resealed.body };
  };
}

/**
 * A WAL record resealed (its hash matches its new body) with its idempotency
 * id changed: still a valid command of any type, so a replay through it
 * applies, and only the chain after it breaks.
 */
function resealWithOtherId(_hash: string, body: string): { hash: string; body: string } {
  const entry = JSON.parse(body) as { index: number; hlc: string; type: string; payload: JsonValue; id?: string; prevHash: string };
  assert.ok(entry.id !== undefined, `record ${entry.index} carries an id`);
  return sealEntryText(entry.index, entry.hlc, entry.type, canonicalJSON(entry.payload), `${entry.id}-edited`, entry.prevHash);
}

interface Run {
  readonly status: number | null;
  readonly stderr: string;
}

/** `swoosh serve` on a damaged dir: either it starts (returns the state read) or it exits (returns how). */
async function serveOn(dataDir: string): Promise<{ started: true; url: string; stateHash: string; index: number; stderr: string; server: ServerChild } | ({ started: false } & Run)> {
  const server = spawnServer(["--data-dir", dataDir], { logLevel: "info" });
  try {
    const info = await server.ready;
    const read = await getJson<{ index: number; stateHash: string }>(info.url, "/state");
    return { started: true, url: info.url, stateHash: read.stateHash, index: read.index, stderr: server.stderr(), server };
  } catch {
    const exit = await server.exited;
    return { started: false, status: exit.code, stderr: server.stderr() };
  }
}

/**
 * `swoosh verify --data-dir D --json` (cli), or the same verifyDataDir in this
 * process (a child costs a second of CPU; the CLI's exit codes are checked in
 * two cases here and in test/e2e).
 */
async function verifyIn(dataDir: string, cli: boolean): Promise<{ status: number | null; report: { problems: unknown[] } | null; stdout: string; stderr: string }> {
  if (cli) return verifyCli(dataDir);
  const report = await verifyDataDir({ dataDir, machine: orchestratorMachine });
  return { status: report.ok ? 0 : 2, report, stdout: JSON.stringify(report), stderr: "" };
}

function assertNoStack(text: string, context: string): void {
  assert.doesNotMatch(text, /\n\s+at [^\n]*\(?(file:|\/|node:)/, `${context}: no stack trace:\n${text}`);
}

// Cases are independent copies: run a few at once (each spawns a server and `swoosh verify`).
describe("faults: corruption at the server level", { concurrency: 3 }, () => {
  let root = "";
  let cleanup: () => Promise<void> = async () => undefined;
  let pristine: Pristine;
  let other: Pristine;

  before(async () => {
    ({ dir: root, cleanup } = await tempDir("swoosh-corruption-"));
    // Leases and agents that never expire: a server started on a copy minutes later must not tick.
    const config = { leaseTtlMs: DURATION_MS_MAX, heartbeatTimeoutMs: DURATION_MS_MAX };
    const mine = await writeGenesis(root, "corruption", config);
    const theirs = await writeGenesis(root, "other-cluster", config);
    [pristine, other] = await Promise.all([buildDataDir(path.join(root, "pristine"), mine.file), buildDataDir(path.join(root, "other"), theirs.file)]);
    assert.notEqual(pristine.clusterId, other.clusterId);
    const verify = await verifyCli(pristine.dir);
    assert.equal(verify.status, 0, verify.stdout);
    assert.equal(verify.report?.finalStateHash, pristine.stateHash);
  });
  after(async () => {
    await cleanup();
  });

  async function copy(name: string): Promise<string> {
    const dir = path.join(root, name);
    await cp(pristine.dir, dir, { recursive: true });
    await rm(path.join(dir, "LOCK"), { force: true });
    return dir;
  }

  /** The server falls back past `damaged` and serves the pristine state; verify names `damaged` (unless null). */
  async function expectFallback(dir: string, damaged: string, verifyNames: RegExp | null, cli = false): Promise<void> {
    const served = await serveOn(dir);
    assert.ok(served.started, `the server refused instead of falling back:\n${served.stderr}`);
    try {
      assert.equal(served.stateHash, pristine.stateHash, "the fallback recovers the same state");
      assert.equal(served.index, pristine.index);
      assert.ok(served.stderr.includes(damaged), `the server names the snapshot it passed over (${damaged}):\n${served.stderr}`);
    } finally {
      const exit = await stopServer(served.server);
      assert.equal(exit.code, 0, served.server.stderr());
    }
    const verify = await verifyIn(dir, cli);
    if (verifyNames === null) {
      assert.equal(verify.status, 0, `verify: ${verify.stdout}`);
    } else {
      assert.equal(verify.status, 2, `verify must fail: ${verify.stdout}`);
      assert.match(JSON.stringify(verify.report?.problems), verifyNames);
    }
  }

  /** `swoosh serve` exits 2 with one message naming `names` (file and index), no stack; verify exits 2 too. */
  async function expectRefusal(dir: string, names: RegExp[], verifyNames: RegExp, cli = false): Promise<void> {
    const served = await serveOn(dir);
    if (served.started) {
      await stopServer(served.server);
      assert.fail(`the server started on a damaged data dir and served ${served.stateHash} at ${served.index}`);
    }
    assert.equal(served.status, 2, `serve exits 2:\n${served.stderr}`);
    for (const name of names) assert.match(served.stderr, name);
    assertNoStack(served.stderr, "serve");
    const verify = await verifyIn(dir, cli);
    assert.equal(verify.status, 2, `verify must fail: ${verify.stdout}`);
    assert.match(JSON.stringify(verify.report?.problems), verifyNames);
    assertNoStack(verify.stderr, "verify");
  }

  const snap = (k: number) => pristine.snapshots[k] as number;
  const newest = () => snapshotFileName(snap(2));

  it("flipped bytes in the newest snapshot: the server falls back to the previous one; verify names the file", async () => {
    const dir = await copy("flipped");
    const file = path.join(dir, "snapshots", newest());
    const bytes = await readFile(file);
    for (const at of [Math.floor(bytes.length / 2), Math.floor(bytes.length / 3)]) bytes[at] = (bytes[at] as number) ^ 0x01;
    await writeFile(file, bytes);
    await expectFallback(dir, newest(), new RegExp(newest()), true);
  });

  it("a truncated newest snapshot: fallback; verify names the file", async () => {
    const dir = await copy("truncated");
    const file = path.join(dir, "snapshots", newest());
    const { length } = await readFile(file);
    await truncate(file, Math.floor(length / 2));
    await expectFallback(dir, newest(), new RegExp(newest()));
  });

  it("the newest snapshot deleted: the server replays from the previous one to the same state", async () => {
    const dir = await copy("deleted");
    await rm(path.join(dir, "snapshots", newest()));
    const served = await serveOn(dir);
    assert.ok(served.started, served.stderr);
    try {
      assert.equal(served.stateHash, pristine.stateHash);
      assert.equal(served.index, pristine.index);
    } finally {
      assert.equal((await stopServer(served.server)).code, 0);
    }
    const verify = await verifyIn(dir, false);
    assert.equal(verify.status, 0, verify.stdout);
  });

  it("a snapshot copied from another cluster's data dir: passed over as another cluster's; verify names it", async () => {
    const dir = await copy("foreign");
    await cp(path.join(other.dir, "snapshots", snapshotFileName(other.snapshots[2] as number)), path.join(dir, "snapshots", newest()));
    await expectFallback(dir, newest(), new RegExp(`${newest()}.*cluster|cluster.*${newest()}`, "s"));
  });

  it("every snapshot damaged and the WAL truncated below them: serve exits 2 naming each file", async () => {
    const dir = await copy("all-snapshots");
    for (const index of pristine.snapshots) await truncate(path.join(dir, "snapshots", snapshotFileName(index)), 100);
    const names = pristine.snapshots.map((index) => new RegExp(`${snapshotFileName(index)} @${index}`));
    await expectRefusal(dir, [/no snapshot verifies/, ...names], new RegExp(snapshotFileName(snap(1))));
  });

  it("a WAL entry after the newest snapshot edited in place: serve exits 2 naming the WAL and the index", async () => {
    const dir = await copy("wal-edited");
    const index = await editWalRecord(dir, snap(2) + 20, tamper(false));
    await expectRefusal(dir, [/the WAL does not verify/, new RegExp(`wal @${index}: hash mismatch`)], new RegExp(`"index":${index}`), true);
  });

  it("a WAL entry edited and resealed with a matching hash: the chain breaks at the next entry", async () => {
    const dir = await copy("wal-resealed");
    const index = await editWalRecord(dir, snap(2) + 20, tamper(true));
    await expectRefusal(dir, [/the WAL does not verify/, new RegExp(`wal @${index + 1}: hash mismatch`)], new RegExp(`"index":${index + 1}`));
  });

  it("the WAL entry a snapshot pins, edited: that snapshot is refused, the replay through it too", async () => {
    const dir = await copy("wal-pinned");
    const index = snap(2);
    // The entry at the snapshot's own index, whatever command it holds (snapshots land where the engine's policy puts them).
    assert.equal(await editWalRecord(dir, index, resealWithOtherId, true), index);
    await expectRefusal(dir, [/the WAL does not verify/, new RegExp(`${snapshotFileName(index)} @${index}: snapshot's logHash differs`), new RegExp(`wal @${index + 1}`)], new RegExp(`"index":${index}`));
  });

  it("a WAL entry older than the newest snapshot edited: verify names it, and the server never serves it", async () => {
    const dir = await copy("wal-old");
    // Between the two oldest snapshots: time travel to just before the second replays from the first, through it.
    const index = await editWalRecord(dir, snap(0) + 1, tamper(false));
    assert.ok(index < snap(1) - 1, `the edited entry ${index} lies before snapshot ${snap(1)}`);
    const verify = await verifyIn(dir, false);
    assert.equal(verify.status, 2, verify.stdout);
    assert.match(JSON.stringify(verify.report?.problems), new RegExp(`"index":${index}`));
    // Recovery starts at snapshot 400 and checks the WAL from there: the current state is verified and served.
    const served = await serveOn(dir);
    assert.ok(served.started, served.stderr);
    try {
      assert.equal(served.stateHash, pristine.stateHash, `index ${index}, served ${served.index}: ${served.stderr}`);
      // Not silently (G3): the server says at startup which entry behind its snapshot is damaged.
      assert.match(served.stderr, new RegExp(`"level":40,.*"index":${index},.*"msg":"WAL damaged behind the snapshot recovery started from: \\S+ @${index}: entry ${index} does not follow the entry before it`), served.stderr.slice(-2000));
      // History through the damaged entry is refused, not served.
      // Time travel through it, and reading it from GET /log, are refused naming the entry.
      for (const query of [`/state?at=${snap(1) - 1}`, `/log?from=${index - 1}&limit=3`, `/log?from=${index}&limit=1`]) {
        const answer = await request(served.url, "GET", query);
        assert.equal(answer.status, 503, `${query}: ${answer.text.slice(0, 300)}`);
        assert.equal(answer.body?.error?.code, "unavailable", query);
        assert.match(answer.body?.error?.message ?? "", new RegExp(`entry ${index} breaks the hash chain`), query);
      }
      // A watcher resuming before it gets no entry past it (a page that holds it is refused whole, as GET /log's is),
      // then an error event naming it: not a silent end, which a client would take for a network break.
      const watched = await (await fetch(`${served.url}/watch`, { headers: { "last-event-id": String(index - 2) }, signal: AbortSignal.timeout(10_000) })).text();
      assert.ok([...watched.matchAll(/^id: (\d+)$/gm)].every((match) => Number(match[1]) < index), watched.slice(0, 500));
      const errorEvent = /^event: error\ndata: (.*)$/m.exec(watched);
      assert.ok(errorEvent, `an error event: ${watched.slice(-500)}`);
      const errorBody = JSON.parse(errorEvent[1] as string) as { error: { code: string; message: string } };
      assert.equal(errorBody.error.code, "unavailable");
      assert.match(errorBody.error.message, new RegExp(`entry ${index} breaks the hash chain`));
      // Everything before it still reads.
      const before = await request(served.url, "GET", `/log?from=${snap(0)}&limit=${index - snap(0)}`);
      assert.equal(before.status, 200, before.text);
      assert.equal(before.body.entries.length, index - snap(0));
    } finally {
      assert.equal((await stopServer(served.server)).code, 0);
    }
  });

  it("the WAL's LMDB file damaged on disk (a meta page, the B-tree pages, leaf pages halfway): serve and verify report data.mdb and exit 2, never a crash", async () => {
    // Unreadable to LMDB, each of them: lmdb-js takes the process down with
    // SIGSEGV or SIGBUS when it maps such a file, so only a child reads it.
    // The last is found only after the WAL opened, while recovery reads the records before it.
    for (const damage of [...LMDB_FILE_DAMAGES, LMDB_MIDDLE_LEAF_DAMAGE]) {
      const dir = await copy(`lmdb-${damage.name.replace(/\W+/g, "-")}`);
      const file = path.join(dir, "wal", "data.mdb");
      await writeFile(file, damage.apply(await readFile(file)));
      await expectRefusal(dir, [/the WAL does not open/, /wal\/data\.mdb: (reading it crashed LMDB \(SIG[A-Z]+\)|LMDB cannot read it)/], /data\.mdb/, true);
    }
  });

  it("genesis.json edited: serve exits 2 naming the file", async () => {
    const dir = await copy("genesis-edited");
    const file = path.join(dir, "genesis.json");
    const text = await readFile(file, "utf8");
    await writeFile(file, text.replace('"maxAttempts":3', '"maxAttempts":4'));
    assert.notEqual(await readFile(file, "utf8"), text);
    await expectRefusal(dir, [/genesis file does not verify/, /genesis\.json/], /genesis\.json/);
  });

  it("genesis.json replaced by another cluster's genesis, the WAL truncated: serve and verify exit 2 naming genesis.json and both clusters, not the snapshots", async () => {
    const dir = await copy("genesis-replaced");
    const genesis = createGenesis("impostor", createGenesisState({ clusterId: "impostor" }), "2026-01-01T00:00:00.000Z");
    await writeFile(path.join(dir, "genesis.json"), canonicalJSON(genesis));
    // Quoted in serve's message, escaped again in the JSON of verify's problems.
    const clusters = new RegExp(`cluster \\W*impostor\\W*, the snapshot of cluster \\W*${pristine.clusterId}`);
    await expectRefusal(dir, [/genesis\.json is not the genesis this data dir's snapshots descend from/, clusters], clusters, true);
    const report = await verifyDataDir({ dataDir: dir, machine: orchestratorMachine });
    assert.deepEqual([...new Set(report.problems.map((problem) => path.basename(problem.file)))], ["genesis.json"], JSON.stringify(report.problems));
  });

  it("genesis.json replaced by another valid genesis of the same cluster (another config, or only another genesisTime), the WAL truncated: serve and verify exit 2 naming genesis.json", async () => {
    const config = { leaseTtlMs: DURATION_MS_MAX, heartbeatTimeoutMs: DURATION_MS_MAX };
    const original = JSON.parse(await readFile(path.join(pristine.dir, "genesis.json"), "utf8")) as { genesisTime: string; stateHash: string };
    const otherConfig = createGenesis(pristine.clusterId, createGenesisState({ clusterId: pristine.clusterId, config: { ...config, maxAttempts: 4 } }), original.genesisTime);
    const otherTime = createGenesis(pristine.clusterId, createGenesisState({ clusterId: pristine.clusterId, config }), "2026-01-02T00:00:00.000Z");
    assert.notEqual(otherConfig.stateHash, original.stateHash);
    assert.equal(otherTime.stateHash, original.stateHash, "the same state: only genesisTime differs");
    for (const [name, genesis, what] of [["genesis-other-config", otherConfig, /state hash/], ["genesis-other-time", otherTime, /genesisTime/]] as const) {
      const dir = await copy(name);
      await writeFile(path.join(dir, "genesis.json"), canonicalJSON(genesis));
      await expectRefusal(dir, [/genesis\.json is not the genesis this data dir's snapshots descend from/, what], /genesis\.json/, name === "genesis-other-time");
    }
  });

  it("genesis.json unreadable or missing: serve exits 2 naming the file", async () => {
    const garbled = await copy("genesis-garbled");
    await writeFile(path.join(garbled, "genesis.json"), "{ not json");
    await expectRefusal(garbled, [/genesis file is unreadable/, /genesis\.json/], /genesis\.json/);
    const missing = await copy("genesis-missing");
    await rm(path.join(missing, "genesis.json"));
    await expectRefusal(missing, [/has a WAL and snapshots but no genesis file/, /genesis\.json/], /genesis\.json/);
  });

});
