/**
 * Pipelined requests (several sent on one connection before the first
 * answer): each answer goes to its own request, in order; nothing after an
 * answer that closes the connection is processed (RFC 9112 §9.6); and bytes
 * that do not parse after complete requests do not take their answers' place.
 * A command applied without its answer reaching the client, or answered with
 * another request's 400, leaves the client not knowing what happened.
 */
import assert from "node:assert/strict";
import net from "node:net";
import { describe, it } from "node:test";
import { openSwoosh } from "../../src/index.ts";
import { get, startTestServer } from "./helpers.ts";

interface RawAnswer {
  readonly status: number;
  readonly headers: Map<string, string>;
  readonly body: string;
}

/** Writes `bytes` in one go and reads every answer until the server closes the connection (or `idleMs` of silence). */
function pipeline(url: string, bytes: string | Buffer, idleMs = 1500, onWritten?: () => void): Promise<{ answers: RawAnswer[]; closed: boolean }> {
  const { port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), "127.0.0.1");
    let received = Buffer.alloc(0);
    let closed = false;
    let idle: NodeJS.Timeout | null = null;
    const finish = () => {
      if (idle !== null) clearTimeout(idle);
      socket.destroy();
      resolve({ answers: parseAnswers(received), closed });
    };
    const rearm = () => {
      if (idle !== null) clearTimeout(idle);
      idle = setTimeout(finish, idleMs);
    };
    socket.on("connect", () => {
      // Every byte as given: a test of bad UTF-8 writes bytes past 0x7f.
      socket.write(typeof bytes === "string" ? Buffer.from(bytes, "latin1") : bytes, () => onWritten?.());
      rearm();
    });
    socket.on("data", (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      rearm();
    });
    socket.on("end", () => {
      closed = true;
      finish();
    });
    socket.on("error", reject);
  });
}

function parseAnswers(received: Buffer): RawAnswer[] {
  const answers: RawAnswer[] = [];
  let at = 0;
  while (at < received.length) {
    const end = received.indexOf("\r\n\r\n", at);
    if (end < 0) break;
    const [statusLine = "", ...lines] = received.subarray(at, end).toString("latin1").split("\r\n");
    const headers = new Map(lines.map((line) => [line.slice(0, line.indexOf(":")).toLowerCase(), line.slice(line.indexOf(":") + 1).trim()]));
    const length = Number(headers.get("content-length") ?? 0);
    answers.push({ status: Number(statusLine.split(" ")[1]), headers, body: received.subarray(end + 4, end + 4 + length).toString("utf8") });
    at = end + 4 + length;
  }
  return answers;
}

/** A request as bytes, one character per byte (latin1). */
function post(path: string, body: string, headers: Record<string, string> = {}, version = "1.1"): string {
  const head = { host: "localhost", "content-type": "application/json", "content-length": String(Buffer.byteLength(body, "latin1")), ...headers };
  return `POST ${path} HTTP/${version}\r\n${Object.entries(head)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join("")}\r\n${body}`;
}

const register = (agentId: string) => JSON.stringify({ type: "agent.register", payload: { agentId } });

async function agentIds(url: string): Promise<string[]> {
  const answer = await get(url, "/agents");
  return (answer.body.agents as Array<{ id: string }>).map((agent) => agent.id).sort();
}

function codeOf(answer: RawAnswer | undefined): string | undefined {
  return answer === undefined ? undefined : (JSON.parse(answer.body) as { error?: { code: string } }).error?.code;
}

// "/%63ommand" is /command sent through Fastify: the lean path (hot-path.ts) takes only the exact URL.
describe("server: pipelined requests", () => {
  it("answers pipelined commands each with its own answer, in order", async (t) => {
    const { url } = await startTestServer(t);
    const { answers } = await pipeline(url, post("/command", register("p1")) + post("/%63ommand", register("p2")) + post("/command", register("p3")));
    assert.deepEqual(
      answers.map((answer) => [answer.status, (JSON.parse(answer.body) as { result: { agentId: string } }).result.agentId]),
      [
        [200, "p1"],
        [200, "p2"],
        [200, "p3"],
      ],
    );
    assert.deepEqual(await agentIds(url), ["p1", "p2", "p3"]);
  });

  it("answers applied commands before the 400 for unparsable bytes after them, never with it", async (t) => {
    const { url } = await startTestServer(t);
    for (const [name, trailer] of [
      ["one stray byte", "X"],
      ["a garbage request line", "GARBAGE\r\n\r\n"],
      ["a bad Content-Length", "POST /command HTTP/1.1\r\nHost: localhost\r\nContent-Length: x\r\n\r\n"],
    ] as const) {
      const first = `${name.replaceAll(" ", "-")}-1`;
      const second = `${name.replaceAll(" ", "-")}-2`;
      const { answers, closed } = await pipeline(url, post("/command", register(first)) + post("/%63ommand", register(second)) + trailer);
      assert.deepEqual(
        answers.map((answer) => answer.status),
        [200, 200, 400],
        `${name}: ${answers.map((answer) => answer.body).join(" | ")}`,
      );
      assert.equal((JSON.parse(answers[0]?.body ?? "") as { result: { agentId: string } }).result.agentId, first);
      assert.equal((JSON.parse(answers[1]?.body ?? "") as { result: { agentId: string } }).result.agentId, second);
      assert.equal(codeOf(answers[2]), "bad_request");
      assert.ok(closed, `${name}: the connection is closed after the 400`);
    }
    assert.equal((await agentIds(url)).length, 6);
  });

  it("processes nothing pipelined behind an answer that closes the connection", async (t) => {
    const { url } = await startTestServer(t);
    const cases: Array<[string, string, number]> = [
      ["bad JSON", post("/command", "{bad"), 400],
      ["bad UTF-8", post("/command", '"\xff\xfe"'), 400],
      ["bad JSON through fastify", post("/%63ommand", "{bad"), 400],
      ["bad genesis JSON", post("/state", "{bad"), 400],
      ["no Host", "GET /readyz HTTP/1.1\r\n\r\n", 400],
      ["the client's Connection: close", post("/command", register("closing-client"), { connection: "close" }), 200],
      ["HTTP/1.0", post("/command", register("http10-client"), {}, "1.0"), 200],
    ];
    for (const [name, first, status] of cases) {
      const behind = `behind-${name.replaceAll(/[^a-z0-9]+/gi, "-")}`;
      const { answers, closed } = await pipeline(url, first + post("/command", register(behind)) + post("/%63ommand", register(`${behind}-fastify`)));
      assert.deepEqual(
        answers.map((answer) => answer.status),
        [status],
        `${name}: ${answers.map((answer) => answer.body).join(" | ")}`,
      );
      assert.ok(closed, `${name}: closed`);
      const agents = await agentIds(url);
      assert.ok(!agents.includes(behind) && !agents.includes(`${behind}-fastify`), `${name}: nothing behind it was applied (${agents.join(", ")})`);
    }
    assert.deepEqual(await agentIds(url), ["closing-client", "http10-client"]);
  });

  it("processes nothing pipelined behind GET /watch (its stream holds the connection until it closes)", async (t) => {
    const { url } = await startTestServer(t);
    const { answers } = await pipeline(url, "GET /watch HTTP/1.1\r\nHost: localhost\r\n\r\n" + post("/command", register("behind-watch")), 800);
    assert.deepEqual(
      answers.map((answer) => answer.status),
      [200],
    );
    assert.deepEqual(await agentIds(url), []);
  });

  it("answers every pipelined command it applied when shutdown begins under them", async (t) => {
    for (let round = 0; round < 8; round++) {
      const { url, dataDir, close } = await startTestServer(t);
      let written = (): void => undefined;
      const writing = new Promise<void>((resolve) => (written = resolve));
      const sent = pipeline(url, post("/command", register("s1")) + post("/%63ommand", register("s2")) + post("/command", register("s3")), 1500, written);
      await writing;
      await new Promise((resolve) => setTimeout(resolve, round % 4));
      await close();
      const { answers } = await sent;
      const answered = answers.filter((answer) => answer.status === 200).map((answer) => (JSON.parse(answer.body) as { result: { agentId: string } }).result.agentId);
      const engine = await openSwoosh({ dataDir, snapshotEvery: 0 });
      const applied = Object.keys((await engine.readState()).state.agents as object).sort();
      await engine.close();
      assert.deepEqual(answered.sort(), applied, `round ${round}: every applied command was answered (${answers.map((answer) => answer.status).join(", ")})`);
    }
  });
});
