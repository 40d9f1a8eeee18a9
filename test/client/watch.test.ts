/**
 * The SSE parser, and `client.watch`: resumes after disconnects with
 * Last-Event-ID without a gap or a repeat, even before its first event; ends
 * with history_pruned when the log no longer reaches back; ends quietly on abort.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SwooshApiError, SwooshClient } from "../../src/client/index.ts";
import type { LogEntry } from "../../src/client/index.ts";
import { SseParser } from "../../src/client/sse.ts";
import { TestProxy, delay, eventually, startTestServer, within } from "./helpers.ts";

describe("SseParser", () => {
  it("parses events split anywhere, with LF, CRLF or CR, comments, ids and retry", () => {
    const comments: string[] = [];
    const parser = new SseParser((comment) => comments.push(comment));
    const text = "retry: 1000\r\n: hello\r\n\r\nid: 6\ndata: {\"a\":1}\n\nid: 7\rdata: x\rdata: y\r\r: keep-alive\n\nevent: error\ndata: {}\n\n";
    const events = [];
    for (const char of text) events.push(...parser.push(char));
    assert.deepEqual(events, [
      { id: "6", event: "message", data: '{"a":1}' },
      { id: "7", event: "message", data: "x\ny" },
      { id: "7", event: "error", data: "{}" },
    ]);
    assert.equal(parser.retryMs, 1000);
    assert.deepEqual(comments, ["hello", "keep-alive"]);
    assert.equal(parser.lastEventId, "7");
  });
});

describe("client.watch", () => {
  it("resumes after disconnects without a gap or a repeat", async (t) => {
    const { url } = await startTestServer(t);
    const proxy = await TestProxy.start(t, url);
    const writer = new SwooshClient({ url });
    const watcher = new SwooshClient({ url: proxy.url });
    const total = 60;
    const controller = new AbortController();
    t.after(() => controller.abort());
    let opens = 0;
    const seen: LogEntry[] = [];
    const reading = (async () => {
      for await (const entry of watcher.watch({ from: 0, signal: controller.signal, reconnect: { baseDelayMs: 20, maxDelayMs: 50 }, onOpen: () => opens++ })) {
        seen.push(entry);
        if (seen.length >= total) break;
      }
    })();
    const writing = (async () => {
      for (let i = 0; i < total; i++) {
        await writer.registerAgent({ agentId: `a${i}` });
        if (i % 15 === 7) proxy.cutStreams();
      }
    })();
    await writing;
    await within(reading, 20_000, "the watcher to see every entry");
    assert.deepEqual(
      seen.map((entry) => entry.index),
      Array.from({ length: total }, (_, i) => i + 1),
    );
    assert.ok(opens >= 2, `reconnected (${opens} opens)`);
    assert.equal(seen[59]?.type, "agent.register");
    assert.equal(watcher.lastHlc, seen[59]?.hlc);
  });

  it("a stream that has seen nothing yet still resumes where it started", async (t) => {
    const { url } = await startTestServer(t);
    const proxy = await TestProxy.start(t, url);
    const writer = new SwooshClient({ url });
    await writer.registerAgent({ agentId: "before" });
    const controller = new AbortController();
    t.after(() => controller.abort());
    let opened = false;
    const seen: LogEntry[] = [];
    const reading = (async () => {
      for await (const entry of new SwooshClient({ url: proxy.url }).watch({ signal: controller.signal, reconnect: { baseDelayMs: 200, maxDelayMs: 200 }, onOpen: () => (opened = true) })) {
        seen.push(entry);
        if (seen.length === 2) break;
      }
    })();
    await eventually(() => (opened ? true : undefined), 5000, "the stream to open");
    await delay(50);
    proxy.cutStreams();
    // Written while the stream is down (the reconnect waits ≥ 100 ms).
    await writer.registerAgent({ agentId: "during" });
    await writer.registerAgent({ agentId: "after" });
    await within(reading, 10_000, "the watcher to see both entries");
    assert.deepEqual(
      seen.map((entry) => (entry.payload as { agentId: string }).agentId),
      ["during", "after"],
    );
  });

  it("waits at least a 503's Retry-After before opening the stream again", async (t) => {
    const { url } = await startTestServer(t);
    const proxy = await TestProxy.start(t, url);
    proxy.fail503((request) => request.path.startsWith("/watch"), 2, "1");
    const controller = new AbortController();
    t.after(() => controller.abort());
    const delays: number[] = [];
    let opened = false;
    const reading = (async () => {
      for await (const entry of new SwooshClient({ url: proxy.url }).watch({
        signal: controller.signal,
        reconnect: { baseDelayMs: 20, maxDelayMs: 50 },
        onOpen: () => (opened = true),
        onDisconnect: (_error, delayMs) => delays.push(delayMs),
      }))
        void entry;
    })();
    await eventually(() => (opened ? true : undefined), 10_000, "the stream to open after the 503s");
    controller.abort();
    await reading;
    assert.equal(delays.length, 2);
    for (const delayMs of delays) assert.ok(delayMs >= 1000, `waited ${delayMs} ms after Retry-After: 1`);
  });

  it("ends with history_pruned when the log no longer holds the resume point, and quietly on abort", async (t) => {
    const { url } = await startTestServer(t, { snapshotEvery: 4 });
    const client = new SwooshClient({ url });
    // Snapshots are amortized (their interval grows with the state): write until the WAL was truncated; bounded.
    let firstIndex = 1;
    for (let i = 0; i < 2000 && firstIndex <= 2; i++) {
      await client.registerAgent({ agentId: `a${i}` });
      firstIndex = (await client.readLog({ limit: 1 })).firstIndex;
    }
    assert.ok(firstIndex > 2);
    await assert.rejects(
      (async () => {
        for await (const entry of client.watch({ after: 1 })) assert.fail(`got entry ${entry.index}`);
      })(),
      (error) => error instanceof SwooshApiError && error.code === "history_pruned" && error.status === 410,
    );

    const controller = new AbortController();
    const seen: number[] = [];
    const reading = (async () => {
      for await (const entry of client.watch({ signal: controller.signal })) seen.push(entry.index);
    })();
    await client.registerAgent({ agentId: "last" });
    await eventually(() => (seen.length === 1 ? true : undefined));
    controller.abort();
    await reading;
    assert.equal(seen.length, 1);
  });
});
