/**
 * SwooshClient against a real server: every command and endpoint typed,
 * errors as SwooshApiError, batches answered per slot, paging iterators,
 * ETag polling, bearer auth, genesis initialization, and HLC propagation.
 */
import assert from "node:assert/strict";
import { getEventListeners } from "node:events";
import { describe, it } from "node:test";
import { SwooshApiError, SwooshClient } from "../../src/client/index.ts";
import { defaultGenesis } from "../../src/index.ts";
import { TestProxy, startTestServer } from "./helpers.ts";

async function rejectsWith(promise: Promise<unknown>, code: string, status: number): Promise<SwooshApiError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof SwooshApiError, `expected a SwooshApiError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    assert.equal(error.status, status);
    return error;
  }
  assert.fail(`expected ${code}`);
}

describe("SwooshClient", () => {
  it("covers the commands and the read endpoints, typed", async (t) => {
    const { url } = await startTestServer(t);
    const client = new SwooshClient({ url });

    const registered = await client.registerAgent({ agentId: "w1", labels: ["linux"], capacity: 2 });
    assert.equal(registered.result.created, true);
    assert.ok(registered.index >= 1);
    assert.equal((await client.submitTask({ taskId: "build", kind: "compile", payload: { ref: "main" } })).result.status, "queued");
    assert.equal((await client.submitTask({ taskId: "test", kind: "test", dependsOn: ["build"] })).result.status, "blocked");
    await client.submitTask({ taskId: "lint", kind: "lint", priority: -1 });

    const claim = await client.claim({ agentId: "w1", limit: 1 });
    const lease = claim.result.leases[0];
    assert.equal(lease?.taskId, "build");
    assert.deepEqual(lease?.payload, { ref: "main" });
    assert.equal((await client.heartbeat({ agentId: "w1" })).result.leases, 1);
    const done = await client.complete({ taskId: "build", token: lease.token, result: { artifact: "a.tgz" } });
    assert.deepEqual(done.result, { taskId: "build", status: "succeeded", unblocked: 1 });

    const build = await client.getTask("build");
    assert.equal(build.status, "succeeded");
    assert.deepEqual(build.result, { artifact: "a.tgz" });
    const queued = await client.listTasks({ status: ["queued", "blocked"] });
    assert.deepEqual(queued.tasks.map((task) => task.id).sort(), ["lint", "test"]);
    const all: string[] = [];
    for await (const task of client.iterateTasks({ limit: 1 })) all.push(task.id);
    assert.deepEqual(all, ["build", "lint", "test"]);
    assert.deepEqual((await client.listAgents()).agents.map((agent) => agent.id), ["w1"]);
    const agents: string[] = [];
    for await (const agent of client.iterateAgents({ status: "ready", limit: 1 })) agents.push(agent.id);
    assert.deepEqual(agents, ["w1"]);

    const log = await client.readLog({ limit: 3 });
    assert.equal(log.entries.length, 3);
    assert.equal(log.entries[0]?.type, "agent.register");

    const state = await client.getState();
    assert.equal(state.state.tasks.build?.status, "succeeded");
    assert.equal(await client.getState({ ifNoneMatch: state.stateHash }), null);
    const atOne = await client.getState({ at: 1 });
    assert.equal(atOne.index, 1);
    assert.deepEqual(Object.keys(atOne.state.tasks), []);

    assert.equal((await client.cancel({ taskId: "lint", reason: "not today" })).result.cancelled, 1);
    assert.equal((await client.drainAgent({ agentId: "w1" })).result.status, "draining");
    assert.equal((await client.configure({ backoffBaseMs: 10 })).result.config.backoffBaseMs, 10);
    assert.equal((await client.setPhase({ phase: "active" })).result.previous, "active");
    assert.equal((await client.prune({ before: Date.now() + 60_000, statuses: ["cancelled"] })).result.pruned, 1);
    assert.equal((await client.tick()).result.expired, 0);
    assert.equal((await client.removeAgent({ agentId: "w1" })).result.agentId, "w1");
    assert.equal((await client.command("agent.register", { agentId: "w2" })).result.created, true);

    assert.deepEqual(await client.healthz(), { status: "ok" });
    assert.equal((await client.readyz()).status, "ready");
    assert.match(await client.metrics(), /swoosh_commands_total/);
    const openapi = await client.openapi();
    assert.ok((openapi.paths as Record<string, unknown>)["/commands"]);
  });

  it("leaves nothing attached to a long-lived signal passed to many calls", async (t) => {
    const { url } = await startTestServer(t);
    const client = new SwooshClient({ url });
    const lifetime = new AbortController();
    for (let i = 0; i < 50; i++) await client.healthz({ signal: lifetime.signal });
    await client.commands([{ type: "agent.register", payload: { agentId: "a" } }], { signal: lifetime.signal });
    // AbortSignal.any kept an entry per request on it (never collected on Node 20): a worker passes one to every request.
    assert.equal(getEventListeners(lifetime.signal, "abort").length, 0);
    const dependants = Object.getOwnPropertySymbols(lifetime.signal).find((symbol) => symbol.description === "kDependantSignals");
    const kept = dependants === undefined ? undefined : (lifetime.signal as unknown as Record<symbol, Set<unknown> | undefined>)[dependants];
    assert.equal(kept?.size ?? 0, 0, "no signal derived from it is kept");
  });

  it("throws SwooshApiError with the SPEC code, the HTTP status and the details", async (t) => {
    const { url } = await startTestServer(t);
    const client = new SwooshClient({ url });
    await client.registerAgent({ agentId: "w" });
    await client.submitTask({ taskId: "t", kind: "k" });
    const stale = await rejectsWith(client.complete({ taskId: "t", token: 99 }), "stale_lease", 409);
    assert.deepEqual((stale.details as { taskId: string }).taskId, "t");
    assert.equal(stale.retryable, false);
    await rejectsWith(client.getTask("nope"), "unknown_task", 404);
    await rejectsWith(client.claim({ agentId: "ghost" }), "unknown_agent", 404);
    await rejectsWith(client.submitTask({ taskId: "t", kind: "other" }), "task_exists", 409);
    const bad = await rejectsWith(client.command("task.submit", { taskId: "x", kind: "" }), "bad_request", 400);
    assert.ok(bad.details);
    await rejectsWith(client.getState({ at: 1_000_000 }), "not_found", 404);
    // Same id again: the first outcome, marked duplicate, applied once.
    const first = await client.submitTask({ taskId: "d", kind: "k" }, { id: "submit-d" });
    const again = await client.submitTask({ taskId: "d", kind: "k" }, { id: "submit-d" });
    assert.equal(again.duplicate, true);
    assert.equal(again.index, first.index);
  });

  it("sends a batch in one request and answers each slot, typed by its command", async (t) => {
    const { url } = await startTestServer(t);
    const client = new SwooshClient({ url });
    const [register, submit, claim, stale] = await client.commands([
      { type: "agent.register", payload: { agentId: "w", capacity: 2 } },
      { type: "task.submit", payload: { taskId: "a", kind: "k" } },
      { type: "task.claim", payload: { agentId: "w", limit: 2 } },
      { type: "task.complete", payload: { taskId: "a", token: 12345 } },
    ]);
    assert.ok(register.ok && submit.ok && claim.ok);
    assert.equal(claim.result.leases[0]?.taskId, "a");
    assert.equal(claim.index, submit.index + 1);
    assert.ok(!stale.ok);
    assert.equal(stale.error.code, "stale_lease");
    assert.equal(stale.error.status, 409);
    // Every slot carried an id: resending with the same ids repeats the outcomes.
    const [repeat] = await client.commands([{ type: "task.claim", payload: { agentId: "w", limit: 2 }, id: claim.id }]);
    assert.ok(repeat.ok && repeat.duplicate === true);
    assert.deepEqual(repeat.result, claim.result);
  });

  it("answers an empty status filter with an empty page read at the current index, as a status list matches any of its statuses", async (t) => {
    const { url } = await startTestServer(t);
    const client = new SwooshClient({ url, retry: false });
    await client.submitTask({ taskId: "a", kind: "k" });
    const { index } = await client.submitTask({ taskId: "b", kind: "k", dependsOn: ["a"] });
    assert.deepEqual((await client.listTasks({ status: ["queued"] })).tasks.map((task) => task.id), ["a"]);
    assert.deepEqual(await client.listTasks({ status: [] }), { index, tasks: [], nextCursor: null });
    assert.deepEqual(await client.listTasks({ status: [], kind: "k", limit: 1 }), { index, tasks: [], nextCursor: null });
    const all: string[] = [];
    for await (const task of client.iterateTasks({ status: [], limit: 1 })) all.push(task.id);
    assert.deepEqual(all, []);
  });

  it("sends the bearer token; without it the server answers unauthorized", async (t) => {
    const { url } = await startTestServer(t, { token: "s3cret" });
    await rejectsWith(new SwooshClient({ url }).getState(), "unauthorized", 401);
    assert.deepEqual(await new SwooshClient({ url }).healthz(), { status: "ok" });
    const client = new SwooshClient({ url, token: "s3cret" });
    assert.equal((await client.registerAgent({ agentId: "w" })).result.created, true);
    const stream = client.watch({ from: 0 });
    const first = await stream.next();
    await stream.return();
    assert.equal(first.value?.type, "agent.register");
  });

  it("initializes a server awaiting its genesis (the same genesis twice is fine)", async (t) => {
    const { url } = await startTestServer(t, { awaitGenesis: true });
    const client = new SwooshClient({ url, retry: false });
    await rejectsWith(client.readyz(), "unavailable", 503);
    const genesis = defaultGenesis("client-test");
    assert.equal((await client.initialize(genesis)).created, true);
    assert.equal((await client.initialize(genesis)).created, false);
    assert.equal((await client.readyz()).genesisHash, genesis.stateHash);
  });

  it("sends back the greatest HLC it saw, and forgets one the server refuses as clock drift", async (t) => {
    const { url } = await startTestServer(t);
    const proxy = await TestProxy.start(t, url);
    const client = new SwooshClient({ url: proxy.url });
    const sent = (): Array<{ hlc?: string; id?: string }> =>
      proxy.requests.filter((request) => request.path === "/command").map((request) => JSON.parse(request.body) as { hlc?: string; id?: string });

    assert.equal(client.lastHlc, undefined);
    const first = await client.registerAgent({ agentId: "w" });
    assert.equal(sent()[0]?.hlc, undefined);
    assert.equal(client.lastHlc, first.hlc);
    const second = await client.heartbeat({ agentId: "w" });
    assert.equal(sent()[1]?.hlc, first.hlc);
    assert.ok(second.hlc > first.hlc);
    assert.equal(client.lastHlc, second.hlc);

    // An HLC from a clock far ahead (another system's): refused, forgotten, sent again without it, same id.
    const future = `${String(Date.now() + 3_600_000).padStart(15, "0")}-0000000000-elsewhere`;
    client.observeHlc(future);
    assert.equal(client.lastHlc, future);
    const third = await client.heartbeat({ agentId: "w" });
    const [refused, resent] = sent().slice(2);
    assert.equal(refused?.hlc, future);
    assert.equal(resent?.hlc, undefined);
    assert.equal(resent?.id, refused?.id);
    assert.equal(client.lastHlc, third.hlc);
  });
});
