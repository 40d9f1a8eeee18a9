/**
 * `POST /commands`: a batch applied in order, flushed together, answered per item.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { command, get, post, startTestServer } from "./helpers.ts";

describe("POST /commands (batch)", () => {
  it("applies commands in order, so a claim sees the completions before it, and answers each in its slot", async (t) => {
    const { url } = await startTestServer(t);
    await command(url, "agent.register", { agentId: "w", capacity: 2 });
    const setup = await post(url, "/commands", {
      commands: [
        { type: "task.submit", payload: { taskId: "a", kind: "k" } },
        { type: "task.submit", payload: { taskId: "b", kind: "k" } },
        { type: "task.submit", payload: { taskId: "c", kind: "k" } },
        { type: "task.claim", payload: { agentId: "w", limit: 2 } },
      ],
    });
    assert.equal(setup.status, 200, setup.text);
    const [, , , claim] = setup.body.results as Array<{ index: number; result: { leases: Array<{ taskId: string; token: number }> } }>;
    assert.deepEqual(
      claim?.result.leases.map((l) => l.taskId),
      ["a", "b"],
    );
    const indexes = (setup.body.results as Array<{ index: number }>).map((r) => r.index);
    assert.deepEqual(indexes, [indexes[0], (indexes[0] ?? 0) + 1, (indexes[0] ?? 0) + 2, (indexes[0] ?? 0) + 3]);

    // Complete both and claim the next in one round trip; a refused item does not stop the rest.
    const leases = claim?.result.leases ?? [];
    const next = await post(url, "/commands", {
      commands: [
        { type: "task.complete", payload: { taskId: "a", token: leases[0]?.token, result: 1 }, id: "done-a" },
        { type: "task.complete", payload: { taskId: "b", token: 999_999 } },
        { type: "task.complete", payload: { taskId: "b", token: leases[1]?.token } },
        { type: "no.such.command", payload: {} },
        { type: "task.claim", payload: { agentId: "w", limit: 2 } },
        { bogus: true },
      ],
    });
    assert.equal(next.status, 200, next.text);
    const results = next.body.results as Array<{ index?: number; error?: { code: string }; result?: { leases: Array<{ taskId: string }> } }>;
    assert.equal(results.length, 6);
    assert.ok(results[0]?.index);
    assert.equal(results[1]?.error?.code, "stale_lease");
    assert.ok(results[2]?.index);
    assert.equal(results[3]?.error?.code, "unknown_command");
    assert.deepEqual(
      results[4]?.result?.leases.map((l) => l.taskId),
      ["c"],
    );
    assert.equal(results[5]?.error?.code, "bad_request");
    assert.equal((await get(url, "/tasks/a")).body.status, "succeeded");
    assert.equal((await get(url, "/tasks/b")).body.status, "succeeded");

    const repeat = await post(url, "/commands", { commands: [{ type: "task.complete", payload: { taskId: "a", token: leases[0]?.token, result: 1 }, id: "done-a" }] });
    assert.equal(repeat.body.results[0].duplicate, true);
    assert.equal(repeat.body.results[0].index, results[0]?.index);
  });

  it("refuses a body that is not a batch of 1 to 1000 commands with 400 and changes nothing", async (t) => {
    const { url } = await startTestServer(t);
    const before = (await get(url, "/state")).body.index as number;
    for (const body of [{}, { commands: [] }, { commands: "x" }, [], { commands: Array.from({ length: 1001 }, () => ({ type: "system.tick" })) }, { commands: [], extra: 1 }]) {
      const answer = await post(url, "/commands", body);
      assert.equal(answer.status, 400, JSON.stringify(body).slice(0, 80));
      assert.equal(answer.body.error.code, "bad_request");
    }
    assert.equal((await get(url, "/state")).body.index, before);
  });
});
