/**
 * The server's life: graceful close finishes in-flight commands and snapshots;
 * a failed WAL flush answers 503 to everything and calls onFatal; the server
 * ticks by itself to expire leases (and not while halted); the data dir LOCK
 * is held while open and released by close.
 */
import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import { describe, it } from "node:test";
import type { LogRecord } from "../../src/core/log-record.ts";
import type { OrchestratorModel } from "../../src/domain/index.ts";
import type { Engine } from "../../src/engine/engine.ts";
import { initializeDataDir } from "../../src/engine/open.ts";
import { defaultGenesis, openSwoosh } from "../../src/index.ts";
import type { SwooshOptions } from "../../src/index.ts";
import { startServer } from "../../src/server/index.ts";
import { LmdbCommandLog } from "../../src/storage/lmdb-log.ts";
import { NodeFileSystem } from "../../src/storage/node-fs.ts";
import type { CommandLog } from "../../src/storage/types.ts";
import { FaultyLog, tempDirClosedFirst } from "../support/engine-fixtures.ts";
import { command, eventually, get, metricValue, startTestServer } from "./helpers.ts";

/** A log whose appends wait `delayMs` first: keeps commands in flight on purpose. */
class DelayedLog extends FaultyLog {
  delayMs = 0;
  override async append(records: readonly LogRecord[]): Promise<void> {
    if (this.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.delayMs));
    return super.append(records);
  }
}

/** An engine opener (the ServerOptions.openEngine seam) around a wrapped LMDB log. */
function wrappedOpener<L extends CommandLog>(wrap: (inner: CommandLog) => L): { open: (options: SwooshOptions) => Promise<Engine<OrchestratorModel>>; log: () => L; engine: () => Engine<OrchestratorModel> } {
  let log: L | null = null;
  let engine: Engine<OrchestratorModel> | null = null;
  return {
    async open(options) {
      const genesis = defaultGenesis("wrapped");
      // The WAL directory may only exist beside a genesis file: write that first.
      await initializeDataDir(new NodeFileSystem(), options.dataDir, genesis);
      log = wrap(await LmdbCommandLog.open(path.join(options.dataDir, "wal")));
      engine = await openSwoosh({ ...options, genesis, log });
      return engine;
    },
    log: () => log as L,
    engine: () => engine as Engine<OrchestratorModel>,
  };
}

describe("server: lifecycle", () => {
  it("close() lets in-flight commands finish, refuses new ones, snapshots, and releases the data dir", async (t) => {
    const { dir, closeFirst } = await tempDirClosedFirst(t, "swoosh-server-");
    const opener = wrappedOpener((inner) => new DelayedLog(inner));
    const server = await startServer({ dataDir: dir, port: 0, logger: false, onFatal: () => undefined, openEngine: opener.open });
    closeFirst(() => server.close());
    assert.equal((await command(server.url, "agent.register", { agentId: "a" })).status, 200);

    // A second server on the same data dir is refused while the first holds it.
    await assert.rejects(startServer({ dataDir: dir, port: 0, logger: false, onFatal: () => undefined }));

    opener.log().delayMs = 300;
    const inFlight = Array.from({ length: 10 }, (_, i) => command(server.url, "task.submit", { taskId: `t${i}`, kind: "k" }));
    await eventually(() => (opener.engine().stats().appliedIndex === 11 ? true : undefined), 5000, "all commands received");
    const closing = server.close();
    const late = await get(server.url, "/state").catch(() => null);
    assert.ok(late === null || late.status === 503, `a request after close() began is refused (${late?.status})`);
    const answers = await Promise.all(inFlight);
    assert.deepEqual(
      answers.map((answer) => answer.status),
      Array(10).fill(200),
    );
    assert.deepEqual(answers.map((answer) => answer.body.index).sort((a, b) => a - b), [2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    await closing;
    await assert.rejects(get(server.url, "/healthz"), "no longer listening");
    assert.ok((await readdir(path.join(dir, "snapshots"))).includes(`snapshot-${String(11).padStart(20, "0")}.json`), "final snapshot");

    // The LOCK is released: a new server recovers everything that was acknowledged.
    const reopened = await startTestServer(t, {}, dir);
    assert.equal(reopened.server.recoveredIndex, 11);
    assert.equal((await get(reopened.url, "/tasks?limit=1000")).body.tasks.length, 10);
    // Closed here, not only by startTestServer's after hook: that one would run after the hook that removes dir.
    await reopened.close();
  });

  it("close() answers every request that reaches a keep-alive connection (200 or 503), and cuts a stalled client at the deadline", async (t) => {
    const { url, server } = await startTestServer(t, { shutdownDrain: { idleGraceMs: 300, deadlineMs: 1500 } });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 24 });
    t.after(() => agent.destroy());
    const outcomes = { ok: 0, refused: 0, broken: [] as string[] };
    let sending = true;
    let seq = 0;
    const post = () =>
      new Promise<void>((resolve) => {
        const body = JSON.stringify({ type: "task.submit", payload: { taskId: `t${seq++}`, kind: "k" } });
        const request = http.request(`${url}/command`, { method: "POST", agent, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) } }, (response) => {
          response.resume();
          response.on("end", () => {
            if (response.statusCode === 200) outcomes.ok += 1;
            else if (response.statusCode === 503) outcomes.refused += 1;
            else outcomes.broken.push(`HTTP ${response.statusCode}`);
            resolve();
          });
        });
        request.on("error", (error: NodeJS.ErrnoException) => {
          // Refused before it was sent (the listener is closed): the client knows nothing was applied.
          if (error.code !== "ECONNREFUSED") outcomes.broken.push(error.code ?? error.message);
          resolve();
        });
        request.end(body);
      });
    const writers = Array.from({ length: 24 }, async () => {
      while (sending) await post();
    });
    // A client that sent half its headers, and never the rest.
    const stalled = net.connect(Number(new URL(url).port), "127.0.0.1", () => stalled.write("GET /state HTTP/1.1\r\nHost: x\r\n"));
    stalled.on("error", () => undefined);
    await eventually(() => (outcomes.ok >= 300 ? true : undefined), 20_000, "the writers under way");
    const started = performance.now();
    await server.close();
    const closeMs = performance.now() - started;
    sending = false;
    await Promise.all(writers);
    assert.deepEqual(outcomes.broken, [], "no request was left without an answer");
    assert.ok(closeMs < 5000, `the stalled client was cut at the deadline (close took ${closeMs.toFixed(0)} ms)`);
  });

  it("a failed WAL flush answers 503 to in-flight and later requests and calls onFatal", async (t) => {
    const { dir, closeFirst } = await tempDirClosedFirst(t, "swoosh-server-");
    const opener = wrappedOpener((inner) => new FaultyLog(inner));
    const fatal: Error[] = [];
    const server = await startServer({ dataDir: dir, port: 0, logger: false, onFatal: (error) => fatal.push(error), openEngine: opener.open });
    closeFirst(() => server.close());
    assert.equal((await command(server.url, "agent.register", { agentId: "a" })).status, 200);

    opener.log().failNextAppend(new Error("injected: the disk is gone"));
    const answers = await Promise.all(Array.from({ length: 3 }, (_, i) => command(server.url, "agent.register", { agentId: `b${i}` })));
    for (const answer of answers) {
      assert.equal(answer.status, 503, answer.text);
      assert.equal(answer.body.error.code, "unavailable");
    }
    assert.equal(fatal.length, 1);
    assert.match(fatal[0]?.message ?? "", /injected/);
    for (const path of ["/state", "/readyz", "/tasks", "/log"]) assert.equal((await get(server.url, path)).status, 503, path);
    assert.equal((await command(server.url, "agent.register", { agentId: "c" })).status, 503);
    assert.equal((await get(server.url, "/healthz")).status, 200);
    await server.close();

    const reopened = await startTestServer(t, {}, dir);
    assert.equal(reopened.server.recoveredIndex, 1, "nothing unacknowledged was kept");
    // Closed here, not only by startTestServer's after hook: that one would run after the hook that removes dir.
    await reopened.close();
  });

  it("a restart from the final snapshot logs no tick for a backoff that already ended", async (t) => {
    const { dir, closeFirst } = await tempDirClosedFirst(t, "swoosh-server-");
    const first = await startTestServer(t, {}, dir);
    closeFirst(() => first.close());
    const ticks = async (url: string) => ((await get(url, "/log?limit=1000")).body.entries as Array<{ type: string }>).filter((entry) => entry.type === "system.tick").length;
    await command(first.url, "orchestrator.configure", { backoffBaseMs: 50, backoffMaxMs: 50 });
    await command(first.url, "agent.register", { agentId: "a" });
    await command(first.url, "task.submit", { taskId: "t", kind: "k" });
    const lease = (await command(first.url, "task.claim", { agentId: "a" })).body.result.leases[0];
    assert.equal((await command(first.url, "task.fail", { taskId: "t", token: lease.token, error: "flaky" })).status, 200);
    // The server ticks once when the backoff ends; then nothing is due.
    const ticked = await eventually(async () => ((await ticks(first.url)) >= 1 ? ticks(first.url) : undefined), 5000, "the backoff's tick");
    await first.close();

    // Restored from the final snapshot (taken after that tick): the ended backoff is no deadline.
    for (let restart = 0; restart < 2; restart++) {
      const again = await startTestServer(t, {}, dir);
      await new Promise((resolve) => setTimeout(resolve, 1300));
      const count = await ticks(again.url);
      await again.close();
      assert.equal(count, ticked, `restart ${restart + 1} logged a tick that changes nothing`);
    }
    const last = await startTestServer(t, {}, dir);
    assert.equal((await command(last.url, "task.claim", { agentId: "a" })).body.result.leases[0]?.taskId, "t", "the task is claimable at once");
    await last.close();
  });

  it("after a restart, swoosh_snapshot_age_seconds is the age of the snapshot recovery started from, not the time since the restart", async (t) => {
    const { dir, closeFirst } = await tempDirClosedFirst(t, "swoosh-server-");
    let nowMs = Date.UTC(2027, 0, 1);
    let engine: Engine<OrchestratorModel> | null = null;
    const openEngine = async (options: SwooshOptions) => (engine = await openSwoosh({ ...options, clock: { nowMs: () => nowMs } }));
    const first = await startTestServer(t, { openEngine }, dir);
    closeFirst(() => first.close());
    // No snapshot on disk yet: the age counts from when the engine opened.
    nowMs += 5_000;
    assert.equal(await metricValue(first.url, "swoosh_snapshot_age_seconds"), 5);
    await command(first.url, "agent.register", { agentId: "a" });
    nowMs += 60_000;
    // The final snapshot (index 1) holds a command stamped a minute before the shutdown.
    await first.close();

    nowMs += 3_600_000;
    const again = await startTestServer(t, { openEngine }, dir);
    assert.equal(await metricValue(again.url, "swoosh_snapshot_index"), 1);
    assert.equal(await metricValue(again.url, "swoosh_snapshot_age_seconds"), 3_660);
    nowMs += 10_000;
    assert.equal(await metricValue(again.url, "swoosh_snapshot_age_seconds"), 3_670);
    // A snapshot this process writes dates from its writing.
    const { index } = (await command(again.url, "agent.register", { agentId: "b" })).body;
    await (engine as Engine<OrchestratorModel> | null)?.snapshot();
    nowMs += 2_000;
    assert.ok((await metricValue(again.url, "swoosh_snapshot_index")) >= index);
    assert.equal(await metricValue(again.url, "swoosh_snapshot_age_seconds"), 2);
    await again.close();
  });

  it("ticks by itself when a lease expires, and not while halted", async (t) => {
    const { url } = await startTestServer(t);
    const ticks = async () => ((await get(url, "/log?limit=1000")).body.entries as Array<{ type: string }>).filter((entry) => entry.type === "system.tick").length;
    await command(url, "orchestrator.configure", { leaseTtlMs: 200 });
    await command(url, "agent.register", { agentId: "a" });
    await command(url, "task.submit", { taskId: "t", kind: "k" });
    assert.equal((await command(url, "task.claim", { agentId: "a" })).body.result.leases.length, 1);
    const requeued = await eventually(async () => {
      const task = (await get(url, "/tasks/t")).body;
      return task.status === "queued" ? task : undefined;
    }, 5000, "the lease to expire");
    assert.equal(requeued.attempts, 1);
    assert.equal(requeued.error.code, "lease_expired");
    const afterExpiry = await ticks();
    assert.ok(afterExpiry >= 1);
    // Nothing due: no more ticks (an idle orchestrator writes nothing).
    await new Promise((resolve) => setTimeout(resolve, 400));
    assert.equal(await ticks(), afterExpiry);

    // Halted: the lease outlives its expiry untouched and no tick is even tried.
    await command(url, "task.claim", { agentId: "a" });
    await command(url, "orchestrator.setPhase", { phase: "halted" });
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal((await get(url, "/tasks/t")).body.status, "leased");
    assert.equal(await ticks(), afterExpiry);
    assert.doesNotMatch((await get(url, "/metrics")).text, /swoosh_command_rejections_total\{code="invalid_transition"\}/);
    await command(url, "orchestrator.setPhase", { phase: "active" });
    await eventually(async () => ((await get(url, "/tasks/t")).body.status === "queued" ? true : undefined), 5000, "expiry after resuming");
  });
});
