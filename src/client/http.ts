/**
 * One HTTP exchange with a Swoosh server over global fetch: base URL, bearer
 * token, a per-try timeout, the caller's abort signal, and every failure
 * turned into a `SwooshApiError` (an error answer by its SPEC code; no answer
 * as `network_error` or `timeout`). Retrying is the caller's business
 * (retry.ts); a caller's abort is rethrown as is, never retried.
 */
import { SwooshApiError } from "./errors.ts";
import { JsonValueError, assertJsonValue } from "../core/json.ts";

export interface HttpSettings {
  /** Base URL, e.g. http://127.0.0.1:7777 (a trailing slash is ignored). */
  readonly url: string;
  readonly token?: string | undefined;
  /** One try gives up after this long (the server itself allows a request 30 s). */
  readonly timeoutMs: number;
  /** A fetch to use instead of the global one (tests, proxies, custom agents). */
  readonly fetch?: typeof fetch;
}

export interface HttpRequest {
  readonly method: "GET" | "POST";
  /** Path and query, starting with "/". */
  readonly path: string;
  readonly body?: unknown;
  readonly headers?: Readonly<Record<string, string>>;
  readonly signal?: AbortSignal;
}

export interface HttpAnswer {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
}

/** Why fetch failed, as the OS said it (ECONNREFUSED, ECONNRESET, …) when it did. */
function networkReason(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (error as Error).message;
}

export class HttpTransport {
  readonly baseUrl: string;

  constructor(readonly settings: HttpSettings) {
    this.baseUrl = checkedBaseUrl(settings.url);
  }

  /** Sends one request; resolves with any 2xx or 304 answer, throws SwooshApiError otherwise. */
  async send(request: HttpRequest): Promise<HttpAnswer> {
    // Before the exchange: a body that is not JSON is the caller's mistake, which no retry can mend (not a network_error).
    const body = request.body === undefined ? undefined : jsonText(request);
    const headers: Record<string, string> = { accept: "application/json", ...request.headers };
    if (request.body !== undefined) headers["content-type"] = "application/json";
    if (this.settings.token !== undefined) headers.authorization = `Bearer ${this.settings.token}`;
    const timeout = AbortSignal.timeout(this.settings.timeoutMs);
    const { signal, release } = eitherAborts(request.signal, timeout);
    const doFetch = this.settings.fetch ?? fetch;
    let response: Response;
    let text: string;
    try {
      response = await doFetch(this.baseUrl + request.path, {
        method: request.method,
        headers,
        body,
        signal,
      });
      text = await response.text();
    } catch (error) {
      if (request.signal?.aborted) throw request.signal.reason;
      if (timeout.aborted) throw new SwooshApiError("timeout", `${request.method} ${request.path}: no answer within ${this.settings.timeoutMs} ms`, 0, undefined, { cause: error });
      throw new SwooshApiError("network_error", `${request.method} ${this.baseUrl}${request.path}: ${networkReason(error)}`, 0, undefined, { cause: error });
    } finally {
      release();
    }
    if ((response.status >= 200 && response.status < 300) || response.status === 304) return { status: response.status, headers: response.headers, text };
    throw SwooshApiError.fromAnswer(response.status, parseJson(text), text, response.headers.get("retry-after"));
  }
}

/** `url` without trailing slashes; throws TypeError unless it is an absolute http(s) URL (`localhost:7777` would only fail at each call). */
function checkedBaseUrl(url: string): string {
  let protocol: string;
  try {
    protocol = new URL(url).protocol;
  } catch {
    throw new TypeError(`swoosh client: url must be an absolute http:// or https:// URL, got ${JSON.stringify(url)}`);
  }
  if (protocol !== "http:" && protocol !== "https:") throw new TypeError(`swoosh client: url must be an http:// or https:// URL, got ${JSON.stringify(url)}`);
  return url.replace(/\/+$/, "");
}

/**
 * The request's body as JSON text. A value that is not JSON (NaN, Infinity,
 * undefined, a BigInt, a Date or other class instance, a lone surrogate) is
 * refused here as `bad_request` (SPEC §3), naming where it sits: JSON.stringify
 * would turn most of them into null or drop them, and the server would store
 * the changed value without a word.
 */
function jsonText(request: HttpRequest): string {
  try {
    assertJsonValue(request.body, Number.MAX_SAFE_INTEGER);
  } catch (error) {
    const reason = error instanceof JsonValueError ? `${error.path || "(root)"}: ${error.reason}` : error instanceof RangeError ? "nested too deeply" : String(error);
    const details = error instanceof JsonValueError ? { path: error.path, message: error.reason } : undefined;
    throw new SwooshApiError("bad_request", `${request.method} ${request.path}: the body is not JSON: ${reason}`, 0, details, { cause: error });
  }
  return JSON.stringify(request.body);
}

/**
 * A signal that aborts when `caller` or `timeout` does, and `release` to
 * detach it from the caller's. Not `AbortSignal.any`: on Node 20 a
 * long-lived caller signal (a worker's, passed to every request) keeps an
 * entry for each signal made from it, and they are never collected.
 */
function eitherAborts(caller: AbortSignal | undefined, timeout: AbortSignal): { signal: AbortSignal; release(): void } {
  if (caller === undefined) return { signal: timeout, release: () => undefined };
  const controller = new AbortController();
  const fromCaller = (): void => controller.abort(caller.reason);
  const fromTimeout = (): void => controller.abort(timeout.reason);
  if (caller.aborted) fromCaller();
  caller.addEventListener("abort", fromCaller, { once: true });
  timeout.addEventListener("abort", fromTimeout, { once: true });
  return {
    signal: controller.signal,
    release: () => {
      caller.removeEventListener("abort", fromCaller);
      timeout.removeEventListener("abort", fromTimeout);
    },
  };
}

/** The parsed JSON of a text, or undefined when it is not JSON. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** The JSON body of a 2xx answer; `bad_response` when it is not JSON. */
export function jsonBody<T>(answer: HttpAnswer, what: string): T {
  const body = parseJson(answer.text);
  if (body === undefined) throw new SwooshApiError("bad_response", `${what}: HTTP ${answer.status} with a body that is not JSON`, answer.status);
  return body as T;
}
