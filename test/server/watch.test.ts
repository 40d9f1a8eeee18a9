/**
 * GET /watch: one event per applied command (id = index, data = the WAL entry),
 * live; resumed with Last-Event-ID or ?from through a WAL replay that switches
 * to live with no gap and no duplicate, even while commands keep coming; 410
 * for a truncated resume point; a consumer behind by more than the buffer
 * bound catches up from the WAL instead of growing the server's memory, and
 * one that takes nothing for the stall timeout is dropped.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { TestContext } from "node:test";
import { SseClient, call, command, eventually, get, metricValue, post, startTestServer } from "./helpers.ts";

function assertConsecutive(indexes: number[], from: number, to: number): void {
  assert.deepEqual(indexes, Array.from({ length: to - from + 1 }, (_, i) => from + i));
}

/**
 * A dropped stream (paused until now) ends having sent entries 1..n in order,
 * n < `total`; reconnecting with Last-Event-ID: n replays n+1..`total`, paced by the socket.
 */
async function assertResumesAfterDrop(t: TestContext, url: string, dropped: SseClient, total: number): Promise<void> {
  dropped.resume();
  await eventually(() => (dropped.ended ? true : undefined), 5000, "the dropped stream to end");
  const received = dropped.entries().map((entry) => entry.index);
  assert.ok(received.length < total, `it did not get everything (${received.length})`);
  assertConsecutive(received, 1, received.length);
  const again = await SseClient.open(url, "/watch", { "last-event-id": String(received.length) });
  t.after(() => again.close());
  await again.waitForEvents(total - received.length, 10_000);
  assertConsecutive(again.entries().map((entry) => entry.index), received.length + 1, total);
}

describe("server: GET /watch", () => {
  it("streams applied commands live, as the log holds them", async (t) => {
    const { url } = await startTestServer(t, { watch: { heartbeatMs: 100 } });
    await command(url, "agent.register", { agentId: "before" });
    const client = await SseClient.open(url);
    t.after(() => client.close());
    assert.equal(client.status, 200);
    assert.match(client.response?.headers["content-type"] ?? "", /^text\/event-stream/);
    for (let i = 0; i < 5; i++) assert.equal((await command(url, "agent.register", { agentId: `a${i}` }, i === 2 ? { id: "with-id" } : {})).status, 200);
    await client.waitForEvents(5);
    assert.deepEqual(client.events.map((event) => event.id), ["2", "3", "4", "5", "6"]);
    const log = await get(url, "/log?from=2");
    assert.deepEqual(client.entries(), log.body.entries, "live events carry exactly the WAL entries");
    await eventually(() => (client.comments.includes("keep-alive") ? true : undefined), 2000, "a heartbeat comment");
  });

  it("resumes with Last-Event-ID and ?from without gaps or duplicates, also while writes continue", async (t) => {
    const { url } = await startTestServer(t);
    for (let i = 1; i <= 5; i++) await command(url, "agent.register", { agentId: `a${i}` });

    const resumed = await SseClient.open(url, "/watch", { "last-event-id": "2" });
    t.after(() => resumed.close());
    await resumed.waitForEvents(3);
    assertConsecutive(resumed.entries().map((entry) => entry.index), 3, 5);
    await command(url, "agent.register", { agentId: "a6" });
    await resumed.waitForEvents(4);
    assertConsecutive(resumed.entries().map((entry) => entry.index), 3, 6);

    const fromStart = await SseClient.open(url, "/watch?from=0");
    t.after(() => fromStart.close());
    await fromStart.waitForEvents(6);
    assertConsecutive(fromStart.entries().map((entry) => entry.index), 1, 6);

    // Resume from the start while 60 commands arrive concurrently: replay hands over to live exactly once per index.
    const writes = Array.from({ length: 60 }, (_, i) => command(url, "agent.register", { agentId: `w${i}` }));
    const racing = await SseClient.open(url, "/watch", { "last-event-id": "0" });
    t.after(() => racing.close());
    const answers = await Promise.all(writes);
    assert.ok(answers.every((answer) => answer.status === 200));
    await racing.waitForEvents(66);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assertConsecutive(racing.entries().map((entry) => entry.index), 1, 66);
    assertConsecutive(racing.events.map((event) => Number(event.id)), 1, 66);

    for (const [path, headers, status] of [
      ["/watch", { "last-event-id": "abc" }, 400],
      ["/watch?from=-1", {}, 400],
      ["/watch?from=500", {}, 404],
    ] as const) {
      const answer = await get(url, path, headers);
      assert.equal(answer.status, status, `${path}: ${answer.text}`);
    }
  });

  it("answers 410 history_pruned for a resume point the WAL no longer holds", async (t) => {
    const { url } = await startTestServer(t, { snapshotEvery: 2 });
    let firstIndex = 1;
    // Snapshots are amortized (their interval grows with the state), so write until the WAL was truncated; bounded.
    for (let i = 0; i < 2000 && firstIndex < 3; i++) {
      await command(url, "agent.register", { agentId: `a${i}` });
      firstIndex = (await get(url, "/log?limit=1")).body.firstIndex;
    }
    assert.ok(firstIndex >= 3);
    const pruned = await get(url, "/watch", { "last-event-id": "0" });
    assert.equal(pruned.status, 410);
    assert.equal(pruned.body.error.code, "history_pruned");
    assert.equal((await get(url, "/watch?from=1")).status, 410);
  });

  it("keeps a client that reads through a burst larger than the buffer bound: everything arrives, nothing is dropped", async (t) => {
    const bufferMaxBytes = 64 * 1024;
    const { url } = await startTestServer(t, { watch: { bufferMaxBytes } });
    const reader = await SseClient.open(url);
    t.after(() => reader.close());
    // One POST /commands is one flush: its ~840 KB of frames are handed to the stream at once, far past the bound.
    const commands = Array.from({ length: 120 }, (_, i) => ({ type: "task.submit", payload: { taskId: `burst${i}`, kind: "bulk", payload: "b".repeat(7_000) } }));
    const answer = await post(url, "/commands", { commands });
    assert.equal(answer.status, 200, answer.text);
    await reader.waitForEvents(120, 10_000);
    assertConsecutive(reader.entries().map((entry) => entry.index), 1, 120);
    assert.equal(reader.ended, false);
    assert.match((await get(url, "/metrics")).text, /^swoosh_watch_dropped_total 0$/m);
    // Back to live after catching up from the log: the next command arrives as before.
    await command(url, "agent.register", { agentId: "after" });
    await reader.waitForEvents(121);
  });

  it("sends a consumer that stops reading back to the paced replay once its buffer passes the bound: it gets everything in order when it reads again", async (t) => {
    const bufferMaxBytes = 64 * 1024;
    const { url } = await startTestServer(t, { watch: { bufferMaxBytes } });
    const slow = await SseClient.open(url);
    t.after(() => slow.close());
    slow.pause();
    const bulk = "x".repeat(100_000);
    let submitted = 0;
    // Far more than the bound and the kernel's socket buffers hold: the server keeps the bound and one page, not all of it.
    for (let round = 0; round < 10; round++) {
      const batch = Array.from({ length: 8 }, () => command(url, "task.submit", { taskId: `t${submitted++}`, kind: "bulk", payload: bulk }));
      assert.ok((await Promise.all(batch)).every((answer) => answer.status === 200));
    }
    assert.match((await get(url, "/metrics")).text, /^swoosh_watch_dropped_total 0$/m, "not dropped while within the stall timeout");
    slow.resume();
    await slow.waitForEvents(submitted, 20_000);
    assertConsecutive(slow.entries().map((entry) => entry.index), 1, submitted);
    assert.equal(slow.ended, false);
  });

  it("drops a live consumer that takes nothing for stallMs with less than the buffer bound unsent, and keeps a quiet one that reads", async (t) => {
    const { url } = await startTestServer(t, { watch: { bufferMaxBytes: 256 * 1024 * 1024, stallMs: 1500, heartbeatMs: 300 } });
    // Quiet for several stall periods, but reading its heartbeats: kept.
    const quiet = await SseClient.open(url);
    t.after(() => quiet.close());
    await new Promise((resolve) => setTimeout(resolve, 4000));
    assert.equal(await metricValue(url, "swoosh_watch_dropped_total"), 0);
    assert.equal(quiet.ended, false, "a client that reads is never dropped for being quiet");

    const stalled = await SseClient.open(url);
    t.after(() => stalled.close());
    stalled.pause();
    const bulk = "s".repeat(100_000);
    let submitted = 0;
    // Enough to fill the kernel's socket buffers (the rest waits unsent, far below the bound); bounded in count.
    for (let round = 0; round < 40 && (await metricValue(url, "swoosh_watch_dropped_total")) === 0; round++) {
      const batch = Array.from({ length: 8 }, () => command(url, "task.submit", { taskId: `s${submitted++}`, kind: "bulk", payload: bulk }));
      assert.ok((await Promise.all(batch)).every((answer) => answer.status === 200));
    }
    await eventually(async () => ((await metricValue(url, "swoosh_watch_dropped_total")) === 1 ? true : undefined), 10_000, "the stalled live stream to be dropped");
    assert.equal(await metricValue(url, "swoosh_watch_clients"), 1, "the quiet reader is still connected");
    assert.equal(quiet.ended, false);
    await assertResumesAfterDrop(t, url, stalled, submitted);
  });

  it("drops a client that stops reading while it catches up from the WAL; it resumes where it stopped", async (t) => {
    const { url } = await startTestServer(t, { watch: { stallMs: 400, heartbeatMs: 100 } });
    // More than the kernel's socket buffers hold, so the replay must wait for the client.
    const bulk = "y".repeat(500_000);
    const written = 48;
    for (let i = 0; i < written; i += 8) {
      const batch = Array.from({ length: 8 }, (_, j) => command(url, "task.submit", { taskId: `b${i + j}`, kind: "bulk", payload: bulk }));
      assert.ok((await Promise.all(batch)).every((answer) => answer.status === 200));
    }
    const stalled = await SseClient.open(url, "/watch?from=1");
    t.after(() => stalled.close());
    stalled.pause();
    await eventually(async () => ((await metricValue(url, "swoosh_watch_dropped_total")) === 1 ? true : undefined), 10_000, "the stalled replay to be dropped");
    assert.equal(await metricValue(url, "swoosh_watch_clients"), 0);

    await assertResumesAfterDrop(t, url, stalled, written);
  });

  it("answers HEAD /watch with the stream's headers and no stream", async (t) => {
    const { url } = await startTestServer(t);
    const answer = await call(url, "HEAD", "/watch");
    assert.equal(answer.status, 200);
    assert.match(answer.headers.get("content-type") ?? "", /^text\/event-stream/);
    assert.equal(answer.text, "");
    assert.equal((await call(url, "HEAD", "/watch?from=9")).status, 404, "the same checks as GET");
    assert.match((await get(url, "/metrics")).text, /^swoosh_watch_clients 0$/m);
  });

  it("ends open streams on close", async (t) => {
    const server = await startTestServer(t);
    const client = await SseClient.open(server.url);
    await command(server.url, "agent.register", { agentId: "a" });
    await client.waitForEvents(1);
    await server.close();
    await eventually(() => (client.ended ? true : undefined), 3000, "the stream to end");
  });
});
