/**
 * The engine as a library caller meets it (SPEC §10): what it hands out
 * cannot change what it keeps; a relative data dir stays the same directory;
 * a throwing listener hurts no one else; close() twice; the same dir through
 * a symlink is the same lock; bad settings write nothing; a snapshot that
 * verifies but does not load is passed over.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { cp, mkdir, readFile, readdir, rm, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, it } from "node:test";
import { SwooshError } from "../../src/core/errors.ts";
import type { AppliedEvent } from "../../src/engine/engine.ts";
import { RecoveryError } from "../../src/engine/errors.ts";
import { createGenesis } from "../../src/engine/genesis.ts";
import { verifyDataDir } from "../../src/engine/verify.ts";
import { createGenesisState, orchestratorMachine } from "../../src/domain/index.ts";
import { FileSnapshotStore, snapshotFileName } from "../../src/storage/snapshot-store.ts";
import { NodeFileSystem } from "../../src/storage/node-fs.ts";
import { openSwoosh, startTicker } from "../../src/index.ts";
import { Ticker } from "../../src/engine/ticker.ts";
import type { OrchestratorState, SwooshOptions } from "../../src/index.ts";
import { tempDirsRemovedAtEnd } from "../support/engine-fixtures.ts";
import { longestStallMs } from "../support/event-loop-stall.ts";

const dataDir = tempDirsRemovedAtEnd();

const open = (dir: string, options: Partial<SwooshOptions> = {}) => openSwoosh({ dataDir: dir, snapshotEvery: 0, onFatal: () => undefined, ...options });

/** An engine on a new dir after `tasks` task.submits and a snapshot that, the only one kept, let the WAL go below its index. */
async function truncatedAfter(tasks: number) {
  const dir = await dataDir();
  const engine = await open(dir, { snapshotsKept: 1 });
  for (let i = 0; i < tasks; i++) await engine.submit({ type: "task.submit", payload: { taskId: `t${i}`, kind: "k" } });
  await engine.snapshot();
  return { dir, engine };
}

/** Flips one byte in the middle of snapshot `index`'s file: it no longer verifies. */
async function flipSnapshotByte(snapshotDir: string, index: number): Promise<void> {
  const file = path.join(snapshotDir, snapshotFileName(index));
  const bytes = await readFile(file);
  const at = Math.floor(bytes.length / 2);
  bytes[at] = bytes[at] === 0x30 ? 0x31 : 0x30;
  await writeFile(file, bytes);
}

/** Runs `change` and expects the strict-mode TypeError of writing to a frozen object. */
function refusesChange(change: () => void, what: string): void {
  assert.throws(change, TypeError, what);
}

describe("engine as a library", () => {
  it("hands out results, events, state reads and duplicates frozen: changing them cannot change the state", async () => {
    const dir = await dataDir();
    const engine = await open(dir);
    const events: AppliedEvent[] = [];
    // A read-only listener (as the server's) beside it does not turn freezing off for this one.
    engine.subscribe(() => undefined, { readOnly: true });
    engine.subscribe((event) => events.push(event));
    await engine.submit({ type: "agent.register", payload: { agentId: "a1", labels: ["linux"] } });
    await engine.submit({ type: "task.submit", payload: { taskId: "t1", kind: "build", payload: { repo: "x", args: ["-v"] } } });
    const claim = await engine.submit({ type: "task.claim", payload: { agentId: "a1" } }, undefined);
    const first = await engine.submit({ type: "task.submit", payload: { taskId: "t2", kind: "build" }, id: "c-1" });
    const hash = await engine.stateHash();

    // The result is typed by the command's type (openSwoosh's Swoosh): leases without a cast, the payload as JSON.
    const lease = claim.result.leases[0] as unknown as { payload: { repo: string; args: string[] } };
    refusesChange(() => ((lease as { payload: { repo: string } }).payload.repo = "HACKED"), "a claim's payload");
    refusesChange(() => (lease as { payload: { args: string[] } }).payload.args.push("--evil"), "an array in it");
    const { state } = await engine.readState();
    const tasks = state.tasks as Record<string, { status: string; payload: { repo: string } }>;
    refusesChange(() => ((tasks.t1 as { status: string }).status = "succeeded"), "a record of a state read");
    refusesChange(() => (((tasks.t1 as { payload: { repo: string } }).payload.repo = "HACKED")), "a payload in it");
    refusesChange(() => (state.agents as Record<string, { labels: string[] }>).a1?.labels.push("zzz"), "an agent's labels");
    refusesChange(() => ((events[1]?.payload as { payload: { repo: string } }).payload.repo = "HACKED"), "an event's payload");
    refusesChange(() => ((first.result as { created: unknown }).created = "MUTATED"), "a result");
    // The copies of the top two levels are the caller's own: changing them touches nothing.
    delete (state.tasks as Record<string, unknown>).t1;

    const again = await engine.submit({ type: "task.submit", payload: { taskId: "t2", kind: "build" }, id: "c-1" });
    assert.equal(again.duplicate, true);
    assert.deepEqual(again.result, { created: true, status: "queued", taskId: "t2" });
    refusesChange(() => ((again.result as { created: unknown }).created = "MUTATED"), "a duplicate's result");
    assert.equal(await engine.stateHash(), hash);
    await engine.snapshot();
    await engine.close();
    const reopened = await open(dir);
    assert.equal(await reopened.stateHash(), hash, "the snapshot and the replay agree");
    const afterRestart = await reopened.submit({ type: "task.submit", payload: { taskId: "t2", kind: "build" }, id: "c-1" });
    refusesChange(() => ((afterRestart.result as { created: unknown }).created = "MUTATED"), "a duplicate's result read back from a snapshot");
    await reopened.close();
  });

  it("keeps using the directory a relative dataDir named at open, after the process changes its working directory", async () => {
    const root = await dataDir();
    const [cwd1, cwd2] = [path.join(root, "cwd1"), path.join(root, "cwd2")];
    await Promise.all([mkdir(cwd1), mkdir(cwd2)]);
    const startCwd = process.cwd();
    try {
      process.chdir(cwd1);
      const engine = await open("rel", { snapshotsKept: 1 });
      for (let i = 0; i < 3; i++) await engine.submit({ type: "agent.register", payload: { agentId: `a${i}` } });
      process.chdir(cwd2);
      for (let i = 0; i < 3; i++) await engine.submit({ type: "agent.register", payload: { agentId: `b${i}` } });
      await engine.snapshot();
      await engine.close();
      assert.deepEqual(await readdir(cwd2), [], "nothing was written under the new working directory");
      process.chdir(cwd1);
      const reopened = await open("rel");
      // The state's shape, as the library exports it (SPEC §5).
      const state = (await reopened.readState()).state as unknown as OrchestratorState;
      assert.equal(Object.keys(state.agents).length, 6);
      await reopened.close();
    } finally {
      process.chdir(startCwd);
    }
  });

  it("isolates a listener that throws: the others see every event and the engine goes on", async () => {
    const dir = await dataDir();
    const listenerErrors: Error[] = [];
    const engine = await open(dir, { onListenerError: (error) => listenerErrors.push(error) });
    engine.subscribe((event) => {
      if (event.index === 2) throw new Error("listener bug");
    });
    const seen: number[] = [];
    engine.subscribe((event) => seen.push(event.index));
    engine.onFlush(() => {
      throw new Error("flush listener bug");
    });
    await Promise.all([0, 1, 2].map((i) => engine.submit({ type: "agent.register", payload: { agentId: `a${i}` } })));
    for (let i = 3; i < 6; i++) await engine.submit({ type: "agent.register", payload: { agentId: `a${i}` } });
    assert.deepEqual(seen, [1, 2, 3, 4, 5, 6]);
    assert.ok(listenerErrors.some((error) => error.message === "listener bug"));
    assert.ok(listenerErrors.some((error) => error.message === "flush listener bug"));
    await engine.close();
  });

  it("close() twice: the second resolves once the first is done, and the dir opens again", async () => {
    const dir = await dataDir();
    const engine = await open(dir);
    const inFlight = Array.from({ length: 50 }, (_, i) => engine.submit({ type: "agent.register", payload: { agentId: `a${i}` } }));
    const first = engine.close({ snapshot: true });
    await engine.close();
    // Resolved only once the first close is done: the lock is free at once.
    const reopened = await open(dir);
    await Promise.all([first, ...inFlight]);
    assert.equal(Object.keys((await reopened.readState()).state.agents as object).length, 50);
    await reopened.close();
    // Closed: reads of its log are `unavailable`, as writes are.
    for (const read of [reopened.readLog(1, 10), reopened.stateAt(1), reopened.submit({ type: "agent.register", payload: { agentId: "late" } })]) {
      await assert.rejects(read, (error: unknown) => error instanceof SwooshError && error.code === "unavailable");
    }
  });

  it("refuses the same data dir opened again through a symlink, and leaves the first engine's LOCK alone", async () => {
    const root = await dataDir();
    const real = path.join(root, "real");
    const engine = await open(real);
    await symlink(real, path.join(root, "link"));
    await assert.rejects(open(path.join(root, "link")), (error: unknown) => error instanceof SwooshError && error.code === "unavailable");
    assert.ok((await readdir(real)).includes("LOCK"));
    await engine.submit({ type: "agent.register", payload: { agentId: "a" } });
    await engine.close();
  });

  it("startTicker lets an embedded engine's leases expire, as the server's own ticks do", async () => {
    const dir = await dataDir();
    const engine = await open(dir);
    await engine.submit({ type: "orchestrator.configure", payload: { leaseTtlMs: 200 } });
    await engine.submit({ type: "agent.register", payload: { agentId: "a" } });
    await engine.submit({ type: "task.submit", payload: { taskId: "t", kind: "k" } });
    await engine.submit({ type: "task.claim", payload: { agentId: "a" } });
    const ticker = startTicker(engine);
    const status = async () => ((await engine.readState()).state.tasks as Record<string, { status: string }>).t?.status;
    const deadline = Date.now() + 5000;
    while ((await status()) === "leased" && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    await ticker.stop();
    assert.equal(await status(), "queued", "the lease expired through a logged tick");
    assert.ok((await engine.readLog(1, 100)).some((entry) => entry.type === "system.tick"));
    await engine.close();
  });

  it("the ticker wakes for a deadline a command sets before its next look: a retry due in 1 ms is not left for the next round", async (t) => {
    const dir = await dataDir();
    const engine = await open(dir);
    await engine.submit({ type: "orchestrator.configure", payload: { backoffBaseMs: 1, backoffMaxMs: 1 } });
    await engine.submit({ type: "agent.register", payload: { agentId: "a" } });
    await engine.submit({ type: "task.submit", payload: { taskId: "t", kind: "k" } });
    const claim = await engine.submit({ type: "task.claim", payload: { agentId: "a" } });
    const token = claim.result.leases[0]?.token ?? -1;
    // Looks every 20 s at most: only the fail's own deadline can bring the tick sooner.
    const ticker = startTicker(engine, { settings: { checkIntervalMaxMs: 20_000, checkIntervalMinMs: 10 } });
    t.after(() => ticker.stop());
    // The ticker has looked (the lease's deadline is 30 s away) and sleeps.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const ticked = new Promise<number>((resolve) => engine.subscribe((event) => event.type === "system.tick" && resolve(Date.now()), { readOnly: true }));
    const failedAt = Date.now();
    const failed = await engine.submit({ type: "task.fail", payload: { taskId: "t", token, error: { message: "flaky" } } });
    assert.equal(failed.result.status, "queued");
    const tickedAt = await Promise.race([ticked, new Promise<number>((resolve) => setTimeout(() => resolve(Number.POSITIVE_INFINITY), 5000))]);
    assert.ok(tickedAt - failedAt < 5000, "a tick came for the retry's deadline, not 20 s later");
    await ticker.stop();
    const again = await engine.submit({ type: "task.claim", payload: { agentId: "a" } });
    assert.equal(again.result.leases[0]?.attempt, 2, "the retry is claimable");
    await engine.close();
  });

  it("the ticker's early wake-up leaves no timer behind to cut its next wait short", async (t) => {
    const dir = await dataDir();
    const engine = await open(dir);
    await engine.submit({ type: "agent.register", payload: { agentId: "a" } });
    await engine.submit({ type: "task.submit", payload: { taskId: "t", kind: "k" } });
    await engine.submit({ type: "task.claim", payload: { agentId: "a" } });
    // Every look the ticker takes at the next deadline is a read.
    const looks: number[] = [];
    const counted = new Proxy(engine, {
      get(target, property, receiver) {
        if (property === "read") return (reader: Parameters<typeof engine.read>[0]) => (looks.push(performance.now()), target.read(reader));
        const value: unknown = Reflect.get(target, property, receiver);
        return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
    const ticker = new Ticker(counted, undefined, { checkIntervalMaxMs: 1500, checkIntervalMinMs: 10 });
    ticker.start();
    t.after(() => ticker.stop());
    await new Promise((resolve) => setTimeout(resolve, 200));
    // A configuration change wakes it (deadlines may move): it looks, then waits 1.5 s from then.
    const wokenAt = performance.now();
    await engine.submit({ type: "orchestrator.configure", payload: { heartbeatTimeoutMs: 60_000 } });
    await new Promise((resolve) => setTimeout(resolve, 1700));
    await ticker.stop();
    const after = looks.filter((at) => at > wokenAt).map((at) => Math.round(at - wokenAt));
    assert.ok(after.length >= 1, "it looked when woken");
    assert.ok(after.slice(1).every((offset) => offset >= 1400), `looks after the wake-up at +${after.join(", +")} ms: none before its 1.5 s wait ends`);
    await engine.close();
  });

  it("keeps claim outcomes for duplicates only up to their payloads' weight bound, oldest out first, alike after a restart", async () => {
    const dir = await dataDir();
    const retention = { countMax: 100_000, retentionMs: 86_400_000, weightMax: 350_000 };
    const engine = await open(dir, { outcomeRetention: retention });
    await engine.submit({ type: "agent.register", payload: { agentId: "a", capacity: 100 } });
    const big = "p".repeat(100_000);
    const claimWithId = (i: number) => engine.submit({ type: "task.claim", payload: { agentId: "a" }, id: `claim-${i}` });
    for (let i = 1; i <= 4; i++) {
      await engine.submit({ type: "task.submit", payload: { taskId: `t${i}`, kind: "k", payload: big } });
      assert.equal((await claimWithId(i)).duplicate, undefined);
    }
    // Four claims of ~100,000 characters each pass 350,000: the first one's outcome is gone.
    for (let i = 2; i <= 4; i++) assert.equal((await claimWithId(i)).duplicate, true, `claim-${i} is still remembered`);
    await engine.snapshot();
    await engine.close();
    const reopened = await open(dir, { outcomeRetention: retention });
    for (let i = 2; i <= 4; i++) assert.equal((await reopened.submit({ type: "task.claim", payload: { agentId: "a" }, id: `claim-${i}` })).duplicate, true);
    const again = await reopened.submit({ type: "task.claim", payload: { agentId: "a" }, id: "claim-1" });
    assert.equal(again.duplicate, undefined, "the evicted id applies again (nothing left to claim)");
    assert.deepEqual(again.result, { leases: [] });
    await reopened.close();
  });

  it("readLog refuses a from the log no longer holds (history_pruned, as GET /log) and bad arguments, instead of a page from later on", async () => {
    const { engine } = await truncatedAfter(23);
    assert.equal(engine.firstLogIndex, 23);
    for (const from of [1, 22]) await assert.rejects(engine.readLog(from, 5), { code: "history_pruned", details: { index: from, firstIndex: 23 } });
    assert.deepEqual((await engine.readLog(23, 5)).map((entry) => entry.index), [23]);
    assert.deepEqual(await engine.readLog(24, 5), [], "past the end: no entries");
    assert.deepEqual(await engine.readLog(23, 0), []);
    for (const [from, limit] of [[0, 5], [-3, 5], [Number.NaN, 5], [1.5, 5], [23, -1], [23, 2.5], [23, Number.NaN]] as const) {
      await assert.rejects(engine.readLog(from, limit), { code: "bad_request" }, `readLog(${from}, ${limit})`);
    }
    await engine.close();
  });

  it("says the snapshots are gone when a data dir whose WAL was truncated has none left, rather than only that none verifies", async () => {
    const { dir, engine } = await truncatedAfter(5);
    await engine.close({ snapshot: false });
    await rm(path.join(dir, "snapshots"), { recursive: true });
    await assert.rejects(open(dir), (error: unknown) => error instanceof RecoveryError && /no snapshot verifies \(there is no snapshot in .*snapshots\) and the WAL .* starts at 5/.test(error.message));
  });

  it("refuses an unknown envelope field as the HTTP API does, and stamps with a clock that returns fractions", async () => {
    const dir = await dataDir();
    const engine = await open(dir, { clock: { nowMs: () => 1_700_000_000_000.6 } });
    try {
      const misspelt = { type: "task.submit", payload: { taskId: "t1", kind: "build" }, ID: "c-1" };
      await assert.rejects(
        engine.submit(misspelt as never),
        (error: unknown) => error instanceof SwooshError && error.code === "bad_request" && /unknown command field "ID"/.test(error.message),
      );
      assert.equal(engine.stats().appliedIndex, 0, "nothing was applied");
      // A payload that is not JSON the server can hold: details.path is the pointer from the payload's root, as for a schema refusal.
      await assert.rejects(
        engine.submit({ type: "task.submit", payload: { taskId: "t0", kind: "build", payload: { a: ["\ud800"] } } }),
        (error: unknown) => error instanceof SwooshError && error.code === "bad_request" && JSON.stringify(error.details) === JSON.stringify({ path: "/payload/a/0", message: "string holds a lone surrogate" }),
      );
      const submitted = await engine.submit({ type: "task.submit", payload: { taskId: "t1", kind: "build" }, id: "c-1" });
      assert.equal(submitted.index, 1);
      assert.match(submitted.hlc, /^001700000000000-\d{10}-/, "the fraction is cut off");
    } finally {
      await engine.close();
    }
  });

  it("writes no default genesis into a data dir that holds snapshots or a WAL but lost its genesis.json", async () => {
    const dir = await dataDir();
    const engine = await open(dir, { snapshotEvery: 0 });
    await engine.submit({ type: "agent.register", payload: { agentId: "a1" } });
    await engine.snapshot();
    await engine.close();
    await rm(path.join(dir, "genesis.json"));
    await assert.rejects(open(dir), (error: unknown) => error instanceof RecoveryError && /has a WAL and snapshots but no genesis file/.test(error.message));
    assert.equal(existsSync(path.join(dir, "genesis.json")), false, "nothing was written");
    await rm(path.join(dir, "wal"), { recursive: true });
    await assert.rejects(open(dir), RecoveryError, "snapshots alone");
    assert.equal(existsSync(path.join(dir, "genesis.json")), false);
  });

  it("keeps the snapshot it recovered from, and the WAL after it, while newer ones it passed over stay", async () => {
    const dir = await dataDir();
    const snapshotDir = path.join(dir, "snapshots");
    const damage = (index: number) => flipSnapshotByte(snapshotDir, index);
    let engine = await open(dir);
    for (let i = 0; i < 4; i++) {
      await engine.submit({ type: "agent.register", payload: { agentId: `a${i}` } });
      await engine.snapshot();
    }
    await engine.close();
    assert.deepEqual(await readdir(snapshotDir).then((names) => names.length), 3);
    // The two newest are damaged: recovery starts from index 2.
    await damage(4);
    await damage(3);
    engine = await open(dir);
    assert.equal(engine.stats().lastSnapshotIndex, 2);
    await engine.submit({ type: "agent.register", payload: { agentId: "b" } });
    await engine.snapshot();
    await engine.close();
    // Snapshot 2 and the WAL after it are still there: damaging the newest snapshot too still recovers everything.
    await damage(5);
    engine = await open(dir);
    assert.equal(engine.stats().appliedIndex, 5);
    assert.equal(engine.stats().lastSnapshotIndex, 2);
    // Once three usable snapshots are newer, the damaged ones go.
    for (let i = 0; i < 3; i++) {
      await engine.submit({ type: "agent.register", payload: { agentId: `c${i}` } });
      await engine.snapshot();
    }
    await engine.close();
    assert.deepEqual((await readdir(snapshotDir)).sort(), [6, 7, 8].map((index) => `snapshot-${String(index).padStart(20, "0")}.json`));
  });

  it("lets timers and signals run while recovery replays a long WAL", async () => {
    const dir = await dataDir();
    let engine = await open(dir);
    for (let i = 0; i < 40_000; i += 1000) {
      await Promise.all(Array.from({ length: 1000 }, (_, j) => engine.submit({ type: "task.submit", payload: { taskId: `t${i + j}`, kind: "k" } })));
    }
    await engine.close({ snapshot: false });
    const started = performance.now();
    const longestGapMs = await longestStallMs(async () => {
      engine = await open(dir);
    });
    const openMs = performance.now() - started;
    assert.equal(engine.stats().appliedIndex, 40_000);
    await engine.close({ snapshot: false });
    // Before: the replay held the event loop from start to end (a gap as long as the open).
    assert.ok(longestGapMs < Math.max(100, openMs / 3), `longest gap ${longestGapMs.toFixed(0)} ms in an open of ${openMs.toFixed(0)} ms`);
  });

  it("refuses a genesis.json replaced by another valid genesis of the same cluster, naming it, while the WAL holds entry 1", async () => {
    const dir = await dataDir();
    const engine = await open(dir, { genesis: createGenesis("c1", createGenesisState({ clusterId: "c1" }), "2026-11-30T00:00:00.000Z") });
    await engine.submit({ type: "agent.register", payload: { agentId: "a1" } });
    await engine.close({ snapshot: false });
    const other = createGenesis("c1", createGenesisState({ clusterId: "c1", config: { leaseTtlMs: 5000 } }), "2026-11-30T00:00:00.000Z");
    await writeFile(path.join(dir, "genesis.json"), JSON.stringify(other));
    await assert.rejects(open(dir), (error: unknown) => error instanceof RecoveryError && error.message.includes("genesis.json does not belong") && /entry 1 follows another genesis/.test(error.message));
    const report = await verifyDataDir({ dataDir: dir, machine: orchestratorMachine });
    assert.equal(report.ok, false);
    assert.deepEqual(
      report.problems.map((problem) => path.basename(problem.file)),
      ["genesis.json"],
      "verify names genesis.json, not the WAL",
    );
  });

  it("names the file that is wrong: a junk snapshot past the WAL, a foreign snapshot verify starts from; ignores a name past 2^53", async () => {
    const base = await dataDir();
    const submitN = async (engine: Awaited<ReturnType<typeof open>>, prefix: string, n: number) => {
      for (let i = 0; i < n; i++) await engine.submit({ type: "agent.register", payload: { agentId: `${prefix}${i}` } });
    };
    let engine = await open(base);
    await submitN(engine, "s", 5);
    await engine.close({ snapshot: false });
    const mine = await dataDir();
    const theirs = await dataDir();
    await cp(base, mine, { recursive: true });
    await cp(base, theirs, { recursive: true });
    engine = await open(theirs);
    await submitN(engine, "theirs-", 10);
    await engine.snapshot();
    await engine.close({ snapshot: false });
    engine = await open(mine);
    for (let round = 0; round < 4; round++) {
      await submitN(engine, `mine-${round}-`, 5);
      if (round > 0) await engine.snapshot();
    }
    await engine.close({ snapshot: false });
    const snapshotName = (index: number) => `snapshot-${String(index).padStart(20, "0")}.json`;
    assert.deepEqual((await readdir(path.join(mine, "snapshots"))).sort(), [15, 20, 25].map(snapshotName));
    await cp(path.join(theirs, "snapshots", snapshotName(15)), path.join(mine, "snapshots", snapshotName(15)));
    await writeFile(path.join(mine, "snapshots", "snapshot-99999999999999999999.json"), "{}");
    const report = await verifyDataDir({ dataDir: mine, machine: orchestratorMachine });
    assert.deepEqual(
      report.problems.map((problem) => path.basename(problem.file)),
      [snapshotName(15)],
      "the foreign snapshot is named (not the WAL entry after it); the name past 2^53 is no snapshot",
    );
    engine = await open(mine);
    assert.equal(engine.stats().appliedIndex, 25);
    await engine.close({ snapshot: false });
    // A junk file named as a snapshot past the WAL: refused (it may prove the WAL lost entries), and said to be junk itself.
    await writeFile(path.join(mine, "snapshots", snapshotName(40)), "junk");
    await assert.rejects(open(mine), (error: unknown) => error instanceof RecoveryError && /behind snapshot 40/.test(error.message) && /the snapshot itself does not verify either/.test(error.message));
  });

  it("does not count an older snapshot recovery never read among the K kept: damaged, it would have been the only base left", async () => {
    const dir = await dataDir();
    const snapshotDir = path.join(dir, "snapshots");
    const damage = (index: number) => flipSnapshotByte(snapshotDir, index);
    const registerAndSnapshot = async (engine: Awaited<ReturnType<typeof open>>, agentId: string) => {
      await engine.submit({ type: "agent.register", payload: { agentId } });
      await engine.snapshot();
    };
    let engine = await open(dir);
    for (let i = 1; i <= 4; i++) await registerAndSnapshot(engine, `a${i}`);
    await engine.close();
    assert.deepEqual((await readdir(snapshotDir)).sort(), [2, 3, 4].map(snapshotFileName));
    // Damaged where no one looks: recovery starts from 4 and never reads 3.
    await damage(3);
    engine = await open(dir);
    assert.equal(engine.stats().lastSnapshotIndex, 4);
    await registerAndSnapshot(engine, "b");
    await engine.close();
    // Counted as usable, 3 had stayed as the oldest of three and 2 gone, with the WAL cut to 3: now 5 and 4 damaged too left nothing to start from.
    await damage(5);
    await damage(4);
    engine = await open(dir);
    assert.equal(engine.stats().appliedIndex, 5, "every command recovered");
    assert.equal(engine.stats().lastSnapshotIndex, 2, "from the oldest snapshot, kept because the ones above it were not known to load");
    // Once three snapshots known to load are there, the rest goes.
    for (let i = 1; i <= 3; i++) await registerAndSnapshot(engine, `c${i}`);
    await engine.close();
    assert.deepEqual((await readdir(snapshotDir)).sort(), [6, 7, 8].map(snapshotFileName));
  });

  it("refuses a bad nodeId, clock or hook, or an unknown option, before writing anything (a plain JavaScript caller gets no type check)", async () => {
    const root = await dataDir();
    await assert.rejects(open(path.join(root, "d"), { nodeId: "bad id" }), RangeError);
    const untyped = (options: Record<string, unknown>) => open(path.join(root, "d"), options as Partial<SwooshOptions>);
    await assert.rejects(untyped({ nodeId: 5 }), RangeError);
    for (const clock of [5, {}, { nowMs: 5 }]) await assert.rejects(untyped({ clock }), /clock must be an object with a nowMs\(\) method/);
    for (const hook of ["onFatal", "onSnapshotError", "onListenerError", "onSkippedSnapshot", "onOldWalDamage"]) await assert.rejects(untyped({ [hook]: "x" }), new RegExp(`${hook} must be a function`));
    // A misspelt option is refused, not left at its default without a word.
    await assert.rejects(untyped({ snapshotEvry: 5, __proto__x: 1 }), { name: "TypeError", message: 'unknown option "snapshotEvry", "__proto__x"' });
    assert.deepEqual(await readdir(root), []);
  });

  it("refuses a dataDir that is a file, or lies under one, naming both paths, before writing anything", async () => {
    const root = await dataDir();
    const file = path.join(root, "file");
    await writeFile(file, "not a dir\n");
    await assert.rejects(open(file), (error: unknown) => {
      assert.ok(error instanceof SwooshError, String(error));
      assert.equal(error.code, "bad_request");
      assert.equal(error.message, `data dir ${file} is not a directory: a file is in its place`);
      return true;
    });
    const under = path.join(file, "sub", "deeper");
    await assert.rejects(open(under), (error: unknown) => {
      assert.ok(error instanceof SwooshError, String(error));
      assert.equal(error.message, `data dir ${under} cannot be a directory: ${file} on its path is a file`);
      return true;
    });
    assert.deepEqual(await readdir(root), ["file"]);
    assert.equal(await readFile(file, "utf8"), "not a dir\n");
  });

  it("refuses a payload with a symbol-keyed member (JSON would drop it without a word), logging nothing", async () => {
    const dir = await dataDir();
    const engine = await open(dir);
    const payload = { taskId: "t", kind: "k", payload: { [Symbol("x")]: 1, a: 1 } };
    await assert.rejects(engine.submit({ type: "task.submit", payload }), (error: unknown) => error instanceof SwooshError && error.code === "bad_request" && /symbol keys/.test(error.message));
    assert.equal(engine.stats().durableIndex, 0);
    await engine.close();
  });

  it("passes over a snapshot whose hashes verify but whose state does not load, and replays from an older one", async () => {
    const dir = await dataDir();
    const engine = await open(dir);
    await engine.submit({ type: "agent.register", payload: { agentId: "a" } });
    await engine.snapshot();
    await engine.submit({ type: "agent.register", payload: { agentId: "b" } });
    const [entry] = await engine.readLog(2, 1);
    const hash = await engine.stateHash();
    await engine.close();
    // A snapshot at index 2 as a bug might write it: hashed and sealed, naming the right WAL entry, but no orchestrator state.
    const store = new FileSnapshotStore(new NodeFileSystem(), path.join(dir, "snapshots"));
    const { clusterId, genesisStateHash = "", genesisTime = "", outcomes } = await store.load(1);
    await store.save({ clusterId, genesisStateHash, genesisTime, lastAppliedIndex: 2, lastAppliedHlc: entry?.hlc ?? "", logHash: entry?.hash ?? "", outcomes }, ['{"foo":1}']);
    const skipped: string[] = [];
    const reopened = await open(dir, { onSkippedSnapshot: (problem) => skipped.push(problem.detail) });
    assert.equal(await reopened.stateHash(), hash);
    assert.ok(skipped.some((detail) => /does not load/.test(detail)), JSON.stringify(skipped));
    await reopened.close();
  });

  it("types submit by the command's type: a wrong payload does not compile, a result needs no cast, a run-time type still goes through", async () => {
    const engine = await open(await dataDir());
    // The type-check (npm run typecheck, in CI) fails if these stop being errors; at run time the engine refuses them as ever.
    // @ts-expect-error -- task.submit needs a kind
    await assert.rejects(engine.submit({ type: "task.submit", payload: { taskId: "t1" } }), (error: unknown) => error instanceof SwooshError && error.code === "bad_request");
    // @ts-expect-error -- a claim's limit is a number
    await assert.rejects(engine.submit({ type: "task.claim", payload: { agentId: "a1", limit: "2" } }), (error: unknown) => error instanceof SwooshError && error.code === "bad_request");

    await engine.submit({ type: "agent.register", payload: { agentId: "a1", capacity: 2 } });
    const submitted = await engine.submit({ type: "task.submit", payload: { taskId: "t1", kind: "build", payload: { n: 1 } } });
    const status: "queued" | "blocked" | "cancelled" | string = submitted.result.status;
    assert.equal(status, "queued");
    const claimed = await engine.submit({ type: "task.claim", payload: { agentId: "a1" } });
    const token: number = claimed.result.leases[0]?.token ?? -1;
    assert.ok(token > 0);
    const completed = await engine.submit({ type: "task.complete", payload: { taskId: "t1", token, result: { ok: true } } });
    assert.equal(completed.result.status, "succeeded");

    // A type only known at run time (read from a file, say) takes the untyped overload; the result is plain JSON.
    const type: string = ["task", "cancel"].join(".");
    const cancelled = await engine.submit({ type, payload: { taskId: "t1" } }).catch((error: unknown) => error);
    assert.ok(cancelled instanceof SwooshError, "cancelling a finished task is refused at run time");
    await engine.close();
  });
});
