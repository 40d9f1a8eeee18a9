/**
 * Every answered request leaves its request id in the server log, with how it
 * ended: a `/watch` stream when it closes, a URL that cannot be decoded, and
 * bytes that are not HTTP at all (answered outside Fastify).
 */
import assert from "node:assert/strict";
import net from "node:net";
import { Writable } from "node:stream";
import { describe, it } from "node:test";
import { encodeHlc } from "../../src/core/hlc.ts";
import { SseClient, command, eventually, get, startTestServer } from "./helpers.ts";

/** A pino destination that keeps the parsed lines. */
function capturedLog(): { stream: Writable; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString("utf8").split("\n")) if (line.length > 0) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { stream, lines };
}

/** Raw bytes to the server; resolves with the answer's X-Request-Id. */
function rawRequestId(url: string, bytes: string): Promise<string> {
  const { port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), "127.0.0.1", () => socket.write(bytes));
    let received = "";
    socket.setEncoding("latin1").on("data", (chunk: string) => (received += chunk));
    socket.on("error", reject);
    socket.on("close", () => {
      const id = /^x-request-id: (.+)$/im.exec(received)?.[1]?.trim();
      if (id === undefined) reject(new Error(`no X-Request-Id in ${JSON.stringify(received)}`));
      else resolve(id);
    });
  });
}

describe("request log", () => {
  it("logs the end of a /watch stream, an undecodable URL and unparseable HTTP under the id each was answered with", async (t) => {
    const log = capturedLog();
    const { url } = await startTestServer(t, { logger: { level: "info", stream: log.stream } });
    const byId = (id: string) => log.lines.filter((line) => line.reqId === id);

    const watch = await SseClient.open(url, "/watch", { "x-request-id": "watch-1" });
    assert.equal(watch.status, 200);
    watch.close();
    const ended = await eventually(() => byId("watch-1").find((line) => line.msg === "request completed"), 5000, "the watch stream's completion line");
    assert.equal((ended.res as { statusCode: number }).statusCode, 200);
    assert.equal(typeof ended.responseTime, "number");

    const undecodable = await get(url, "/tasks/%zz");
    assert.equal(undecodable.status, 400);
    const undecodableId = undecodable.headers.get("x-request-id") ?? "";
    await eventually(() => byId(undecodableId).find((line) => line.code === "bad_request"), 5000, "the undecodable URL's refusal line");

    const garbageId = await rawRequestId(url, "GARBAGE\r\n\r\n");
    const garbage = await eventually(() => byId(garbageId)[0], 5000, "the unparseable request's line");
    assert.equal(garbage.code, "bad_request");
    assert.equal(garbage.statusCode, 400);
  });

  it("warns, once per interval, when a client's hlc moved the clock ahead of the wall clock", async (t) => {
    const log = capturedLog();
    const { url } = await startTestServer(t, { logger: { level: "info", stream: log.stream } });
    const warnings = () => log.lines.filter((line) => typeof line.leadMs === "number");
    const near = encodeHlc({ wallMs: Date.now() + 200, counter: 0, nodeId: "client" });
    assert.equal((await command(url, "agent.register", { agentId: "a" }, { hlc: near })).status, 200);
    assert.equal(warnings().length, 0, "a lead within a second is ordinary skew");
    const ahead = encodeHlc({ wallMs: Date.now() + 20_000, counter: 0, nodeId: "client" });
    assert.equal((await command(url, "agent.register", { agentId: "b" }, { hlc: ahead })).status, 200);
    assert.equal((await command(url, "agent.register", { agentId: "c" }, { hlc: ahead })).status, 200);
    const [warning, ...more] = warnings();
    assert.ok(warning !== undefined && (warning.leadMs as number) > 15_000, JSON.stringify(warnings()));
    assert.equal(warning.level, 40);
    assert.equal(more.length, 0, "not once per command");
  });
});
