/**
 * `GET /watch` as an async iterable of log entries that survives disconnects.
 *
 * A stream that ends, breaks, or stays silent longer than `idleTimeoutMs` (the
 * server sends a keep-alive comment every 15 s) is reopened with
 * `Last-Event-ID: <last index received>`, so the server replays what was
 * missed: no gap and no repeat. Before the first entry, the resume point is
 * the start the server announced in its opening comment (`: swoosh watch from
 * N`), so even a stream that saw nothing yet resumes without a gap. Reconnects
 * back off with jitter; answers that cannot heal by waiting (401, 404 past the
 * end, 410 `history_pruned`: the log no longer holds the resume point) end
 * the iteration with a `SwooshApiError`. Aborting `signal`, or breaking out of
 * the loop, closes the stream and ends the iteration quietly.
 */
import { SwooshApiError } from "./errors.ts";
import type { HttpTransport } from "./http.ts";
import { parseJson } from "./http.ts";
import { retryDelayMs, sleep } from "./retry.ts";
import type { RetryPolicy } from "./retry.ts";
import { SseParser } from "./sse.ts";
import type { LogEntry } from "./types.ts";

export interface WatchOptions {
  /** Start at this index (0 = the oldest entry the server holds). Default: only entries applied from now on. */
  readonly from?: number;
  /** Resume after this index (as `Last-Event-ID` does); wins over `from`. */
  readonly after?: number;
  readonly signal?: AbortSignal;
  /** Reconnect pacing; `attemptsMax` bounds consecutive failed reconnects (default: unbounded). */
  readonly reconnect?: Partial<RetryPolicy>;
  /** Reconnect when nothing (not even a keep-alive) arrived for this long. Default 45 000. */
  readonly idleTimeoutMs?: number;
  /** Called each time a stream is open (the first time and after every reconnect). */
  readonly onOpen?: (info: { readonly after: number | undefined; readonly reconnects: number }) => void;
  /** Called when a stream broke and will be reopened after `delayMs`. */
  readonly onDisconnect?: (error: unknown, delayMs: number) => void;
}

export const WATCH_IDLE_TIMEOUT_MS_DEFAULT = 45_000;
const WATCH_RECONNECT_DEFAULT: RetryPolicy = { attemptsMax: Number.POSITIVE_INFINITY, baseDelayMs: 100, maxDelayMs: 5_000, elapsedMaxMs: Number.POSITIVE_INFINITY };

/** Failures a reconnect can heal. */
function healable(error: unknown): boolean {
  return error instanceof SwooshApiError ? error.retryable : true;
}

const OPENING_COMMENT = /^swoosh watch from (\d+)$/;

export async function* watchLog(http: HttpTransport, options: WatchOptions, observe: (entry: LogEntry) => void): AsyncGenerator<LogEntry, void, undefined> {
  const signal = options.signal;
  const policy: RetryPolicy = { ...WATCH_RECONNECT_DEFAULT, ...options.reconnect };
  const idleTimeoutMs = options.idleTimeoutMs ?? WATCH_IDLE_TIMEOUT_MS_DEFAULT;
  const doFetch = http.settings.fetch ?? fetch;
  let after = options.after;
  let failures = 0;
  let reconnects = 0;

  // A function, so TypeScript does not narrow `aborted` across awaits.
  const aborted = (): boolean => signal?.aborted === true;
  while (!aborted()) {
    const controller = new AbortController();
    const abortStream = (): void => controller.abort(signal?.reason);
    signal?.addEventListener("abort", abortStream, { once: true });
    let idleTimer: NodeJS.Timeout | undefined;
    const armIdle = (): void => {
      clearTimeout(idleTimer);
      idleTimer = setTimeout(() => controller.abort(new SwooshApiError("timeout", `watch: nothing received for ${idleTimeoutMs} ms`, 0)), idleTimeoutMs);
    };
    try {
      const headers: Record<string, string> = { accept: "text/event-stream" };
      if (http.settings.token !== undefined) headers.authorization = `Bearer ${http.settings.token}`;
      let path = "/watch";
      if (after !== undefined) headers["last-event-id"] = String(after);
      else if (options.from !== undefined) path = `/watch?from=${options.from}`;
      armIdle();
      let response: Response;
      try {
        response = await doFetch(http.baseUrl + path, { headers, signal: controller.signal });
      } catch (error) {
        throw controller.signal.aborted && controller.signal.reason instanceof SwooshApiError
          ? controller.signal.reason
          : new SwooshApiError("network_error", `GET ${http.baseUrl}/watch: ${(error as Error).message}`, 0, undefined, { cause: error });
      }
      if (response.status !== 200 || response.body === null) {
        const text = await response.text();
        throw SwooshApiError.fromAnswer(response.status, parseJson(text), text, response.headers.get("retry-after"));
      }
      failures = 0;
      options.onOpen?.({ after, reconnects });
      const parser = new SseParser((comment) => {
        // The server names its start point; resuming from just before it keeps a quiet stream gap-free too.
        const start = after === undefined ? OPENING_COMMENT.exec(comment) : null;
        if (start !== null) after = Number(start[1]) - 1;
      });
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        let chunk: Awaited<ReturnType<typeof reader.read>>;
        try {
          chunk = await reader.read();
        } catch (error) {
          throw controller.signal.reason instanceof SwooshApiError ? controller.signal.reason : new SwooshApiError("network_error", `watch stream broke: ${(error as Error).message}`, 0, undefined, { cause: error });
        }
        if (chunk.done) break;
        armIdle();
        for (const event of parser.push(chunk.value)) {
          if (event.event === "error") {
            const body = parseJson(event.data) as { error?: { code?: unknown; message?: unknown } } | undefined;
            if (typeof body?.error?.code !== "string" || typeof body.error.message !== "string") {
              throw new SwooshApiError("bad_response", `watch: an error event that is not an error body: ${event.data.slice(0, 200)}`, 200);
            }
            // The status its code has (410 history_pruned, 503 unavailable for a damaged log entry): retried or not by it.
            throw SwooshApiError.fromBatchItem(body as { error: { code: string; message: string; details?: unknown } });
          }
          const entry = parseJson(event.data) as LogEntry | undefined;
          if (entry === undefined || typeof entry.index !== "number") throw new SwooshApiError("bad_response", `watch: an event that is not a log entry: ${event.data.slice(0, 200)}`, 200);
          // An entry at or below the resume point is a repeat (cannot happen with a correct server): skip it.
          if (after !== undefined && entry.index <= after) continue;
          after = entry.index;
          observe(entry);
          yield entry;
        }
      }
      throw new SwooshApiError("network_error", "watch stream ended", 0);
    } catch (error) {
      if (aborted()) return;
      if (!healable(error)) throw error;
      failures++;
      if (failures >= policy.attemptsMax) throw error;
      const delayMs = retryDelayMs(error, failures, policy);
      options.onDisconnect?.(error, delayMs);
      try {
        await sleep(delayMs, signal);
      } catch {
        return;
      }
      reconnects++;
    } finally {
      clearTimeout(idleTimer);
      signal?.removeEventListener("abort", abortStream);
      controller.abort();
    }
  }
}
