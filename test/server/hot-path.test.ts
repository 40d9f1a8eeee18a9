/**
 * The lean path for `POST /command` and `POST /commands` (src/server/hot-path.ts)
 * answers exactly as the Fastify routes did: request id, SPEC error JSON,
 * `Connection: close` after a body it could not read and once shutdown began,
 * refusals counted by code; and the requests it leaves to Fastify (401, 413,
 * another media type, a chunked body, a query string) are answered there.
 */
import assert from "node:assert/strict";
import net from "node:net";
import { describe, it } from "node:test";
import { openSwoosh } from "../../src/index.ts";
import { get, startTestServer } from "./helpers.ts";

interface RawAnswer {
  readonly status: number;
  /** Header names lower-cased. */
  readonly headers: Map<string, string>;
  readonly body: string;
  /** The server closed the connection after this answer. */
  readonly closed: boolean;
}

/**
 * Writes `parts` to a fresh connection (one write each, `pauseMs` apart, or
 * after `between()` resolves), and reads one response: up to its
 * Content-Length, then waits briefly to see whether the server closes.
 */
function exchange(url: string, parts: readonly (string | Buffer)[], between?: () => Promise<void>): Promise<RawAnswer> {
  const { port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), "127.0.0.1");
    let received = Buffer.alloc(0);
    let answer: Omit<RawAnswer, "closed"> | null = null;
    let closed = false;
    const finish = () => {
      if (answer === null) return;
      socket.destroy();
      resolve({ ...answer, closed });
    };
    socket.on("data", (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const end = received.indexOf("\r\n\r\n");
      if (end < 0 || answer !== null) return;
      const [statusLine = "", ...lines] = received.subarray(0, end).toString("latin1").split("\r\n");
      const headers = new Map(lines.map((line) => [line.slice(0, line.indexOf(":")).toLowerCase(), line.slice(line.indexOf(":") + 1).trim()]));
      const length = Number(headers.get("content-length") ?? 0);
      if (received.length < end + 4 + length) return;
      answer = { status: Number(statusLine.split(" ")[1]), headers, body: received.subarray(end + 4, end + 4 + length).toString("utf8") };
      setTimeout(finish, 100);
    });
    socket.on("end", () => {
      closed = true;
      finish();
    });
    socket.on("error", reject);
    socket.setTimeout(5000, () => {
      socket.destroy();
      reject(new Error("no answer within 5 s"));
    });
    socket.on("connect", async () => {
      for (let i = 0; i < parts.length; i++) {
        if (i > 0 && between) await between();
        socket.write(parts[i] as string | Buffer);
      }
    });
  });
}

function request(path: string, body: string | Buffer, headers: Record<string, string> = {}): string | Buffer {
  const bytes = typeof body === "string" ? Buffer.from(body) : body;
  const head = { host: "localhost", "content-type": "application/json", "content-length": String(bytes.length), ...headers };
  const text = `POST ${path} HTTP/1.1\r\n${Object.entries(head)
    .filter(([, value]) => value !== "")
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join("")}\r\n`;
  return Buffer.concat([Buffer.from(text, "latin1"), bytes]);
}

const submit = (taskId: string) => JSON.stringify({ type: "task.submit", payload: { taskId, kind: "k" } });

function assertSpecError(answer: RawAnswer, status: number, code: string): void {
  assert.equal(answer.status, status, answer.body);
  assert.equal(answer.headers.get("content-type"), "application/json; charset=utf-8");
  const body = JSON.parse(answer.body) as { error: { code: string; message: string } };
  assert.equal(body.error.code, code, answer.body);
  assert.equal(typeof body.error.message, "string");
  assert.doesNotMatch(answer.body, /at .*\.ts:\d+/, "no stack trace");
  assert.ok(answer.headers.get("x-request-id"), "X-Request-Id on every answer");
}

describe("server: lean write path", () => {
  it("answers commands with the request id, after durability, keeping the connection", async (t) => {
    const { url } = await startTestServer(t);
    const given = await exchange(url, [request("/command", submit("a"), { "x-request-id": "trace-1" })]);
    assert.equal(given.status, 200, given.body);
    assert.equal(given.headers.get("x-request-id"), "trace-1");
    assert.equal(given.headers.get("content-type"), "application/json; charset=utf-8");
    assert.equal(given.closed, false);
    const answer = JSON.parse(given.body) as { index: number; result: { taskId: string } };
    assert.equal(answer.index, 1);
    assert.equal(answer.result.taskId, "a");
    // A request id that is not a short token is replaced by the server's own.
    const generated = await exchange(url, [request("/command", submit("b"), { "x-request-id": "not a token" })]);
    assert.equal(generated.status, 200);
    assert.match(generated.headers.get("x-request-id") ?? "", /^[0-9a-f]{8}-[0-9a-z]+$/);
    // charset=utf-8, in any case, is the same media type.
    assert.equal((await exchange(url, [request("/command", submit("c"), { "content-type": "Application/JSON; charset=UTF-8" })])).status, 200);
    // The batch route.
    const batch = await exchange(url, [request("/commands", JSON.stringify({ commands: [JSON.parse(submit("d")), { type: "no.such" }] }))]);
    assert.equal(batch.status, 200, batch.body);
    const items = (JSON.parse(batch.body) as { results: { index?: number; error?: { code: string } }[] }).results;
    assert.equal(items[0]?.index, 4);
    assert.equal(items[1]?.error?.code, "unknown_command");
    assert.equal((await get(url, "/state")).body.index, 4);
  });

  it("refuses bodies it cannot read with 400 and Connection: close, counting every refusal by its code", async (t) => {
    const { url } = await startTestServer(t);
    for (const body of ["{nope", "   ", Buffer.from([0x7b, 0xff, 0x7d]), '{"type":"task.submit","payload":{"taskId":"\\ud800","kind":"k"}}', `{"type":"task.submit","payload":${"[".repeat(100)}${"]".repeat(100)}}`]) {
      const answer = await exchange(url, [request("/command", body)]);
      assertSpecError(answer, 400, "bad_request");
      assert.equal(answer.headers.get("connection"), "close", `${String(body)}: the rest of the connection is not trusted`);
      assert.equal(answer.closed, true);
    }
    const refused = await exchange(url, [request("/command", JSON.stringify({ type: "no.such", payload: {} }))]);
    assertSpecError(refused, 400, "unknown_command");
    assert.equal(refused.closed, false, "a refused command keeps the connection");
    assertSpecError(await exchange(url, [request("/command", JSON.stringify({ type: "task.submit", payload: {}, extra: 1 }))]), 400, "bad_request");
    const metrics = (await get(url, "/metrics")).text;
    assert.match(metrics, /swoosh_command_rejections_total\{code="unknown_command"\} 1\b/);
    assert.match(metrics, /swoosh_command_rejections_total\{code="bad_request"\} 6\b/, "five unreadable bodies and the envelope refusal");
    assert.equal((await get(url, "/state")).body.index, 0, "nothing was applied");
  });

  it("leaves other requests to Fastify, which answers them as before", async (t) => {
    const { url } = await startTestServer(t, { token: "s3cret", bodyLimitBytes: 256 });
    const auth = { authorization: "Bearer s3cret" };
    const noToken = await exchange(url, [request("/command", submit("a"))]);
    assertSpecError(noToken, 401, "unauthorized");
    assert.equal(noToken.headers.get("www-authenticate"), 'Bearer realm="swoosh"');
    assertSpecError(await exchange(url, [request("/command", submit("a"), { authorization: "Bearer wrong" })]), 401, "unauthorized");
    const tooBig = await exchange(url, [request("/command", JSON.stringify({ type: "task.submit", payload: { taskId: "big", kind: "k", payload: "x".repeat(300) } }), auth)]);
    assertSpecError(tooBig, 413, "payload_too_large");
    assertSpecError(await exchange(url, [request("/command", submit("a"), { ...auth, "content-type": "text/plain" })]), 400, "bad_request");
    assertSpecError(await exchange(url, [request("/command", submit("a"), { ...auth, "content-type": "application/json; charset=latin1" })]), 400, "bad_request");
    assertSpecError(await exchange(url, [request("/command", submit("a"), { ...auth, "content-encoding": "gzip" })]), 400, "bad_request");
    assertSpecError(await exchange(url, [request("/command", "", { ...auth, "content-length": "0" })]), 400, "bad_request");
    assertSpecError(await exchange(url, [request("/command", submit("a"), { ...auth, host: "" })]), 400, "bad_request");
    // Accepted through Fastify: a percent-encoded path, a chunked body. A query string is refused there (a route takes none).
    assert.equal((await exchange(url, [request("/%63ommand", submit("q"), auth)])).status, 200);
    assertSpecError(await exchange(url, [request("/command?trace=1", submit("traced"), auth)]), 400, "bad_request");
    const body = submit("chunked");
    const chunked = `POST /command HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\nauthorization: Bearer s3cret\r\ntransfer-encoding: chunked\r\n\r\n${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`;
    assert.equal((await exchange(url, [chunked])).status, 200);
    assert.equal((await exchange(url, [request("/command", submit("ok"), auth)])).status, 200);
    assert.equal((await get(url, "/state", auth)).body.index, 3);
    // Refused before any route ran, or by Fastify's parser: counted once each, as the lean path counts its own.
    assertSpecError(await exchange(url, [request("/commands", "{}", { ...auth, "content-type": "text/plain" })]), 400, "bad_request");
    assertSpecError(await exchange(url, [request("/commands?x=1", JSON.stringify({ commands: [] }), auth)]), 400, "bad_request");
    assertSpecError(await exchange(url, [request("/command?x=1", JSON.stringify({ type: "no.such" }), auth)]), 400, "bad_request");
    // A percent-encoded path is routed as /command (Fastify decodes it), so its refusal is a write refusal too.
    assertSpecError(await exchange(url, [request("/%63ommand", JSON.stringify({ type: "no.such" }), auth)]), 400, "unknown_command");
    const metrics = (await get(url, "/metrics", auth)).text;
    assert.match(metrics, /swoosh_command_rejections_total\{code="unauthorized"\} 2\b/);
    assert.match(metrics, /swoosh_command_rejections_total\{code="payload_too_large"\} 1\b/);
    assert.match(metrics, /swoosh_command_rejections_total\{code="bad_request"\} 9\b/);
    assert.match(metrics, /swoosh_command_rejections_total\{code="unknown_command"\} 1\b/);
  });

  it("answers a command whose body arrives after shutdown began with 503 and Connection: close", async (t) => {
    const test = await startTestServer(t);
    const whole = request("/command", submit("late")) as Buffer;
    const split = whole.length - 5;
    let closing: Promise<void> | null = null;
    const answer = await exchange(test.url, [whole.subarray(0, split), whole.subarray(split)], async () => {
      closing = test.close();
      await new Promise((resolve) => setTimeout(resolve, 100));
    });
    assertSpecError(answer, 503, "unavailable");
    assert.equal(answer.headers.get("connection"), "close");
    await closing;
  });

  it("forgets a request whose client went away mid-body, and keeps serving", async (t) => {
    const { url } = await startTestServer(t);
    const { port } = new URL(url);
    const whole = request("/command", submit("gone")) as Buffer;
    await new Promise<void>((resolve, reject) => {
      const socket = net.connect(Number(port), "127.0.0.1", () => {
        socket.write(whole.subarray(0, whole.length - 10));
        setTimeout(() => {
          socket.destroy();
          resolve();
        }, 50);
      });
      socket.on("error", reject);
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal((await get(url, "/state")).body.index, 0, "nothing was submitted");
    assert.equal((await exchange(url, [request("/command", submit("next"))])).status, 200);
  });

  it("answers 503 without a stack when answering fails (a bug), and keeps serving", async (t) => {
    const { url } = await startTestServer(t, {
      openEngine: async (options) => {
        const engine = await openSwoosh(options);
        const submit = engine.submit.bind(engine);
        // An outcome JSON.stringify cannot write, for one task id.
        engine.submit = ((input: { payload?: unknown }, ...rest: unknown[]) =>
          (input.payload as { taskId?: string }).taskId === "unwritable" ? Promise.resolve({ index: 1n } as never) : submit(input as never, ...(rest as []))) as typeof engine.submit;
        return engine;
      },
    });
    const answer = await exchange(url, [request("/command", submit("unwritable"))]);
    assertSpecError(answer, 503, "unavailable");
    assert.match(JSON.parse(answer.body).error.message, /internal error \(request [^)]+\)/);
    assert.equal((await exchange(url, [request("/command", submit("fine"))])).status, 200);
  });
});
