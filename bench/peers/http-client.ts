/**
 * The benchmark's HTTP client: an undici `Pool` of `connections` keep-alive
 * HTTP/1.1 connections to one origin (no pipelining, so at most one request
 * per connection at a time), with bounded timeouts. `postJson` sends a JSON
 * body, reads the whole response, and throws unless the status is 200.
 */
import { Pool } from "undici";

export interface HttpClient {
  /** POST `bodyJson` to `path`; resolves with the response text once it is fully read. */
  postJson(path: string, bodyJson: string): Promise<string>;
  get(path: string): Promise<{ status: number; text: string }>;
  close(): Promise<void>;
}

export interface HttpClientOptions {
  readonly connections: number;
  /** Per-request bound on waiting for headers and for body bytes; default 10 s. */
  readonly timeoutMs?: number;
  /** Extra headers on every request (e.g. authorization). */
  readonly headers?: Record<string, string>;
}

export function createHttpClient(origin: string, options: HttpClientOptions): HttpClient {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const pool = new Pool(origin, {
    connections: options.connections,
    pipelining: 1,
    keepAliveTimeout: 60_000,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    connectTimeout: timeoutMs,
  });
  const postHeaders = { "content-type": "application/json", ...options.headers };
  return {
    async postJson(path, bodyJson) {
      const { statusCode, body } = await pool.request({ path, method: "POST", headers: postHeaders, body: bodyJson });
      const text = await body.text();
      if (statusCode !== 200) throw new Error(`POST ${path} → ${statusCode}: ${text.slice(0, 300)}`);
      return text;
    },
    async get(path) {
      const { statusCode, body } = await pool.request({ path, method: "GET", headers: options.headers ?? {} });
      return { status: statusCode, text: await body.text() };
    },
    close: () => pool.close(),
  };
}
