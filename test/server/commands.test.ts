/**
 * POST /command through the orchestrator's errors (404 unknown_agent /
 * unknown_task, 409 task_exists / stale_lease / invalid_transition), idempotent
 * repeats, and the read endpoints: /tasks filters and cursor pages, /agents, /log.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { command, get, post, startTestServer } from "./helpers.ts";

function assertCode(answer: { status: number; body: { error?: { code: string } }; text: string }, status: number, code: string): void {
  assert.equal(answer.status, status, answer.text);
  assert.equal(answer.body.error?.code, code, answer.text);
}

describe("server: commands and reads", () => {
  it("answers a command lifecycle with its results and SPEC error codes", async (t) => {
    const { url } = await startTestServer(t);
    const registered = await command(url, "agent.register", { agentId: "a1", labels: ["gpu"], capacity: 2 });
    assert.equal(registered.status, 200);
    assert.deepEqual(Object.keys(registered.body).sort(), ["hlc", "index", "result"]);
    assert.deepEqual(registered.body.result, { agentId: "a1", created: true });

    assertCode(await command(url, "agent.heartbeat", { agentId: "ghost" }), 404, "unknown_agent");
    assertCode(await command(url, "task.claim", { agentId: "ghost" }), 404, "unknown_agent");
    assertCode(await command(url, "task.cancel", { taskId: "ghost" }), 404, "unknown_task");
    assertCode(await command(url, "task.submit", { taskId: "t2", kind: "k", dependsOn: ["ghost"] }), 404, "unknown_task");

    assert.equal((await command(url, "task.submit", { taskId: "t1", kind: "build", requires: ["gpu"] })).status, 200);
    const same = await command(url, "task.submit", { taskId: "t1", kind: "build", requires: ["gpu"] });
    assert.equal(same.status, 200, "same spec again is idempotent");
    assert.equal(same.body.result.created, false);
    assertCode(await command(url, "task.submit", { taskId: "t1", kind: "other" }), 409, "task_exists");

    const claim = await command(url, "task.claim", { agentId: "a1" });
    assert.equal(claim.status, 200);
    const [lease] = claim.body.result.leases as Array<{ taskId: string; token: number }>;
    assert.equal(lease?.taskId, "t1");
    assertCode(await command(url, "task.complete", { taskId: "t1", token: (lease?.token ?? 0) + 1 }), 409, "stale_lease");
    assert.equal((await command(url, "task.complete", { taskId: "t1", token: lease?.token, result: { ok: true } })).status, 200);
    assertCode(await command(url, "task.cancel", { taskId: "t1" }), 409, "invalid_transition");

    assert.equal((await command(url, "orchestrator.setPhase", { phase: "halted" })).status, 200);
    assertCode(await command(url, "task.submit", { taskId: "t3", kind: "k" }), 409, "invalid_transition");
    assert.equal((await command(url, "orchestrator.setPhase", { phase: "active" })).status, 200);
  });

  it("returns the first outcome with duplicate: true for a repeated command id", async (t) => {
    const { url } = await startTestServer(t);
    const first = await command(url, "agent.register", { agentId: "a" }, { id: "cmd-1" });
    const again = await command(url, "agent.register", { agentId: "a" }, { id: "cmd-1" });
    assert.equal(again.status, 200);
    assert.equal(again.body.duplicate, true);
    assert.equal(again.body.index, first.body.index);
    assert.equal(again.body.hlc, first.body.hlc);
    assert.deepEqual(again.body.result, first.body.result);
    assert.equal((await get(url, "/log")).body.entries.length, 1);
  });

  it("lists tasks with filters and stable cursor pages", async (t) => {
    const { url } = await startTestServer(t);
    await command(url, "agent.register", { agentId: "a1", capacity: 10 });
    const ids = Array.from({ length: 25 }, (_, i) => `task-${String(i).padStart(2, "0")}`);
    for (const id of ids) assert.equal((await command(url, "task.submit", { taskId: id, kind: Number(id.slice(5)) % 2 === 0 ? "even" : "odd" })).status, 200);
    await command(url, "task.claim", { agentId: "a1", limit: 3 });

    const seen: string[] = [];
    let cursor: string | null = null;
    for (let page = 0; page < 10; page++) {
      const answer = await get(url, `/tasks?limit=10${cursor === null ? "" : `&cursor=${cursor}`}`);
      assert.equal(answer.status, 200, answer.text);
      assert.ok(answer.body.tasks.length <= 10);
      seen.push(...answer.body.tasks.map((task: { id: string }) => task.id));
      cursor = answer.body.nextCursor;
      if (cursor === null) break;
    }
    assert.deepEqual(seen, ids);

    const leased = await get(url, "/tasks?status=leased");
    assert.deepEqual(leased.body.tasks.map((task: { id: string }) => task.id), ["task-00", "task-01", "task-02"]);
    const byAgent = await get(url, "/tasks?agentId=a1&kind=odd");
    assert.deepEqual(byAgent.body.tasks.map((task: { id: string }) => task.id), ["task-01"]);
    const queuedOrLeased = await get(url, "/tasks?status=queued,leased&limit=1000");
    assert.equal(queuedOrLeased.body.tasks.length, 25);
    assert.equal((await get(url, "/tasks?agentId=nobody")).body.tasks.length, 0);
    assert.equal(typeof (await get(url, "/tasks")).body.index, "number");

    for (const bad of ["status=done", "limit=0", "limit=1001", "limit=x", "cursor=!!", "cursor=e30", "limit=1&limit=2"]) {
      assertCode(await get(url, `/tasks?${bad}`), 400, "bad_request");
    }
  });

  it("a page over many tasks is the state of the index it names, while commands change them", async (t) => {
    const { url } = await startTestServer(t);
    // More tasks than one step of the scan reads: the page is read across turns of the event loop.
    const submits = (from: number, count: number) =>
      post(url, "/commands", { commands: Array.from({ length: count }, (_, i) => ({ type: "task.submit", payload: { taskId: `t${String(from + i).padStart(5, "0")}`, kind: "k" } })) });
    // The smallest ids last: a scan (in insertion order) reaches them last, after the commands below may have changed them.
    for (const from of [5000, 6000, 7000, 8000, 9000, 0, 1000, 2000, 3000, 4000]) assert.equal((await submits(from, 1000)).status, 200);

    // While the pages are read: the first queued tasks (by id) are cancelled, new ones come in.
    const cancels = (from: number) =>
      post(url, "/commands", { commands: Array.from({ length: 50 }, (_, i) => ({ type: "task.cancel", payload: { taskId: `t${String(from + i).padStart(5, "0")}` } })) });
    const pages = Array.from({ length: 6 }, () => get(url, "/tasks?status=queued&limit=20"));
    const writes = Array.from({ length: 6 }, (_, i) => (i % 2 === 0 ? cancels(i * 50) : submits(20_000 + i * 100, 100)));
    const [read, written] = await Promise.all([Promise.all(pages), Promise.all(writes)]);
    for (const answer of written) assert.equal(answer.status, 200);

    for (const page of read) {
      assert.equal(page.status, 200, page.text);
      assert.equal(page.headers.get("swoosh-index"), String(page.body.index));
      // What the state held at that index (rebuilt from the log), filtered and paged the same way.
      const then = (await get(url, `/state?at=${page.body.index}`)).body.state.tasks as Record<string, { id: string; status: string }>;
      const expected = Object.keys(then)
        .filter((id) => then[id]?.status === "queued")
        .sort()
        .slice(0, 20);
      assert.deepEqual(page.body.tasks.map((task: { id: string }) => task.id), expected, `page at index ${page.body.index}`);
      assert.deepEqual(page.body.tasks, expected.map((id) => then[id]));
    }
  });

  it("lists agents and reads the log in wire form", async (t) => {
    const { url } = await startTestServer(t);
    for (const id of ["b", "a", "c"]) await command(url, "agent.register", { agentId: id });
    await command(url, "agent.drain", { agentId: "c" }, { id: "drain-c" });
    const agents = await get(url, "/agents");
    assert.deepEqual(agents.body.agents.map((agent: { id: string }) => agent.id), ["a", "b", "c"]);
    assert.equal(agents.body.nextCursor, null);
    const page = await get(url, "/agents?limit=2");
    assert.equal(page.body.agents.length, 2);
    const rest = await get(url, `/agents?cursor=${page.body.nextCursor}`);
    assert.deepEqual(rest.body.agents.map((agent: { id: string }) => agent.id), ["c"]);
    assert.deepEqual((await get(url, "/agents?status=draining")).body.agents.map((agent: { id: string }) => agent.id), ["c"]);
    assertCode(await get(url, "/agents?status=asleep"), 400, "bad_request");

    const log = await get(url, "/log");
    assert.equal(log.status, 200);
    assert.equal(log.body.firstIndex, 1);
    assert.equal(log.body.lastIndex, 4);
    const entries = log.body.entries as Array<Record<string, unknown>>;
    assert.deepEqual(entries.map((entry) => entry.index), [1, 2, 3, 4]);
    assert.deepEqual(Object.keys(entries[3] as object), ["index", "hlc", "type", "payload", "id", "prevHash", "hash"]);
    assert.equal((entries[3] as { id: string }).id, "drain-c");
    for (let i = 1; i < entries.length; i++) assert.equal((entries[i] as { prevHash: string }).prevHash, (entries[i - 1] as { hash: string }).hash);
    const window = await get(url, "/log?from=2&limit=2");
    assert.deepEqual(window.body.entries.map((entry: { index: number }) => entry.index), [2, 3]);
    assert.deepEqual((await get(url, "/log?from=99")).body.entries, []);
    assertCode(await get(url, "/log?from=0"), 400, "bad_request");
    assertCode(await get(url, "/log?limit=5000"), 400, "bad_request");
  });
});
