/**
 * `POST /commands`: a batch applied in order, flushed together, answered per item.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import http from "node:http";
import { openSwoosh } from "../../src/index.ts";
import { batchAnswerBody } from "../../src/server/routes/commands.ts";
import type { BatchItem } from "../../src/server/routes/commands.ts";
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

  it("judges each item's payload nesting as POST /command does: a too-deep one fails in its slot only", async (t) => {
    const { url } = await startTestServer(t);
    const nested = (depth: number): unknown => (depth === 0 ? 1 : [nested(depth - 1)]);
    const single = async (depth: number) => (await command(url, "task.submit", { taskId: `s${depth}`, kind: "k", payload: nested(depth) })).status;
    const depths = [60, 61, 62, 63, 64, 65];
    const singles = [];
    for (const depth of depths) singles.push(await single(depth));
    const batch = await post(url, "/commands", { commands: depths.map((depth) => ({ type: "task.submit", payload: { taskId: `b${depth}`, kind: "k", payload: nested(depth) } })) });
    assert.equal(batch.status, 200, batch.text);
    const inBatch = (batch.body.results as Array<{ error?: { code: string } }>).map((item) => (item.error === undefined ? 200 : 400));
    assert.deepEqual(inBatch, singles, "each item answered as its own POST /command was");
    assert.ok(singles.includes(200) && singles.includes(400), JSON.stringify(singles));
  });

  it("builds a long answer as pieces whose bytes are exactly the JSON text", () => {
    const results: BatchItem[] = [
      { index: 1, hlc: "h1", result: { leases: [{ taskId: "__proto__", kind: "k", payload: { text: "Café ☕ 😀" }, token: 1, expiresAt: 5, attempt: 1 }] } },
      { error: { code: "stale_lease", message: "no", details: { taskId: "x" } } },
      { index: 3, hlc: "h3", result: null, duplicate: true },
    ];
    const expected = JSON.stringify({ results });
    for (const limit of [0, 1, 20, 60, expected.length - 1, expected.length, 1e9]) {
      const body = batchAnswerBody({ results }, limit);
      const text = typeof body === "string" ? body : Buffer.concat(body).toString("utf8");
      assert.equal(text, expected, `limit ${limit}`);
      assert.equal(typeof body === "string", expected.length - 2 <= limit, `one string only while short (limit ${limit})`);
    }
    assert.equal(batchAnswerBody({ results: [] }), '{"results":[]}');
  });

  it("answers a batch whose results pass 64 MiB (claims of large payloads), on the lean path and through Fastify", async (t) => {
    // The duplicates below must all still be remembered: ~70 MB of claimed payloads, past the default bound.
    const { url } = await startTestServer(t, { openEngine: (options) => openSwoosh({ ...options, outcomeRetention: { countMax: 100_000, retentionMs: 86_400_000, weightMax: 1e9 } }) });
    const big = "p".repeat(1_000_000);
    // One per request: a body is at most 1 MiB.
    for (let i = 0; i < 70; i += 10) {
      const submits = await Promise.all(Array.from({ length: 10 }, (_, j) => command(url, "task.submit", { taskId: `big${i + j}`, kind: "k", payload: big })));
      assert.ok(submits.every((answer) => answer.status === 200));
    }
    const agents = Array.from({ length: 5 }, (_, i) => ({ type: "agent.register", payload: { agentId: `w${i}`, capacity: 20 } }));
    assert.equal((await post(url, "/commands", { commands: agents })).status, 200);
    // Five claims of up to 16 MiB of payloads each: ~70 MB of answer.
    const claims = { commands: Array.from({ length: 5 }, (_, i) => ({ type: "task.claim", payload: { agentId: `w${i}`, limit: 20 }, id: `claim-${i}` })) };
    const leasesOf = (body: { results: Array<{ result: { leases: Array<{ taskId: string; payload: string }> } }> }) => body.results.flatMap((item) => item.result.leases);
    const lean = await post(url, "/commands", claims);
    assert.equal(lean.status, 200);
    assert.ok(lean.text.length > 64 * 1024 * 1024, `${lean.text.length} characters`);
    const leased = leasesOf(lean.body);
    assert.equal(new Set(leased.map((lease) => lease.taskId)).size, 70);
    assert.ok(leased.every((lease) => lease.payload === big));
    // The same batch again, chunked (so Fastify's route answers): the duplicates carry the same outcomes.
    const chunked = await new Promise<string>((resolve, reject) => {
      const request = http.request(url + "/commands", { method: "POST", headers: { "content-type": "application/json", "transfer-encoding": "chunked" } }, (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () => (response.statusCode === 200 ? resolve(Buffer.concat(chunks).toString("utf8")) : reject(new Error(`status ${response.statusCode}`))));
      });
      request.on("error", reject);
      request.end(JSON.stringify(claims));
    });
    const again = JSON.parse(chunked) as { results: Array<{ duplicate?: boolean; result: { leases: Array<{ taskId: string; payload: string }> } }> };
    assert.ok(again.results.every((item) => item.duplicate === true));
    assert.deepEqual(leasesOf(again).map((lease) => lease.taskId), leased.map((lease) => lease.taskId));
    assert.equal((await get(url, "/healthz")).status, 200);
  });
});
