/**
 * Fixtures for server tests: a real server on 127.0.0.1:0 in its own temp data
 * dir (closed and removed after the test), small fetch wrappers, and an SSE
 * reader on node:http that can stop reading (to play a slow consumer).
 */
import http from "node:http";
import type { TestContext } from "node:test";
import { startServer } from "../../src/server/index.ts";
import type { RunningServer, ServerOptions } from "../../src/server/index.ts";
import { tempDirClosedFirst } from "../support/engine-fixtures.ts";
import { jsonOrUndefined } from "../support/json-text.ts";

export interface TestServer {
  readonly server: RunningServer;
  readonly url: string;
  readonly dataDir: string;
  /** Closes the server (idempotent; also runs after the test). */
  close(): Promise<void>;
}

/** Starts a server for the duration of test `t`. */
export async function startTestServer(t: TestContext, options: Partial<ServerOptions> = {}, dataDir?: string): Promise<TestServer> {
  // A temp dir of its own is removed once the server has closed; a given one is the caller's.
  const temp = dataDir === undefined ? await tempDirClosedFirst(t, "swoosh-server-") : null;
  const dir = dataDir ?? (temp as { dir: string }).dir;
  const server = await startServer({ port: 0, logger: false, onFatal: () => undefined, ...options, dataDir: dir });
  const close = () => server.close();
  if (temp === null) t.after(close);
  else temp.closeFirst(close);
  return { server, url: server.url, dataDir: dir, close };
}

export interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  /** The parsed body (undefined when it is not JSON). */
  readonly body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** One request with a 10 s bound; `body` is sent as is when a string, else as JSON. */
export async function call(url: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const init: RequestInit = { method, headers: { ...headers }, signal: AbortSignal.timeout(10_000) };
  if (body !== undefined) {
    init.body = typeof body === "string" ? body : JSON.stringify(body);
    (init.headers as Record<string, string>)["content-type"] ??= "application/json";
  }
  const response = await fetch(url + path, init);
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, body: jsonOrUndefined(text) };
}

export const get = (url: string, path: string, headers?: Record<string, string>) => call(url, "GET", path, undefined, headers);
export const post = (url: string, path: string, body: unknown, headers?: Record<string, string>) => call(url, "POST", path, body, headers);
export const command = (url: string, type: string, payload: unknown, extra: Record<string, unknown> = {}) => post(url, "/command", { type, payload, ...extra });

/** A metric's value as /metrics gives it (a series without labels); NaN when it is missing. */
export async function metricValue(url: string, name: string): Promise<number> {
  return Number(new RegExp(`^${name} (\\S+)$`, "m").exec((await get(url, "/metrics")).text)?.[1]);
}

/** Polls `check` every 20 ms until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T | undefined> | T | undefined, timeoutMs = 5000, what = "condition"): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export interface SseEvent {
  readonly id?: string;
  readonly event?: string;
  readonly data: string;
}

/** A GET /watch stream read with node:http. */
export class SseClient {
  readonly events: SseEvent[] = [];
  readonly comments: string[] = [];
  status = 0;
  ended = false;
  private buffer = "";
  private request: http.ClientRequest | null = null;
  response: http.IncomingMessage | null = null;

  static async open(url: string, path = "/watch", headers: Record<string, string> = {}): Promise<SseClient> {
    const client = new SseClient();
    await new Promise<void>((resolve, reject) => {
      const request = http.get(url + path, { headers: { accept: "text/event-stream", ...headers } }, (response) => {
        client.response = response;
        client.status = response.statusCode ?? 0;
        response.setEncoding("utf8");
        response.on("data", (chunk: string) => client.feed(chunk));
        const done = () => {
          client.ended = true;
        };
        response.on("end", done);
        response.on("close", done);
        response.on("error", done);
        resolve();
      });
      request.on("error", (error) => {
        client.ended = true;
        reject(error);
      });
      request.setTimeout(30_000, () => request.destroy());
      client.request = request;
    });
    return client;
  }

  /** The data of the events, parsed. */
  entries(): Array<{ index: number; [key: string]: unknown }> {
    return this.events.filter((event) => event.event === undefined).map((event) => JSON.parse(event.data) as { index: number });
  }

  async waitForEvents(count: number, timeoutMs = 5000): Promise<void> {
    await eventually(() => (this.events.length >= count ? true : undefined), timeoutMs, `${count} SSE events (have ${this.events.length})`);
  }

  pause(): void {
    this.response?.pause();
  }

  resume(): void {
    this.response?.resume();
  }

  close(): void {
    this.request?.destroy();
    this.response?.destroy();
    this.ended = true;
  }

  private feed(chunk: string): void {
    this.buffer += chunk;
    for (let end = this.buffer.indexOf("\n\n"); end !== -1; end = this.buffer.indexOf("\n\n")) {
      const block = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      let id: string | undefined;
      let event: string | undefined;
      const data: string[] = [];
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) this.comments.push(line.slice(1).trim());
        else if (line.startsWith("id: ")) id = line.slice(4);
        else if (line.startsWith("event: ")) event = line.slice(7);
        else if (line.startsWith("data: ")) data.push(line.slice(6));
      }
      if (data.length > 0) this.events.push({ ...(id === undefined ? {} : { id }), ...(event === undefined ? {} : { event }), data: data.join("\n") });
    }
  }
}
