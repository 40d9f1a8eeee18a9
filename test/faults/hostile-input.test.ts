/**
 * Hostile input against the real server (`swoosh serve` in a child process):
 *
 *  1. An HTTP fuzzer (fast-check, seeded): valid commands of every type,
 *     the same with wrong types, huge and odd numbers (1e308, -0, 2^53+1),
 *     deep nesting, lone surrogates as \ud800 escapes, __proto__ /
 *     constructor / prototype keys, unknown types, far-future and malformed
 *     HLCs, reused idempotency ids; oversized bodies, invalid UTF-8 bytes,
 *     truncated and non-JSON bodies; odd methods, paths, percent-encodings,
 *     query strings (huge ones too) and headers (content types, charsets,
 *     encodings, ids, tokens, ETags).
 *  2. A raw-socket fuzzer (node:net): malformed request lines and headers,
 *     bad chunked encoding, conflicting lengths, truncated bodies, pipelined
 *     garbage, closed half way.
 *  3. Slow and idle connections: slowloris (headers a byte at a time), idle
 *     sockets, stalled bodies, half-open sockets, many connections at once.
 *
 * Every answer to a bad request is a 4xx in the SPEC error shape
 * `{"error":{"code","message"}}` with the status its code maps to — never a
 * 5xx, a stack trace or HTML. After every batch /healthz answers within a
 * bound, and the server child's RSS stays under a bound. Slow connections are
 * closed within the header timeout (10 s) while others are served. At the end
 * the state changed only through the commands that were answered 200: GET /log
 * holds exactly those (at the indexes they were acknowledged with) plus the
 * server's own ticks, and the offline replay gives the served state hash.
 *
 * SWOOSH_FUZZ_CASES sets the number of cases (2,000 by default; 100,000 in
 * long mode), a fifth of them raw-socket cases; SWOOSH_SEED replays a run.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import { ERROR_STATUS } from "../../src/core/errors.ts";
import { canonicalJSON } from "../../src/core/json.ts";
import type { JsonValue } from "../../src/core/json.ts";
import { DURATION_MS_MAX } from "../../src/domain/limits.ts";
import { tempDir } from "../support/engine-fixtures.ts";
import { NoAnswer, killChildren, scaled, readLog, request, rssBytes, seedFromEnv, sleep, spawnServer, stopServer, verifyCli } from "./harness.ts";
import type { Answer, ServerChild } from "./harness.ts";

const seed = seedFromEnv();
const totalCases = scaled("SWOOSH_FUZZ_CASES", 2000, 100_000);
const rawCases = Math.floor(totalCases / 5);
const httpCases = totalCases - rawCases;
const BATCH = 250;
const PARALLEL = 8;
/** /healthz must answer within this after every batch. */
const HEALTH_BOUND_MS = 2000;
/** The server's RSS may grow at most this much above its size after the first batch. */
const RSS_GROWTH_MAX = 256 * 1024 * 1024;
const BODY_LIMIT = 1024 * 1024;
const HEADERS_TIMEOUT_MS = 10_000;

after(killChildren);

// ------------------------------------------------------------------ checks

const ERROR_CODES = new Set(Object.keys(ERROR_STATUS));
const STACK = /\bat [^\n]*[(/][^\n]*:\d+:\d+|<html|<!doctype|node_modules/i;

/** Why an HTTP answer breaks the contract, or null. */
function answerProblem(status: number, contentType: string | null, text: string, method: string, options: { timedOut?: boolean } = {}): string | null {
  // A request that did not arrive in time is answered 503 unavailable: retryable, nothing of it was applied.
  if (status >= 500 && !(options.timedOut === true && status === 503)) return `HTTP ${status} (a 5xx): ${text.slice(0, 300)}`;
  if (STACK.test(text)) return `a stack trace or HTML in the answer: ${text.slice(0, 300)}`;
  if (status < 400) return null;
  if (method === "HEAD") return null;
  if (!/^application\/json/.test(contentType ?? "")) return `HTTP ${status} with content-type ${contentType}: ${text.slice(0, 200)}`;
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return `HTTP ${status} with a body that is not JSON: ${text.slice(0, 200)}`;
  }
  const error = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  if (typeof error !== "object" || error === null || Object.keys(body as object).length !== 1) return `HTTP ${status}: not the SPEC error shape: ${text.slice(0, 200)}`;
  if (typeof error.code !== "string" || !ERROR_CODES.has(error.code)) return `HTTP ${status}: unknown error code ${String(error.code)}`;
  if (typeof error.message !== "string") return `HTTP ${status}: error.message is not a string`;
  for (const key of Object.keys(error)) if (!["code", "message", "details"].includes(key)) return `HTTP ${status}: extra error field ${key}`;
  if (ERROR_STATUS[error.code as keyof typeof ERROR_STATUS] !== status) return `HTTP ${status} with code ${error.code}, which maps to ${ERROR_STATUS[error.code as keyof typeof ERROR_STATUS]}`;
  return null;
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** The command a POST /command body holds, by this test's reading of it (strict UTF-8 JSON), or null. */
function commandOf(body: string | Uint8Array | undefined): { type: string; payload: JsonValue; id?: string } | null {
  if (body === undefined) return null;
  try {
    const text = typeof body === "string" ? body : strictUtf8.decode(body);
    const parsed = JSON.parse(text) as { type: string; payload?: JsonValue; id?: string };
    return { type: parsed.type, payload: parsed.payload === undefined ? {} : parsed.payload, ...(parsed.id === undefined ? {} : { id: parsed.id }) };
  } catch {
    return null;
  }
}

/** What the server acknowledged, and every broken promise seen. */
class Model {
  /** Applied commands by index (first acknowledgement). */
  readonly accepted = new Map<number, { type: string; payload: JsonValue; id?: string }>();
  /** Idempotent repeats: the id must be the one logged at that index. */
  readonly duplicates: Array<{ id: string; index: number }> = [];
  readonly problems: string[] = [];
  readonly statuses = new Map<number, number>();
  cases = 0;
  noAnswer = 0;
  clientRefused = 0;

  count(status: number): void {
    this.statuses.set(status, (this.statuses.get(status) ?? 0) + 1);
  }

  problem(what: string): void {
    if (this.problems.length < 50) this.problems.push(what);
  }
}

// ------------------------------------------------------------------ the HTTP fuzzer's inputs

interface FuzzRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body?: string | Uint8Array;
}

const ids = fc.oneof(
  { weight: 12, arbitrary: fc.constantFrom("a1", "a2", "a3", "t1", "t2", "t3", "t4", "", "__proto__", "constructor", "prototype", "toString", "🚀", "x/y", "%41", "a b") },
  { weight: 2, arbitrary: fc.string({ maxLength: 12 }) },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 6 }) },
  { weight: 1, arbitrary: fc.constantFrom("\ud800", "a\udfffb", "x".repeat(1025), "é".repeat(1024)) },
);
const oddNumbers = fc.constantFrom(1e308, -1e308, -0, 2 ** 53 + 1, 2 ** 53, -(2 ** 53) - 1, 1.5, 0.1, 5e-324, 2 ** 31, 2 ** 31 - 1, -(2 ** 31), -(2 ** 31) - 1, 0, -1, 1e21);
const keys = fc.oneof(fc.constantFrom("__proto__", "constructor", "prototype", "toString", "hasOwnProperty", "", "🚀", "\ud800"), fc.string({ maxLength: 6 }));
const jsonish: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    oddNumbers,
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.integer(),
    fc.string({ maxLength: 10 }),
    fc.constantFrom("\ud800", "\udc00x", "é", "\u0000", "💥"),
    fc.array(tie("value"), { maxLength: 3 }),
    fc.dictionary(keys, tie("value"), { maxKeys: 3 }),
  ),
})).value;
const labels = fc.array(fc.constantFrom("gpu", "linux", "gpu", "linux", "", "🚀", "x".repeat(257)), { maxLength: 3 });
const token = fc.oneof(fc.integer({ min: 1, max: 300 }), oddNumbers);

const validPayloads: Record<string, fc.Arbitrary<Record<string, unknown>>> = {
  "agent.register": fc.record({ agentId: ids, labels, capacity: fc.integer({ min: 1, max: 4 }) }, { requiredKeys: ["agentId"] }),
  "agent.heartbeat": fc.record({ agentId: ids }),
  "agent.drain": fc.record({ agentId: ids }),
  "agent.remove": fc.record({ agentId: ids }),
  "task.submit": fc.record(
    {
      taskId: ids,
      kind: fc.oneof(fc.constantFrom("build", "test", "__proto__"), fc.string({ minLength: 1, maxLength: 5 })),
      payload: jsonish,
      priority: fc.integer({ min: -3, max: 3 }),
      dependsOn: fc.array(ids, { maxLength: 2 }),
      requires: labels,
      maxAttempts: fc.integer({ min: 1, max: 4 }),
    },
    { requiredKeys: ["taskId", "kind"] },
  ),
  "task.claim": fc.record({ agentId: ids, limit: fc.integer({ min: 1, max: 3 }) }, { requiredKeys: ["agentId"] }),
  "task.complete": fc.record({ taskId: ids, token, result: jsonish }, { requiredKeys: ["taskId", "token"] }),
  "task.fail": fc.record({ taskId: ids, token, error: jsonish, retryable: fc.boolean() }, { requiredKeys: ["taskId", "token", "error"] }),
  "task.cancel": fc.record({ taskId: ids, reason: fc.string({ maxLength: 8 }) }, { requiredKeys: ["taskId"] }),
  "task.prune": fc.record({ before: fc.oneof(fc.integer({ min: 0, max: 2 ** 40 }), oddNumbers), statuses: fc.subarray(["succeeded", "failed", "cancelled"], { minLength: 1 }) }, { requiredKeys: ["before"] }),
  "orchestrator.setPhase": fc.record({ phase: fc.constantFrom("active", "active", "active", "draining", "halted", "paused") }),
  "orchestrator.configure": fc.record(
    {
      leaseTtlMs: fc.constantFrom(1000, 60_000, DURATION_MS_MAX, 0, DURATION_MS_MAX + 1),
      heartbeatTimeoutMs: fc.constantFrom(5000, DURATION_MS_MAX),
      maxAttempts: fc.integer({ min: 1, max: 5 }),
      backoffBaseMs: fc.constantFrom(1, 1000),
      backoffMaxMs: fc.constantFrom(1000, 60_000),
    },
    { requiredKeys: [] },
  ),
  "system.tick": fc.constant({}),
};
const commandTypes = Object.keys(validPayloads);

/** Replaces one field of `payload` by a value of the wrong kind (or adds an unknown one). */
const mutate = (payload: Record<string, unknown>): fc.Arbitrary<unknown> =>
  fc.oneof(
    // JSON.parse of such a text keeps __proto__ as an own data key.
    fc.tuple(fc.constantFrom(...Object.keys(payload), "extra", "__proto__"), fc.oneof(oddNumbers, jsonish, fc.constantFrom(null, true, [], {}, "", "1"))).map(([key, value]) => JSON.parse(withKey(payload, key, value)) as unknown),
    fc.constantFrom(null, 42, "text", [payload], true),
  );

const hlcs = fc.oneof(
  fc.integer({ min: -120_000, max: 30_000 }).map((offset) => `${String(Date.now() + offset).padStart(15, "0")}-${"0".repeat(9)}1-client`),
  fc.constantFrom("999999999999999-0000000000-x", "000000000000000-9999999999-x", "yesterday", "", "1-1-1", `${String(Date.now()).padStart(15, "0")}-9999999999-x`),
  fc.integer(),
);

const command = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(...commandTypes).chain((type) => fc.record({ type: fc.constant(type), payload: validPayloads[type] as fc.Arbitrary<unknown> })) },
  {
    weight: 2,
    arbitrary: fc
      .constantFrom(...commandTypes)
      .chain((type) => (validPayloads[type] as fc.Arbitrary<Record<string, unknown>>).chain((payload) => fc.record({ type: fc.constant(type), payload: mutate(payload) }))),
  },
  { weight: 1, arbitrary: fc.record({ type: fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom("__proto__", "constructor", "toString", "TASK.SUBMIT", "task.submit ", "x".repeat(200)), oddNumbers), payload: jsonish }) },
);
/** The text of a JSON object with `key` as an own key (JSON.stringify cannot write an own __proto__). */
function withKey(object: Record<string, unknown>, key: string, value: unknown): string {
  return JSON.stringify({ ...object, __key_placeholder__: value }).replace('"__key_placeholder__"', JSON.stringify(key));
}

const envelope = fc.oneof(
  // Clean: no id, or a fresh one (an idempotent repeat now and then), no HLC or a near one.
  {
    weight: 4,
    arbitrary: fc
      .record({
        command,
        id: fc.oneof({ weight: 4, arbitrary: fc.uuid() }, { weight: 1, arbitrary: fc.constantFrom("id-1", "id-2", "__proto__", "") }, { weight: 3, arbitrary: fc.constant(undefined) }),
        hlc: fc.oneof({ weight: 3, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: hlcs }),
      })
      .map(({ command: c, id, hlc }) => JSON.stringify({ ...(c as object), ...(id === undefined ? {} : { id }), ...(hlc === undefined ? {} : { hlc }) })),
  },
  // Dirty: ids and HLCs of every kind, unknown envelope fields.
  {
    weight: 1,
    arbitrary: fc
      .record(
        {
          command,
          id: fc.oneof(fc.constantFrom("id-1", "id-2", "id-3", "", "__proto__", "\ud800"), fc.string({ maxLength: 8 }), fc.constant("i".repeat(300)), fc.integer(), fc.constant(null)),
          hlc: hlcs,
          extra: fc.constantFrom("unknown", "__proto__", "constructor", "prototype"),
        },
        { requiredKeys: ["command"] },
      )
      .map(({ command: c, id, hlc, extra }) => {
        const out: Record<string, unknown> = { ...(c as object) };
        if (id !== undefined) out.id = id;
        if (hlc !== undefined) out.hlc = hlc;
        return extra === undefined ? JSON.stringify(out) : withKey(out, extra, 1);
      }),
  },
);

/** Bodies that are not a JSON command: bytes, broken JSON, huge, deep. */
const oddBodies: fc.Arbitrary<string | Uint8Array> = fc.oneof(
  fc.uint8Array({ maxLength: 64 }),
  envelope.map((text) => text.slice(0, Math.max(0, Math.floor(text.length / 2)))),
  envelope.map((text) => {
    const bytes = Buffer.from(text);
    const at = bytes.indexOf(0x22, Math.floor(bytes.length / 2));
    return Buffer.concat([bytes.subarray(0, at + 1), Buffer.from([0xff, 0xc0, 0xaf, 0xed, 0xa0, 0x80]), bytes.subarray(at + 1)]);
  }),
  fc.constantFrom("", " ", "null", "0", "[]", "{}", '"x"', "{", "}", "\ufeff{}", "[".repeat(100_000), `{"type":"task.submit","payload":${"[".repeat(70)}${"]".repeat(70)}}`),
  fc.constantFrom("big").map(() => `{"type":"task.submit","payload":{"taskId":"big","kind":"k","payload":"${"x".repeat(BODY_LIMIT)}"}}`),
);

const contentTypes = fc.constantFrom(
  "application/json",
  "application/json",
  "application/json; charset=utf-8",
  "application/json; charset=latin1",
  "APPLICATION/JSON",
  "text/plain",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=x",
  "application/json-patch+json",
  "application/json;;;",
  "",
);
const headerValue = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 40 });
const extraHeaders = fc.record(
  {
    "x-request-id": fc.oneof(headerValue, fc.constant("r".repeat(1000))),
    authorization: fc.oneof(headerValue, fc.constant("Bearer ")),
    "if-none-match": fc.oneof(headerValue, fc.constant("*"), fc.constant('W/"x"')),
    "last-event-id": headerValue,
    accept: fc.constantFrom("*/*", "text/html", "application/xml", "text/event-stream", ""),
    "content-encoding": fc.constantFrom("gzip", "br", "identity", "x"),
    "x-garbage": headerValue,
  },
  { requiredKeys: [] },
);

const segments = fc.oneof(
  ids.map((id) => encodeURIComponent(id.isWellFormed() ? id : "x")),
  fc.constantFrom("%", "%zz", "%00", "%ff", "%c0%af", "%ED%A0%80", "%2e%2e", "..", ".", "%2F", "x".repeat(13_000), "%E2%82", "a;b"),
);
const queries = fc.oneof(
  fc.constant(""),
  fc.constantFrom(
    "?at=-1",
    "?at=1e308",
    "?at=9007199254740993",
    "?at=0x10",
    "?at=",
    "?at=1&at=2",
    "?limit=0",
    "?limit=1001",
    "?limit=-1",
    "?limit=abc",
    "?from=0",
    "?from=99999999999",
    "?cursor=%ff",
    "?cursor=abc",
    "?status=queued,leased",
    "?status=nope",
    "?status=queued&status=leased",
    "?__proto__=1&constructor=2",
    "?a[b]=1&a[c]=2",
    "?%zz=%zz",
  ),
  fc.integer({ min: 1000, max: 20_000 }).map((n) => `?x=${"q".repeat(n)}`),
  fc.array(fc.tuple(fc.constantFrom("at", "limit", "from", "cursor", "status", "kind", "agentId", "x"), headerValue), { maxLength: 4 }).map(
    (pairs) => `?${pairs.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join("&")}`,
  ),
);
const paths = fc.oneof(
  { weight: 4, arbitrary: fc.tuple(fc.constantFrom("/state", "/tasks", "/agents", "/log", "/healthz", "/readyz", "/metrics", "/openapi.json", "/command"), queries).map(([p, q]) => p + q) },
  { weight: 2, arbitrary: segments.map((s) => `/tasks/${s}`) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom("", "/", "//state", "/state/", "/STATE", "/state;x", "/tasks/", "/tasks//x", "/command/x", "/../state", "/%2e%2e/state", "/nope", "/*"), segments).map(([p, s]) => p + (s.length < 50 ? s : "")) },
);

const requests: fc.Arbitrary<FuzzRequest> = fc.oneof(
  // Commands, mostly well-formed JSON (valid and invalid), sometimes odd bodies or headers.
  {
    weight: 6,
    arbitrary: fc
      .record({ body: fc.oneof({ weight: 5, arbitrary: envelope }, { weight: 1, arbitrary: oddBodies }), contentType: contentTypes, headers: extraHeaders, plain: fc.integer({ min: 0, max: 9 }).map((n) => n > 0) })
      .map(({ body, contentType, headers, plain }): FuzzRequest => ({
        method: "POST",
        path: "/command",
        headers: plain ? { "content-type": "application/json" } : { ...headers, "content-type": contentType },
        body,
      })),
  },
  // Reads and everything else: odd methods, paths, queries, headers.
  {
    weight: 3,
    arbitrary: fc
      .record({ method: fc.constantFrom("GET", "GET", "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "FOO", "PROPFIND", "get"), path: paths, headers: extraHeaders, body: fc.option(oddBodies) })
      .map(({ method, path, headers, body }): FuzzRequest => {
        const withBody = method !== "GET" && method !== "HEAD" && method !== "get" && body !== null;
        return { method, path, headers: withBody ? { ...headers, "content-type": "application/json" } : headers, ...(withBody ? { body } : {}) };
      }),
  },
  // POST /state: genesis documents that are broken, foreign, or the right one again.
  {
    weight: 1,
    arbitrary: fc.oneof(jsonish.map((value) => JSON.stringify(value) ?? "null"), fc.constant("GENESIS")).map((body): FuzzRequest => ({ method: "POST", path: "/state", headers: { "content-type": "application/json" }, body })),
  },
);

// ------------------------------------------------------------------ raw sockets

interface RawExchange {
  readonly data: Buffer;
  /** The server closed (or reset) the connection. */
  readonly closed: boolean;
  readonly reset: boolean;
}

/**
 * Writes `chunks` (with `gapMs` between them), half-closes when asked (after
 * `endAfterMs`, so the server can answer a bad request before it sees the end:
 * Node answers nothing once the client's side is closed), and collects what
 * comes back until close or `timeoutMs`.
 */
function rawExchange(port: number, chunks: readonly (string | Uint8Array)[], options: { halfClose?: boolean; endAfterMs?: number; gapMs?: number; timeoutMs?: number } = {}): Promise<RawExchange> {
  return new Promise((resolve) => {
    const received: Buffer[] = [];
    let reset = false;
    let done = false;
    const socket = net.connect(port, "127.0.0.1");
    const finish = (closed: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ data: Buffer.concat(received), closed, reset });
    };
    const timer = setTimeout(() => finish(false), options.timeoutMs ?? 5000);
    socket.on("data", (chunk: Buffer) => received.push(chunk));
    socket.on("error", () => {
      reset = true;
    });
    socket.on("close", () => finish(true));
    socket.on("connect", () => {
      void (async () => {
        for (const chunk of chunks) {
          if (socket.destroyed) return;
          socket.write(chunk);
          if (options.gapMs) await sleep(options.gapMs);
        }
        if (options.halfClose === false) return;
        if (options.endAfterMs) await sleep(options.endAfterMs);
        if (!socket.destroyed) socket.end();
      })();
    });
  });
}

interface RawResponse {
  readonly status: number;
  readonly headers: Map<string, string>;
  readonly body: string;
}

/**
 * The HTTP/1.1 responses in `data` (Content-Length or chunked bodies); stops
 * at anything it cannot read; interim 1xx answers are skipped. `firstIsHead`:
 * the first answers a HEAD, so its Content-Length comes without a body.
 */
function parseResponses(data: Buffer, firstIsHead = false): { responses: RawResponse[]; rest: number } {
  const responses: RawResponse[] = [];
  let at = 0;
  while (at < data.length) {
    const end = data.indexOf("\r\n\r\n", at);
    if (end < 0) break;
    const head = data.subarray(at, end).toString("latin1").split("\r\n");
    const match = /^HTTP\/1\.[01] (\d{3})/.exec(head[0] ?? "");
    if (!match) break;
    // An interim answer (`100 Continue` to `Expect: 100-continue`) has no body and is not the request's answer.
    if (match[1]?.startsWith("1") === true) {
      at = end + 4;
      continue;
    }
    const headers = new Map<string, string>();
    for (const line of head.slice(1)) {
      const colon = line.indexOf(":");
      if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    let bodyStart = end + 4;
    let body: string;
    if (firstIsHead && responses.length === 0) {
      body = "";
    } else if (headers.get("transfer-encoding")?.includes("chunked")) {
      const parts: Buffer[] = [];
      for (let guard = 0; guard < 10_000; guard++) {
        const lineEnd = data.indexOf("\r\n", bodyStart);
        if (lineEnd < 0) break;
        const size = parseInt(data.subarray(bodyStart, lineEnd).toString("latin1"), 16);
        bodyStart = lineEnd + 2;
        if (!(size > 0)) {
          bodyStart += 2;
          break;
        }
        parts.push(data.subarray(bodyStart, bodyStart + size));
        bodyStart += size + 2;
      }
      body = Buffer.concat(parts).toString("utf8");
    } else {
      const length = Number(headers.get("content-length") ?? 0);
      body = data.subarray(bodyStart, bodyStart + length).toString("utf8");
      bodyStart += length;
    }
    responses.push({ status: Number(match[1]), headers, body });
    at = bodyStart;
  }
  return { responses, rest: data.length - at };
}

const token_ = fc.constantFrom("GET", "POST", "PUT", "HEAD", "DELETE", "OPTIONS", "CONNECT", "TRACE", "PRI", "FOO", "G\u0000T", "GET GET", "", "get");
const targets = fc.oneof(
  fc.constantFrom("/healthz", "/state", "/command", "/tasks/%zz", "*", "http://127.0.0.1/state", "//", "/\u0000", "/ space", "/\u00ff", "/" + "a".repeat(20_000), "", "?", "/state?at=%"),
  fc.string({ unit: "binary-ascii", maxLength: 30 }),
);
const versions = fc.constantFrom("HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/9.9", "HTTP/1.1 extra", "HTTP/", "", "http/1.1", "HTTP/1.1\u0000");
const rawHeaderLines = fc.array(
  fc.oneof(
    fc.constantFrom(
      "Host: localhost",
      "Host: x",
      "Content-Length: 5",
      "Content-Length: -1",
      "Content-Length: 99999999999999999999",
      "Content-Length: 5, 6",
      "Transfer-Encoding: chunked",
      "Transfer-Encoding: gzip, chunked",
      "Transfer-Encoding: identity",
      "Content-Type: application/json",
      "Connection: close",
      "Connection: keep-alive",
      "Expect: 100-continue",
      "Upgrade: websocket",
      " folded: line",
      "\tobs-fold",
      "NoColon",
      ": empty-name",
      "Bad Name: x",
      "X-Nul: a\u0000b",
      "X-Long: " + "h".repeat(20_000),
    ),
    fc.tuple(fc.string({ unit: "binary-ascii", maxLength: 10 }), fc.string({ unit: "binary-ascii", maxLength: 20 })).map(([k, v]) => `${k}: ${v}`),
  ),
  { maxLength: 6 },
);
const rawBodies = fc.oneof(
  fc.constant(""),
  fc.constantFrom("hello", '{"type":"agent.register"', "0\r\n\r\n", "5\r\nhello\r\n0\r\n\r\n", "ZZ\r\nhello\r\n0\r\n\r\n", "FFFFFFFFFFFFFFFFFF\r\nx\r\n", "5;ext=\u0000\r\nhello\r\n", "3\r\nhello\r\n0\r\n\r\n", "5\r\nhel"),
  fc.string({ unit: "binary-ascii", maxLength: 40 }),
);
const lineEnds = fc.constantFrom("\r\n", "\r\n", "\n", "\r", "\r\r\n");

const rawRequests = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({ method: token_, target: targets, version: versions, headers: rawHeaderLines, body: rawBodies, eol: lineEnds }).map(
      ({ method, target, version, headers, body, eol }) => `${method} ${target} ${version}${eol}${headers.map((h) => h + eol).join("")}${eol}${body}`,
    ),
  },
  // A valid request, then garbage pipelined on the same connection.
  { weight: 2, arbitrary: fc.string({ unit: "binary-ascii", maxLength: 60 }).map((garbage) => `GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n${garbage}\r\n\r\n`) },
  // Bytes.
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 200 }) },
);

// ------------------------------------------------------------------ the test

describe(`faults: hostile input (seed ${seed}, ${httpCases} HTTP + ${rawCases} raw-socket cases)`, () => {
  let server: ServerChild;
  let url = "";
  let port = 0;
  let dataDir = "";
  let cleanup: () => Promise<void> = async () => undefined;
  let genesisText = "";
  const model = new Model();
  const rss: number[] = [];
  const healthMs: number[] = [];

  before(async () => {
    ({ dir: dataDir, cleanup } = await tempDir("swoosh-hostile-"));
    server = spawnServer(["--data-dir", dataDir, "--snapshot-every", "0"]);
    ({ url } = await server.ready);
    port = Number(new URL(url).port);
    genesisText = await readFile(path.join(dataDir, "genesis.json"), "utf8");
  });
  after(async () => {
    server.child.kill("SIGKILL");
    await server.exited;
    await cleanup();
  });

  /** /healthz within the bound, and an RSS sample. */
  async function probe(context: string): Promise<void> {
    const started = Date.now();
    let status = 0;
    try {
      status = (await request(url, "GET", "/healthz", { timeoutMs: HEALTH_BOUND_MS * 5 })).status;
    } catch (error) {
      model.problem(`${context}: /healthz did not answer: ${(error as Error).message}`);
    }
    const ms = Date.now() - started;
    healthMs.push(ms);
    if (status !== 200) model.problem(`${context}: /healthz answered ${status}`);
    if (ms > HEALTH_BOUND_MS) model.problem(`${context}: /healthz took ${ms} ms (bound ${HEALTH_BOUND_MS})`);
    const bytes = await rssBytes(server.pid);
    if (bytes === null) model.problem(`${context}: the server process is gone (${server.stderr().slice(-500)})`);
    else rss.push(bytes);
  }

  async function send(req: FuzzRequest): Promise<void> {
    model.cases++;
    const body = req.body === "GENESIS" ? genesisText : req.body;
    let answer: Answer;
    try {
      answer = await request(url, req.method, req.path, { raw: body, headers: req.headers, timeoutMs: 15_000 });
    } catch (error) {
      if (error instanceof NoAnswer) {
        const cause = error.cause as { name?: string; cause?: { code?: string } } | null;
        // The client refusing to send (a header or URL fetch will not encode) is not the server's doing.
        if (cause?.name === "TypeError" && cause.cause === undefined) {
          model.clientRefused++;
          return;
        }
        model.noAnswer++;
        if (error.timedOut) model.problem(`${req.method} ${req.path.slice(0, 80)}: no answer within 15 s`);
        // A connection the server closed after a 413 or a parse error is fine; the probe shows it is alive.
        return;
      }
      throw error;
    }
    model.count(answer.status);
    const problem = answerProblem(answer.status, answer.headers.get("content-type"), answer.text, req.method);
    if (problem !== null) model.problem(`${req.method} ${req.path.slice(0, 80)} ${typeof body === "string" ? body.slice(0, 120) : "<bytes>"}: ${problem}`);
    if (req.method === "POST" && req.path === "/command" && answer.status === 200) {
      const sent = commandOf(body);
      if (sent === null) {
        model.problem(`POST /command accepted a body that is not strict UTF-8 JSON: ${String(body).slice(0, 120)}`);
        return;
      }
      const index = answer.body?.index as number;
      if (answer.body?.duplicate === true) model.duplicates.push({ id: String(sent.id), index });
      else if (model.accepted.has(index)) model.problem(`index ${index} acknowledged twice`);
      else model.accepted.set(index, sent);
    }
  }

  it("HTTP fuzzer: every refusal a SPEC 4xx, no 5xx, always responsive, bounded memory", { timeout: 3_600_000 }, async (t) => {
    const batches = Math.ceil(httpCases / BATCH);
    for (let b = 0; b < batches; b++) {
      const count = Math.min(BATCH, httpCases - b * BATCH);
      const batch = fc.sample(requests, { seed: seed + b, numRuns: count });
      let next = 0;
      await Promise.all(
        Array.from({ length: PARALLEL }, async () => {
          while (next < batch.length) await send(batch[next++] as FuzzRequest);
        }),
      );
      await probe(`after HTTP batch ${b}`);
      if (model.problems.length > 0) break;
    }
    const statuses = [...model.statuses].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}:${n}`).join(" ");
    t.diagnostic(`${model.cases} HTTP cases: ${model.accepted.size} commands applied, ${model.duplicates.length} idempotent repeats, statuses ${statuses}, ${model.noAnswer} closed without an answer, ${model.clientRefused} the client would not send`);
    assert.deepEqual(model.problems, [], `seed ${seed}`);
    assert.ok(model.accepted.size > httpCases / 50, `the fuzzer got commands applied (${model.accepted.size}), so the model check below means something`);
  });

  it("raw-socket fuzzer: malformed HTTP answered with a JSON 4xx or a closed connection", { timeout: 3_600_000 }, async (t) => {
    const problems: string[] = [];
    let answered = 0;
    let closedSilently = 0;
    const batches = Math.ceil(rawCases / BATCH);
    for (let b = 0; b < batches; b++) {
      const count = Math.min(BATCH, rawCases - b * BATCH);
      const batch = fc.sample(rawRequests, { seed: seed + 100_000 + b, numRuns: count });
      let next = 0;
      // Many at once: most of each exchange is waiting.
      await Promise.all(
        Array.from({ length: PARALLEL * 4 }, async () => {
          while (next < batch.length) {
            const bytes = batch[next++] as string | Uint8Array;
            const exchange = await rawExchange(port, [typeof bytes === "string" ? Buffer.from(bytes, "latin1") : bytes], { endAfterMs: 150, timeoutMs: 5000 });
            const shown = JSON.stringify(typeof bytes === "string" ? bytes.slice(0, 100) : Buffer.from(bytes).toString("hex").slice(0, 100));
            const head = (typeof bytes === "string" ? bytes : Buffer.from(bytes).toString("latin1")).startsWith("HEAD ");
            const { responses } = parseResponses(exchange.data, head);
            if (responses.length > 0) answered++;
            else closedSilently++;
            for (const response of responses) {
              const problem = answerProblem(response.status, response.headers.get("content-type") ?? null, response.body, head && response === responses[0] ? "HEAD" : "GET");
              if (problem !== null && problems.length < 20) problems.push(`${shown}: ${problem}`);
            }
            if (!exchange.closed && problems.length < 20) problems.push(`${shown}: the server kept a half-closed connection open for 5 s`);
          }
        }),
      );
      await probe(`after raw batch ${b}`);
      if (problems.length > 0 || model.problems.length > 0) break;
    }
    t.diagnostic(`${rawCases} raw-socket cases: ${answered} answered, ${closedSilently} closed without an answer`);
    assert.deepEqual(problems, [], `seed ${seed}`);
    assert.deepEqual(model.problems, [], `seed ${seed}`);
  });

  it("targeted raw cases: pipelining, chunked encoding, truncated bodies", async () => {
    const post = (body: string, extra = "") => `POST /command HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n${extra}`;
    // HTTP/1.1 without Host: a JSON 400 (Node's own answer would be a bare 400); HTTP/1.0 needs none.
    const hostless = parseResponses((await rawExchange(port, ["GET /healthz HTTP/1.1\r\n\r\n"], { endAfterMs: 100 })).data).responses[0];
    assert.equal(hostless?.status, 400);
    assert.equal(answerProblem(hostless?.status ?? 0, hostless?.headers.get("content-type") ?? null, hostless?.body ?? "", "GET"), null, hostless?.body);
    assert.equal(parseResponses((await rawExchange(port, ["GET /healthz HTTP/1.0\r\n\r\n"])).data).responses[0]?.status, 200);
    // `Expect: 100-continue` on a HEAD without Host, garbage behind it (found by the fuzzer, seed
    // 708389532): an interim 100, the HEAD's 400 without a body, then a JSON 400 for the garbage.
    const continued = await rawExchange(port, ["HEAD /tasks/%zz HTTP/1.1\r\nExpect: 100-continue\r\n\r\nB"], { endAfterMs: 150 });
    const continuedAnswers = parseResponses(continued.data, true).responses;
    assert.deepEqual(
      continuedAnswers.map((r) => r.status),
      [400, 400],
      continued.data.toString(),
    );
    continuedAnswers.forEach((r, i) => assert.equal(answerProblem(r.status, r.headers.get("content-type") ?? null, r.body, i === 0 ? "HEAD" : "GET"), null, r.body));
    // Two valid requests pipelined: both answered, in order.
    const piped = await rawExchange(port, ["GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /readyz HTTP/1.1\r\nHost: localhost\r\n\r\n"]);
    assert.deepEqual(
      parseResponses(piped.data).responses.map((r) => r.status),
      [200, 200],
    );
    // Garbage pipelined behind them: their answers, then a JSON 400, then the connection ends.
    const garbage = await rawExchange(port, ["GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /readyz HTTP/1.1\r\nHost: localhost\r\n\r\nBLAH\u0000\r\n\r\n"]);
    const answers = parseResponses(garbage.data).responses;
    assert.equal(answers.at(-1)?.status, 400, garbage.data.toString());
    assert.equal(JSON.parse(answers.at(-1)?.body ?? "{}").error.code, "bad_request");
    assert.deepEqual(
      answers.map((answer) => answer.status),
      [200, 200, 400],
    );
    assert.ok(garbage.closed);
    // Chunked bodies: a valid one is read; a bad chunk size is a 400. The random cases above may
    // have left the orchestrator halted, where task.cancel is refused before its task is looked up.
    const active = await request(url, "POST", "/command", { body: { type: "orchestrator.setPhase", payload: { phase: "active" } } });
    if (active.status === 200) model.accepted.set(active.body.index as number, { type: "orchestrator.setPhase", payload: { phase: "active" } });
    const good = '{"type":"task.cancel","payload":{"taskId":"no-such-task"}}';
    const chunked = await rawExchange(port, [`${post(good, "Transfer-Encoding: chunked\r\n")}\r\n${good.length.toString(16)}\r\n${good}\r\n0\r\n\r\n`]);
    assert.equal(parseResponses(chunked.data).responses[0]?.status, 404, chunked.data.toString());
    for (const bad of ["ZZ\r\nxx\r\n0\r\n\r\n", "FFFFFFFFFFFFFFFFFFFF\r\nx\r\n", "3\r\nabcdef\r\n0\r\n\r\n"]) {
      const answer = await rawExchange(port, [`${post("", "Transfer-Encoding: chunked\r\n")}\r\n${bad}`]);
      const [response] = parseResponses(answer.data).responses;
      assert.ok(response === undefined || (response.status === 400 && answerProblem(response.status, response.headers.get("content-type") ?? null, response.body, "POST") === null), answer.data.toString());
      assert.ok(answer.closed);
    }
    // Both Content-Length and Transfer-Encoding, or two lengths: refused.
    for (const extra of ["Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", "Content-Length: 5\r\nContent-Length: 6\r\n"]) {
      const answer = await rawExchange(port, [`${post("", extra)}\r\nhello`]);
      assert.equal(parseResponses(answer.data).responses[0]?.status, 400, answer.data.toString());
    }
    // A body shorter than its Content-Length, then the client half-closes: no 2xx, no 5xx, connection closed.
    const short = await rawExchange(port, [`${post("", "Content-Length: 100\r\n")}\r\n{"type":`]);
    for (const response of parseResponses(short.data).responses) assert.equal(answerProblem(response.status, response.headers.get("content-type") ?? null, response.body, "POST"), null);
    assert.ok(short.closed, "closed after the truncated body");
    await probe("targeted raw cases");
    assert.deepEqual(model.problems, []);
  });

  it(`slow and idle connections are closed within the header timeout (${HEADERS_TIMEOUT_MS / 1000} s) while others are served`, { timeout: 120_000 }, async (t) => {
    const started = Date.now();
    const head = "GET /healthz HTTP/1.1\r\nHost: x\r\n" + "X-Pad: y\r\n".repeat(100) + "\r\n";
    // Slowloris: a byte every 200 ms would take minutes to finish the headers.
    const slowloris = Array.from({ length: 20 }, () => rawExchange(port, head.split(""), { gapMs: 200, halfClose: false, timeoutMs: 60_000 }));
    // Idle: connect, send nothing.
    const idle = Array.from({ length: 20 }, () => rawExchange(port, [], { halfClose: false, timeoutMs: 60_000 }));
    // Half-open: a complete request, then the client's write side closes: answered, then closed.
    const halfOpen = await Promise.all(Array.from({ length: 10 }, () => rawExchange(port, ["GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"], { halfClose: true, timeoutMs: 5000 })));
    for (const exchange of halfOpen) {
      assert.equal(parseResponses(exchange.data).responses[0]?.status, 200);
      assert.ok(exchange.closed);
    }
    // Many connections at once, each with a request: all answered.
    const many = await Promise.all(Array.from({ length: 500 }, () => rawExchange(port, ["GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"], { halfClose: false, timeoutMs: 20_000 })));
    const manyAnswered = many.filter((exchange) => parseResponses(exchange.data).responses[0]?.status === 200).length;
    assert.equal(manyAnswered, 500, "every one of 500 simultaneous connections answered");
    // Others are served the whole time.
    let probes = 0;
    const until = Date.now() + HEADERS_TIMEOUT_MS - 2000;
    while (Date.now() < until) {
      await probe("during slowloris");
      probes++;
      await sleep(250);
    }
    const slow = await Promise.all(slowloris);
    const idled = await Promise.all(idle);
    const closedAfterMs = Date.now() - started;
    // A request cut off by the timeout is answered as retryable, never as a bad request (a client would give it up).
    const timedOut = slow.map((exchange) => parseResponses(exchange.data).responses[0]).filter((response) => response !== undefined);
    assert.ok(timedOut.length > 0, "the slowloris requests were answered");
    for (const response of timedOut) assert.match(response.body, /"code":"unavailable"/);
    for (const exchange of [...slow, ...idled]) {
      assert.ok(exchange.closed, "the server closed the slow connection");
      const [response] = parseResponses(exchange.data).responses;
      if (response !== undefined) assert.equal(answerProblem(response.status, response.headers.get("content-type") ?? null, response.body, "GET", { timedOut: true }), null);
    }
    assert.ok(closedAfterMs < HEADERS_TIMEOUT_MS + 3000, `slow connections closed after ${closedAfterMs} ms`);
    t.diagnostic(`40 slow/idle connections closed within ${closedAfterMs} ms; 500 simultaneous connections answered; ${probes} probes answered during slowloris`);
    assert.deepEqual(model.problems, []);
  });

  it("the state changed only through acknowledged commands; memory stayed bounded; the replay agrees", { timeout: 600_000 }, async (t) => {
    // Halted: the server stops ticking, so the state read below is the last one.
    const halt = await request(url, "POST", "/command", { body: { type: "orchestrator.setPhase", payload: { phase: "halted" } } });
    assert.equal(halt.status, 200, halt.text);
    model.accepted.set(halt.body.index as number, { type: "orchestrator.setPhase", payload: { phase: "halted" } });
    const state = (await request(url, "GET", "/state")).body as { index: number; stateHash: string };
    const { entries } = await readLog(url, 1);
    assert.equal(entries.length, state.index, "the whole log is held (no snapshots in this run)");
    const byIndex = new Map(entries.map((entry) => [entry.index, entry]));
    let ticks = 0;
    for (const entry of entries) {
      const sent = model.accepted.get(entry.index);
      if (sent === undefined) {
        // Not acknowledged to the fuzzer: only the server's own ticks may be here.
        assert.equal(entry.type, "system.tick", `entry ${entry.index} (${entry.type}) was never acknowledged`);
        assert.equal(entry.id, undefined, `entry ${entry.index}: a tick with an id`);
        ticks++;
        continue;
      }
      assert.equal(entry.type, sent.type, `entry ${entry.index}: type`);
      assert.equal(canonicalJSON(entry.payload as JsonValue), canonicalJSON(sent.payload), `entry ${entry.index}: payload`);
      assert.equal(entry.id, sent.id, `entry ${entry.index}: id`);
    }
    for (const index of model.accepted.keys()) assert.ok(byIndex.has(index), `acknowledged index ${index} is not in the log`);
    for (const { id, index } of model.duplicates) assert.equal(byIndex.get(index)?.id, id, `repeat of ${id} answered with index ${index}`);

    const baseline = rss[0] ?? 0;
    const peak = Math.max(...rss);
    assert.ok(peak - baseline < RSS_GROWTH_MAX, `RSS grew from ${baseline} to ${peak} bytes`);

    const stop = await stopServer(server);
    assert.equal(stop.code, 0, server.stderr().slice(-2000));
    const verify = await verifyCli(dataDir);
    assert.equal(verify.status, 0, verify.stdout);
    assert.equal(verify.report?.finalStateHash, state.stateHash, "offline replay vs the served state");
    const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(0);
    t.diagnostic(
      `log: ${entries.length} entries = ${model.accepted.size} acknowledged commands + ${ticks} server ticks; ${model.duplicates.length} repeats matched; ` +
        `RSS ${mib(baseline)} → peak ${mib(peak)} MiB over ${rss.length} samples; /healthz max ${Math.max(...healthMs)} ms`,
    );
  });
});
