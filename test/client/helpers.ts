/**
 * Fixtures for the client tests: a real server (test/server/helpers.ts), a
 * logger that collects instead of printing, and a small HTTP proxy that can
 * misbehave on purpose — answer 503, forward a request and then drop its
 * answer, cut open streams — while recording every request body it saw.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { TestContext } from "node:test";
import type { WorkerLogger } from "../../src/client/index.ts";

export { eventually, startTestServer } from "../server/helpers.ts";

export interface LogLine {
  readonly level: "debug" | "info" | "warn" | "error";
  readonly message: string;
  readonly fields?: Record<string, unknown>;
}

/** A logger that keeps lines (SWOOSH_TEST_LOG=1 prints them too). */
export function collectingLogger(tag = ""): WorkerLogger & { readonly lines: LogLine[] } {
  const lines: LogLine[] = [];
  const print = process.env.SWOOSH_TEST_LOG === "1";
  const at =
    (level: LogLine["level"]) =>
    (message: string, fields?: Record<string, unknown>): void => {
      lines.push({ level, message, ...(fields === undefined ? {} : { fields }) });
      if (print) console.error(`[${tag}] ${level} ${message}`, fields ?? "");
    };
  return { lines, debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

export interface SeenRequest {
  readonly method: string;
  readonly path: string;
  readonly body: string;
}

type Rule = {
  readonly match: (request: SeenRequest) => boolean;
  remaining: number;
  readonly action: "drop-answer" | "503" | "hang" | "delay-answer";
  readonly retryAfter?: string;
  readonly delayMs?: number;
};

/** An HTTP proxy in front of a server, on 127.0.0.1:0. */
export class TestProxy {
  readonly requests: SeenRequest[] = [];
  private readonly rules: Rule[] = [];
  private readonly streams = new Set<{ response: http.ServerResponse; upstream: http.IncomingMessage }>();
  private readonly hanging = new Set<http.ServerResponse>();
  private readonly delayed = new Set<NodeJS.Timeout>();
  private constructor(
    private readonly server: http.Server,
    readonly url: string,
    private target: string,
  ) {}

  static async start(t: TestContext, target: string): Promise<TestProxy> {
    let proxy: TestProxy | null = null;
    const server = http.createServer((request, response) => proxy?.handle(request, response));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    proxy = new TestProxy(server, `http://127.0.0.1:${port}`, target);
    t.after(() => proxy?.close());
    return proxy;
  }

  /** Points the proxy at another upstream (a restarted server). */
  retarget(target: string): void {
    this.target = target;
  }

  /** The next `count` requests matching: forwarded, then the client's connection is destroyed instead of answered. */
  dropAnswers(match: (request: SeenRequest) => boolean, count = 1): void {
    this.rules.push({ match, remaining: count, action: "drop-answer" });
  }

  /** The next `count` requests matching: answered 503 (with `retryAfter` as its Retry-After, if given) without being forwarded. */
  fail503(match: (request: SeenRequest) => boolean, count = 1, retryAfter?: string): void {
    this.rules.push({ match, remaining: count, action: "503", retryAfter });
  }

  /** The next `count` requests matching: forwarded at once, their answers held back `delayMs` (a slow network on the way back). */
  delayAnswers(match: (request: SeenRequest) => boolean, delayMs: number, count = 1): void {
    this.rules.push({ match, remaining: count, action: "delay-answer", delayMs });
  }

  /** The next `count` requests matching: never forwarded nor answered (a server or network that hangs), until the proxy closes. */
  hang(match: (request: SeenRequest) => boolean, count = 1): void {
    this.rules.push({ match, remaining: count, action: "hang" });
  }

  /** Forgets the rules still pending: every request is forwarded and answered again. */
  passThrough(): void {
    this.rules.length = 0;
  }

  /** Destroys every streaming answer in progress (a /watch disconnect). */
  cutStreams(): number {
    const cut = this.streams.size;
    for (const { response, upstream } of this.streams) {
      upstream.destroy();
      response.destroy();
    }
    this.streams.clear();
    return cut;
  }

  close(): Promise<void> {
    this.cutStreams();
    for (const response of this.hanging) response.destroy();
    for (const timer of this.delayed) clearTimeout(timer);
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private handle(request: http.IncomingMessage, response: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const body = Buffer.concat(chunks);
      const seen: SeenRequest = { method: request.method ?? "GET", path: request.url ?? "/", body: body.toString("utf8") };
      this.requests.push(seen);
      const rule = this.rules.find((candidate) => candidate.remaining > 0 && candidate.match(seen));
      if (rule !== undefined) rule.remaining--;
      if (rule?.action === "hang") {
        this.hanging.add(response);
        response.on("close", () => this.hanging.delete(response));
        return;
      }
      if (rule?.action === "503") {
        response.writeHead(503, { "content-type": "application/json", ...(rule.retryAfter === undefined ? {} : { "retry-after": rule.retryAfter }) });
        response.end(JSON.stringify({ error: { code: "unavailable", message: "proxy says: try later" } }));
        return;
      }
      const upstreamRequest = http.request(this.target + seen.path, { method: seen.method, agent: false, headers: { ...request.headers, host: new URL(this.target).host } }, (upstream) => {
        if (rule?.action === "drop-answer") {
          upstream.resume();
          upstream.on("end", () => request.socket.destroy());
          return;
        }
        if (rule?.action === "delay-answer") {
          const chunks: Buffer[] = [];
          upstream.on("data", (chunk: Buffer) => chunks.push(chunk));
          upstream.on("end", () => {
            const timer = setTimeout(() => {
              this.delayed.delete(timer);
              response.writeHead(upstream.statusCode ?? 502, upstream.headers);
              response.end(Buffer.concat(chunks));
            }, rule.delayMs);
            this.delayed.add(timer);
          });
          return;
        }
        response.writeHead(upstream.statusCode ?? 502, upstream.headers);
        const entry = { response, upstream };
        this.streams.add(entry);
        upstream.pipe(response);
        const forget = (): void => {
          this.streams.delete(entry);
        };
        response.on("close", () => {
          upstream.destroy();
          forget();
        });
        upstream.on("end", forget);
      });
      upstreamRequest.on("error", () => response.destroy());
      upstreamRequest.end(body);
    });
  }
}

/** `promise`, or a failure naming `what` after `timeoutMs` (the timer is cleared either way, so it holds no test open). */
export async function within<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves after `ms`. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
