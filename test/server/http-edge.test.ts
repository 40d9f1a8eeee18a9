/**
 * The HTTP edge: error shape, health, auth, body limits and every malformed
 * body the server must refuse with 400 (or 413) without crashing — and the
 * `__proto__` keys it must accept as ordinary ones.
 */
import assert from "node:assert/strict";
import net from "node:net";
import { describe, it } from "node:test";
import { JSON_DEPTH_MAX } from "../../src/core/json.ts";
import { call, command, get, post, startTestServer } from "./helpers.ts";

function assertError(answer: { status: number; body: unknown; text: string }, status: number, code: string): void {
  assert.equal(answer.status, status, answer.text);
  const body = answer.body as { error: { code: string; message: string } };
  assert.equal(body.error.code, code, answer.text);
  assert.equal(typeof body.error.message, "string");
  assert.doesNotMatch(answer.text, /at .*\.ts:\d+|<html/i, "no stack trace, no HTML");
}

/** Sends raw bytes and returns what comes back before the server closes the connection (bounded). */
function rawExchange(url: string, bytes: string): Promise<string> {
  const { port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), "127.0.0.1", () => socket.write(bytes));
    let received = "";
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => (received += chunk));
    socket.on("close", () => resolve(received));
    socket.on("error", reject);
    socket.setTimeout(5000, () => socket.destroy());
  });
}

describe("server: HTTP edge", () => {
  it("answers /healthz, /readyz, and 404 not_found as JSON for unknown routes", async (t) => {
    const { url } = await startTestServer(t);
    const health = await get(url, "/healthz");
    assert.equal(health.status, 200);
    assert.deepEqual(health.body, { status: "ok" });
    const ready = await get(url, "/readyz");
    assert.equal(ready.status, 200);
    assert.equal(ready.body.status, "ready");
    assert.match(ready.body.genesisHash, /^[0-9a-f]{64}$/);
    assertError(await get(url, "/nope"), 404, "not_found");
    assertError(await call(url, "DELETE", "/state"), 404, "not_found");
    assert.ok((await get(url, "/healthz")).headers.get("x-request-id"));
  });

  it("refuses a query parameter a read does not take, naming it, instead of ignoring a misspelt filter", async (t) => {
    const { url } = await startTestServer(t);
    await command(url, "task.submit", { taskId: "q1", kind: "build" });
    await command(url, "task.submit", { taskId: "q2", kind: "test" });
    for (const [path, field] of [
      ["/tasks?stauts=queued", "stauts"],
      ["/tasks?status[]=queued", "status[]"],
      ["/tasks?kind=build&label=x", "label"],
      ["/tasks/q1?verbose=1", "verbose"],
      ["/agents?limit=1&__proto__=x", "__proto__"],
      ["/log?form=1", "form"],
      ["/state?index=1", "index"],
      ["/watch?after=1", "after"],
    ] as const) {
      const answer = await get(url, path);
      assertError(answer, 400, "bad_request");
      assert.equal(answer.body.error.details?.field, field, path);
    }
    // The parameters they do take still work.
    const built = await get(url, "/tasks?kind=build&status=queued&limit=10");
    assert.deepEqual(built.body.tasks.map((task: { id: string }) => task.id), ["q1"]);
    assert.equal((await get(url, "/log?from=1&limit=1")).status, 200);
    assert.equal((await get(url, "/state?at=1")).status, 200);
  });

  it("refuses a query string on every route that takes none, reads and writes alike, and applies nothing", async (t) => {
    const { url } = await startTestServer(t);
    const paths = (await get(url, "/openapi.json")).body.paths as Record<string, Record<string, { parameters?: Array<{ in: string; name: string }> }>>;
    const before = (await get(url, "/readyz")).body.index as number;
    let checked = 0;
    for (const [path, operations] of Object.entries(paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        if (method === "head") continue;
        const concrete = path.replace("{id}", "q1");
        const takes = new Set((operation.parameters ?? []).filter((parameter) => parameter.in === "query").map((parameter) => parameter.name));
        assert.ok(!takes.has("x") && !takes.has("%ZZ"));
        const body = method === "post" ? (path === "/commands" ? { commands: [{ type: "system.tick", payload: {} }] } : { type: "system.tick", payload: {} }) : undefined;
        for (const [query, field] of [["x=1", "x"], ["x=%ZZ", "x"], ["%ZZ=1", "%ZZ"]] as const) {
          const answer = await call(url, method.toUpperCase(), `${concrete}?${query}`, body);
          assertError(answer, 400, "bad_request");
          assert.equal(answer.body.error.details?.field, field, `${method} ${path}?${query}`);
        }
        checked += 1;
      }
    }
    assert.ok(checked >= 13, `every documented operation was tried (${checked})`);
    assert.equal((await get(url, "/readyz")).body.index, before, "no command was applied");
  });

  it("refuses a query value or name that is not valid percent-encoded UTF-8, naming it, as an undecodable path is refused", async (t) => {
    const { url } = await startTestServer(t);
    await command(url, "task.submit", { taskId: "q1", kind: "b c+é" });
    for (const [path, field] of [
      ["/tasks?status=%ZZ", "status"],
      ["/tasks?kind=%E0%A4", "kind"],
      ["/tasks?kind=%ED%A0%80", "kind"],
      ["/tasks?agentId=%C0%AF", "agentId"],
      ["/tasks?cursor=%", "cursor"],
      ["/tasks?limit=1&limit=%ZZ", "limit"],
      ["/tasks/q1?%ZZ=1", "%ZZ"],
      ["/agents?status=ready%FF", "status"],
      ["/log?from=%E0%A4", "from"],
      ["/state?at=1%", "at"],
      ["/watch?from=%Z1", "from"],
    ] as const) {
      const answer = await get(url, path);
      assertError(answer, 400, "bad_request");
      assert.equal(answer.body.error.details?.field, field, path);
      assert.match(answer.body.error.message, /percent-encoded UTF-8/, path);
    }
    // Valid encodings still decode: %-escapes, UTF-8, and + as a space.
    const found = await get(url, "/tasks?kind=b+c%2B%C3%A9&st%61tus=queued");
    assert.equal(found.status, 200, found.text);
    assert.deepEqual(found.body.tasks.map((task: { id: string }) => task.id), ["q1"]);
  });

  it("requires the bearer token everywhere but /healthz (401 unauthorized)", async (t) => {
    const { url } = await startTestServer(t, { token: "s3cret token" });
    assert.equal((await get(url, "/healthz")).status, 200);
    for (const path of ["/state", "/readyz", "/metrics", "/openapi.json", "/tasks", "/agents", "/log", "/watch", "/nope"]) {
      const answer = await get(url, path);
      assertError(answer, 401, "unauthorized");
      assert.match(answer.headers.get("www-authenticate") ?? "", /^Bearer/);
    }
    assertError(await get(url, "/state", { authorization: "Bearer wrong" }), 401, "unauthorized");
    assertError(await get(url, "/state", { authorization: "Basic czNjcmV0" }), 401, "unauthorized");
    assertError(await command(url, "agent.register", { agentId: "a" }), 401, "unauthorized");
    assert.equal((await get(url, "/state", { authorization: "Bearer s3cret token" })).status, 200);
    const accepted = await post(url, "/command", { type: "agent.register", payload: { agentId: "a" } }, { authorization: "bearer s3cret token" });
    assert.equal(accepted.status, 200, accepted.text);
    // A URL that cannot be decoded is checked like any other: the token first, then 400; a request id either way.
    const undecodable = await get(url, "/tasks/%zz");
    assertError(undecodable, 401, "unauthorized");
    assert.match(undecodable.headers.get("x-request-id") ?? "", /./);
    const withToken = await get(url, "/tasks/%zz", { authorization: "Bearer s3cret token", "x-request-id": "mine-1" });
    assertError(withToken, 400, "bad_request");
    assert.equal(withToken.headers.get("x-request-id"), "mine-1");
  });

  it("without a token, serves only requests for loopback host names (DNS rebinding guard); with one, any name", async (t) => {
    const { url } = await startTestServer(t);
    const port = new URL(url).port;
    const statusOf = (answer: string) => Number(answer.split(" ", 2)[1]);
    const getWithHost = (host: string, path: string) => rawExchange(url, `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    const commandWithHost = (host: string, agentId: string, path = "/command") => {
      const body = JSON.stringify({ type: "agent.register", payload: { agentId } });
      return rawExchange(url, `POST ${path} HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
    };
    for (const host of [
      `rebind.attacker.example:${port}`,
      "rebind.attacker.example",
      `127.0.0.1.attacker.example:${port}`,
      `localhost.attacker.example`,
      `[::2]:${port}`,
      "[::ffff:10.0.0.1]",
      "evil@127.0.0.1",
      "",
      "evil:1:2",
    ]) {
      const state = await getWithHost(host, "/state");
      assert.equal(statusOf(state), 400, `GET /state with Host ${host}: ${state}`);
      assert.match(state, /"code":"bad_request".*not a loopback name/);
      assert.equal(statusOf(await commandWithHost(host, "rebound")), 400, host);
      assert.equal(statusOf(await commandWithHost(host, "rebound", "/command?via=fastify")), 400, host);
      // /healthz tells nothing, and stays open to all, as it is without a token.
      assert.equal(statusOf(await getWithHost(host, "/healthz")), 200, host);
    }
    assert.equal((await get(url, "/agents")).body.agents.length, 0, "no command from a foreign host name was applied");
    for (const host of [
      `127.0.0.1:${port}`,
      `localhost:${port}`,
      "LOCALHOST",
      `[::1]:${port}`,
      `127.1.2.3:${port}`,
      `app.localhost:${port}`,
      "localhost.",
      `[0:0:0:0:0:0:0:1]:${port}`,
      "[::ffff:127.0.0.1]",
      `127.1:${port}`,
      "localhost:",
      `0.0.0.0:${port}`,
    ]) {
      assert.equal(statusOf(await getWithHost(host, "/state")), 200, host);
      assert.equal(statusOf(await commandWithHost(host, `ok-${host.replaceAll(/[^a-z0-9]/gi, "")}`)), 200, host);
    }
    // The verdict is remembered per Host value: alternating names are each judged as themselves.
    for (const [host, status] of [[`127.0.0.1:${port}`, 200], ["rebind.attacker.example", 400], ["rebind.attacker.example", 400], [`127.0.0.1:${port}`, 200], [`localhost:${port}`, 200], ["evil@127.0.0.1", 400]] as const) {
      assert.equal(statusOf(await commandWithHost(host, `again-${host.replaceAll(/[^a-z0-9]/gi, "")}`)), status, host);
    }

    const withToken = await startTestServer(t, { token: "s3cret" });
    const answer = await rawExchange(withToken.url, `GET /state HTTP/1.1\r\nHost: proxy.example.com\r\nAuthorization: Bearer s3cret\r\nConnection: close\r\n\r\n`);
    assert.equal(statusOf(answer), 200, answer);
  });

  it("refuses bodies over the limit with 413 payload_too_large", async (t) => {
    const { url } = await startTestServer(t);
    const big = JSON.stringify({ type: "task.submit", payload: { taskId: "t", kind: "k", payload: "x".repeat(1024 * 1024) } });
    assertError(await post(url, "/command", big), 413, "payload_too_large");
    const small = await startTestServer(t, { bodyLimitBytes: 100 });
    assertError(await command(small.url, "task.submit", { taskId: "t", kind: "k", payload: "y".repeat(200) }), 413, "payload_too_large");
    assert.equal((await command(small.url, "agent.register", { agentId: "a" })).status, 200);
  });

  it("refuses malformed bodies with 400 bad_request and keeps serving", async (t) => {
    const { url } = await startTestServer(t);
    assertError(await post(url, "/command", '{"type": "agent.register", '), 400, "bad_request");
    assertError(await post(url, "/command", ""), 400, "bad_request");
    assertError(await post(url, "/command", "[1, 2"), 400, "bad_request");
    assertError(await post(url, "/command", '"just a string"'), 400, "bad_request");
    assertError(await post(url, "/command", "[]"), 400, "bad_request");
    assertError(await post(url, "/command", '{"type":"agent.register","payload":{"agentId":"a"}}', { "content-type": "text/plain" }), 400, "bad_request");
    assertError(await call(url, "POST", "/command"), 400, "bad_request");
    // A lone surrogate escape, in a value and in a key.
    assertError(await post(url, "/command", '{"type":"task.submit","payload":{"taskId":"\\ud800","kind":"k"}}'), 400, "bad_request");
    assertError(await post(url, "/command", '{"type":"task.submit","payload":{"taskId":"t","kind":"k","payload":{"\\udfff":1}}}'), 400, "bad_request");
    // Nesting: within the bound is fine, past it is refused, and a huge run of brackets costs one scan.
    const nested = (depth: number) => `{"type":"task.submit","payload":{"taskId":"n${depth}","kind":"k","payload":${"[".repeat(depth)}${"]".repeat(depth)}}}`;
    assert.equal((await post(url, "/command", nested(JSON_DEPTH_MAX - 2))).status, 200);
    assertError(await post(url, "/command", nested(JSON_DEPTH_MAX + 5)), 400, "bad_request");
    assertError(await post(url, "/command", "[".repeat(500_000)), 400, "bad_request");
    // Envelope problems.
    assertError(await post(url, "/command", { type: "agent.register", payload: { agentId: "a" }, extra: true }), 400, "bad_request");
    assertError(await post(url, "/command", { payload: {} }), 400, "bad_request");
    assertError(await post(url, "/command", { type: "agent.register", payload: { agentId: "a" }, id: 7 }), 400, "bad_request");
    assertError(await post(url, "/command", { type: "agent.register", payload: { agentId: "a" }, hlc: "yesterday" }), 400, "bad_request");
    assertError(await command(url, "no.such.command", {}), 400, "unknown_command");
    assertError(await command(url, "agent.register", { agentId: "a", color: "red" }), 400, "bad_request");
    // Still serving.
    assert.equal((await get(url, "/healthz")).status, 200);
  });

  it("refuses a client HLC too far ahead with 400 clock_drift", async (t) => {
    const { url } = await startTestServer(t, { maxDriftMs: 60_000 });
    const future = `${String(Date.now() + 3_600_000).padStart(15, "0")}-0000000000-client`;
    assertError(await command(url, "agent.register", { agentId: "a" }, { hlc: future }), 400, "clock_drift");
    const near = `${String(Date.now() + 1000).padStart(15, "0")}-0000000005-client`;
    const accepted = await command(url, "agent.register", { agentId: "a" }, { hlc: near });
    assert.equal(accepted.status, 200, accepted.text);
    assert.ok(accepted.body.hlc > near, "the server's HLC follows the client's");
  });

  it("answers unparseable HTTP with a JSON 400 and closes that connection only", async (t) => {
    const { url } = await startTestServer(t);
    const answer = await rawExchange(url, "GARBAGE \x00\x01 nonsense\r\n\r\n");
    assert.match(answer, /^HTTP\/1\.1 400/);
    assert.match(answer, /"code":"bad_request"/);
    assert.match(answer, /\r\nX-Request-Id: [0-9a-f]{8}-[0-9a-z]+\r\n/i, "every answer carries a request id");
    assert.equal((await get(url, "/healthz")).status, 200);
    // Headers past Node's limit: the 400 says so.
    const oversized = await rawExchange(url, `GET /state HTTP/1.1\r\nHost: localhost\r\nX-Pad: ${"y".repeat(20_000)}\r\n\r\n`);
    assert.match(oversized, /^HTTP\/1\.1 400/);
    assert.match(oversized, /"code":"bad_request","message":"the request line and headers are larger than 16 KiB"/);
  });

  it("serves a request with an Expect other than 100-continue as any other (no bare 417 before the token check)", async (t) => {
    const { url } = await startTestServer(t, { token: "s3cret" });
    const body = JSON.stringify({ type: "agent.register", payload: { agentId: "expecting" } });
    const send = (auth: string) =>
      rawExchange(url, `POST /command HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nExpect: foo\r\n${auth}Content-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
    const refused = await send("");
    assert.match(refused, /^HTTP\/1\.1 401/, refused);
    assert.match(refused, /"code":"unauthorized"/);
    const served = await send("Authorization: Bearer s3cret\r\n");
    assert.match(served, /^HTTP\/1\.1 200/, served);
    assert.match(served, /"agentId":"expecting"/);
  });

  it("treats __proto__ and constructor as ordinary ids and keys", async (t) => {
    const { url } = await startTestServer(t);
    const raw = '{"type":"task.submit","payload":{"taskId":"__proto__","kind":"constructor","payload":{"__proto__":{"polluted":true},"constructor":{"prototype":1}}}}';
    const submitted = await post(url, "/command", raw);
    assert.equal(submitted.status, 200, submitted.text);
    assert.equal(submitted.body.result.taskId, "__proto__");
    assert.equal(({} as Record<string, unknown>).polluted, undefined);

    const task = await get(url, `/tasks/${encodeURIComponent("__proto__")}`);
    assert.equal(task.status, 200, task.text);
    assert.equal(task.body.id, "__proto__");
    assert.equal(task.body.kind, "constructor");
    assert.ok(task.text.includes('"payload":{"__proto__":{"polluted":true},"constructor":{"prototype":1}}'), task.text);
    assert.ok(Object.prototype.hasOwnProperty.call(task.body.payload, "__proto__"));

    assert.equal((await command(url, "task.submit", { taskId: "constructor", kind: "k" })).status, 200);
    const list = await get(url, "/tasks");
    assert.deepEqual(
      list.body.tasks.map((t: { id: string }) => t.id),
      ["__proto__", "constructor"],
    );
    const state = await get(url, "/state");
    assert.ok(Object.prototype.hasOwnProperty.call(state.body.state.tasks, "__proto__"));
    // Ids with slashes, spaces, emoji, the empty id and the longest id survive the path.
    for (const id of ["a/b", "with space", "🚀", "%41", "", "é".repeat(1024)]) {
      assert.equal((await command(url, "task.submit", { taskId: id, kind: "k" })).status, 200);
      const found = await get(url, `/tasks/${encodeURIComponent(id)}`);
      assert.equal(found.status, 200, `${id}: ${found.text}`);
      assert.equal(found.body.id, id);
    }
    const missing = await get(url, "/tasks/missing");
    assertError(missing, 404, "unknown_task");
    assert.equal(missing.headers.get("swoosh-index"), (await get(url, "/state")).body.index.toString(), "the 404 says which index it was read at");
  });

  it("publishes metrics with the named series", async (t) => {
    const { url } = await startTestServer(t);
    await command(url, "agent.register", { agentId: "a" });
    await command(url, "agent.heartbeat", { agentId: "ghost" });
    const metrics = await get(url, "/metrics");
    assert.equal(metrics.status, 200);
    assert.match(metrics.headers.get("content-type") ?? "", /^text\/plain/);
    for (const line of [
      'swoosh_commands_total{type="agent.register"} 1',
      'swoosh_command_rejections_total{code="unknown_agent"} 1',
      "swoosh_wal_flush_duration_seconds_bucket",
      "swoosh_wal_batch_size_bucket",
      "swoosh_wal_index 1",
      "swoosh_snapshot_age_seconds",
      "process_cpu_user_seconds_total",
      "nodejs_heap_size_used_bytes",
    ]) {
      assert.ok(metrics.text.includes(line), `missing ${line}`);
    }
  });
});
