/**
 * `GET /watch`: the applied commands as server-sent events, one per command.
 *
 *     id: <log index>
 *     data: <the WAL entry as JSON: {index, hlc, type, payload, id?, prevHash, hash}>
 *
 * A stream starts at a resume point (`Last-Event-ID: N` → N + 1, or `?from=N`,
 * or by default just after the newest entry). Entries before the newest one
 * are *replayed* from the WAL, page by page, paced by the socket ('drain');
 * then the stream switches to *live* frames the hub formats once per command
 * and hands to every live stream. A stream remembers the next index it owes,
 * so the switch neither skips nor repeats an entry: a live frame below that
 * index is ignored, one above it sends the stream back to replaying.
 *
 * Memory is bounded per stream: a live stream whose unsent bytes (Node's
 * buffer plus the socket's) exceed `bufferMaxBytes` when the next frame comes
 * goes back to replaying, from that frame's index. The live frames are
 * handed over in one go after each flush, with no chance for the socket to
 * drain between them, so one burst larger than the bound (a batch of big
 * submits) would otherwise cut even a client reading at full speed. A
 * replaying stream reads the WAL a page of about `replayPageCharsMax` at a
 * time and waits for the socket to drain before each next frame. A client
 * that takes nothing for `stallMs` (no byte of its stream reaches the socket),
 * live or replaying, is dropped (connection destroyed, metric counted), with
 * however little it left unsent: otherwise the connection's idle timeout
 * would cut it uncounted and unlogged, and the client would read on through
 * what its kernel still held; it reconnects with Last-Event-ID and catches
 * up. A client slower than the writes for good ends with `history_pruned`
 * once snapshots truncate the log it still needs. Streams are capped in
 * number too. A comment line every `heartbeatMs` keeps idle
 * proxies and the stall timeout from closing a quiet stream.
 */
import type { ServerResponse } from "node:http";
import type { FastifyBaseLogger } from "fastify";
import { SwooshError } from "../core/errors.ts";
import type { LogEntry } from "../core/log-record.ts";
import type { AppliedEvent, EngineStats } from "../engine/engine.ts";
import { toSwooshError } from "./errors.ts";
import type { ServerMetrics } from "./metrics.ts";
import { toWireEntry } from "./wire.ts";
import type { WireEntry } from "./wire.ts";

/** The engine calls a hub needs. */
export interface WatchSource {
  subscribe(listener: (event: AppliedEvent) => void, options?: { readOnly?: boolean }): () => void;
  readLog(from: number, limit: number, charsMax: number): Promise<LogEntry[]>;
  stats(): EngineStats;
  readonly firstLogIndex: number;
}

export interface WatchSettings {
  /** A live stream with more unsent bytes than this when a frame comes goes back to the paced replay from the WAL. */
  readonly bufferMaxBytes: number;
  readonly heartbeatMs: number;
  readonly clientsMax: number;
  /** Entries per WAL read while replaying (each entry is at most one request body). */
  readonly replayPageSize: number;
  /**
   * Characters of entries per WAL read while replaying (one entry at least):
   * a replaying stream holds its page until the client has taken it, so this
   * bounds what one client that stops reading keeps on the heap.
   */
  readonly replayPageCharsMax: number;
  /** A stream whose client takes nothing for this long is dropped, live or replaying; more than heartbeatMs. */
  readonly stallMs: number;
}

export const DEFAULT_WATCH_SETTINGS: WatchSettings = {
  bufferMaxBytes: 4 * 1024 * 1024,
  heartbeatMs: 15_000,
  clientsMax: 1024,
  replayPageSize: 32,
  replayPageCharsMax: 1024 * 1024,
  stallMs: 60_000,
};

export const SSE_CONTENT_TYPE = "text/event-stream; charset=utf-8";

/** EventSource reconnect delay the stream suggests to clients. */
const RETRY_MS = 1000;

export function formatFrame(entry: WireEntry): string {
  // JSON.stringify escapes CR and LF, so the data is always one SSE line.
  return `id: ${entry.index}\ndata: ${JSON.stringify(entry)}\n\n`;
}

export class WatchHub {
  private readonly streams = new Set<WatchStream>();
  /** Newest index the engine announced (durable). */
  private newestIndex: number;
  private readonly unsubscribe: () => void;
  private readonly heartbeat: NodeJS.Timeout;
  private closed = false;

  constructor(
    readonly source: WatchSource,
    readonly settings: WatchSettings,
    private readonly metrics: ServerMetrics,
    readonly log: FastifyBaseLogger,
  ) {
    // A quiet stream's only traffic is the heartbeat: a stall timeout within it would drop clients that read.
    if (!(settings.stallMs > settings.heartbeatMs)) throw new RangeError(`watch stallMs (${settings.stallMs}) must be more than heartbeatMs (${settings.heartbeatMs})`);
    this.newestIndex = source.stats().durableIndex;
    this.unsubscribe = source.subscribe((event) => this.publish(event), { readOnly: true });
    this.heartbeat = setInterval(() => this.beat(), settings.heartbeatMs);
    this.heartbeat.unref();
  }

  get newest(): number {
    return this.newestIndex;
  }

  /**
   * Checks that a stream can start at `from` (the first index it will send):
   * throws `history_pruned` when the log was truncated past it, `not_found`
   * when it is beyond the next index, `unavailable` when closing or full.
   */
  checkStart(from: number): void {
    if (this.closed) throw new SwooshError("unavailable", "the server is shutting down");
    if (this.streams.size >= this.settings.clientsMax) throw new SwooshError("unavailable", `too many watchers (max ${this.settings.clientsMax}); retry later`);
    if (from > this.newestIndex + 1) throw new SwooshError("not_found", `index ${from} is past the next entry ${this.newestIndex + 1}`, { index: from });
    const firstIndex = this.source.firstLogIndex;
    if (from <= this.newestIndex && from < firstIndex) {
      throw new SwooshError("history_pruned", `the log starts at index ${firstIndex}; entries from ${from} are gone`, { index: from, firstIndex });
    }
  }

  /** Takes over `response` (already checked with `checkStart`) and streams from `from`. */
  start(response: ServerResponse, from: number, requestId: string): void {
    const stream = new WatchStream(this, response, from, requestId);
    this.streams.add(stream);
    this.metrics.watchClients.set(this.streams.size);
    response.on("close", () => this.forget(stream));
    stream.begin();
  }

  /** Ends every stream and stops listening (graceful shutdown, or the engine failed). */
  closeAll(): void {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe();
    clearInterval(this.heartbeat);
    for (const stream of [...this.streams]) stream.end();
    this.streams.clear();
    this.metrics.watchClients.set(0);
  }

  forget(stream: WatchStream): void {
    stream.stop();
    if (this.streams.delete(stream)) this.metrics.watchClients.set(this.streams.size);
  }

  dropped(stream: WatchStream): void {
    this.metrics.watchDropped.inc();
    this.log.warn({ reqId: stream.requestId, nextIndex: stream.nextIndex }, "watch stream dropped: the client took nothing for the stall timeout");
    this.forget(stream);
  }

  private publish(event: AppliedEvent): void {
    // Runs inside the engine's flush completion: it must never throw.
    try {
      this.newestIndex = event.index;
      if (this.streams.size === 0) return;
      const frame = formatFrame(toWireEntry(event));
      for (const stream of this.streams) stream.offer(event.index, frame);
    } catch (error) {
      this.log.error({ err: error }, "watch: publishing an entry failed");
    }
  }

  private beat(): void {
    for (const stream of this.streams) stream.comment("keep-alive");
  }
}

class WatchStream {
  private mode: "replay" | "live" | "stopped" = "replay";

  constructor(
    private readonly hub: WatchHub,
    private readonly response: ServerResponse,
    /** The next index this stream owes its client. */
    public nextIndex: number,
    readonly requestId: string,
  ) {}

  begin(): void {
    const response = this.response;
    // The stream ends only on shutdown or a drop; never reuse its connection.
    response.shouldKeepAlive = false;
    response.writeHead(200, {
      "content-type": SSE_CONTENT_TYPE,
      "cache-control": "no-cache, no-transform",
      "x-accel-buffering": "no",
      "x-request-id": this.requestId,
    });
    response.socket?.setNoDelay(true);
    // No byte of the stream reached the socket for stallMs (the heartbeat keeps a quiet one busy): the client stalled.
    response.setTimeout(this.hub.settings.stallMs, () => {
      if (this.mode !== "stopped") this.drop();
    });
    response.write(`retry: ${RETRY_MS}\n: swoosh watch from ${this.nextIndex}\n\n`);
    this.replay();
  }

  /** A live frame for `index`. */
  offer(index: number, frame: string): void {
    if (this.mode !== "live" || index < this.nextIndex) return;
    if (index > this.nextIndex) {
      // Cannot happen while the engine announces every index in order; catch up from the log if it does.
      this.replay();
      return;
    }
    if (this.response.writableLength > this.hub.settings.bufferMaxBytes) {
      // This frame and the ones after it come from the WAL, paced by the socket: the stream holds the bound and one page at most.
      this.replay();
      return;
    }
    this.response.write(frame);
    this.nextIndex = index + 1;
  }

  comment(text: string): void {
    // A replaying stream is either sending entries or waiting for 'drain': no heartbeat needed, nor allowed to queue.
    // Nor needed on a stream with that much unsent: the stall timeout judges whether its client still reads.
    if (this.mode !== "live" || this.response.writableLength > this.hub.settings.bufferMaxBytes) return;
    this.response.write(`: ${text}\n\n`);
  }

  /** Graceful end (shutdown). */
  end(): void {
    this.mode = "stopped";
    this.response.end();
  }

  stop(): void {
    this.mode = "stopped";
  }

  private drop(): void {
    this.mode = "stopped";
    this.response.destroy();
    this.hub.dropped(this);
  }

  private replay(): void {
    this.mode = "replay";
    this.replayPages().catch((error: unknown) => {
      if (this.mode === "stopped") return;
      this.hub.log.warn({ reqId: this.requestId, err: error }, "watch: replay failed; ending the stream");
      // Told to the client, as GET /log tells it (a damaged entry is a 503 naming it): an end alone looks like a network break.
      const reason = toSwooshError(error) ?? new SwooshError("unavailable", `reading the log from index ${this.nextIndex} failed`, { index: this.nextIndex });
      this.endWithError(reason);
    });
  }

  /** An `event: error` frame with the error's SPEC §6 body, then the end of the stream. */
  private endWithError(error: SwooshError): void {
    this.response.write(`event: error\ndata: ${JSON.stringify({ error: error.toBody() })}\n\n`);
    this.end();
    this.hub.forget(this);
  }

  /** Sends entries from the WAL until the stream has caught up with the hub, then goes live. */
  private async replayPages(): Promise<void> {
    const { replayPageSize, replayPageCharsMax } = this.hub.settings;
    while (this.mode === "replay") {
      // Checked and switched in one synchronous step: no live frame can slip between.
      if (this.nextIndex > this.hub.newest) {
        this.mode = "live";
        return;
      }
      const entries = await this.hub.source.readLog(this.nextIndex, replayPageSize, replayPageCharsMax);
      if (this.mode !== "replay") return;
      if (entries.length === 0 || (entries[0] as LogEntry).index !== this.nextIndex) {
        // Truncated by a snapshot while this client was catching up.
        this.endWithError(new SwooshError("history_pruned", `the log no longer holds index ${this.nextIndex}`, { index: this.nextIndex }));
        return;
      }
      for (const entry of entries) {
        const writable = this.response.write(formatFrame(toWireEntry(entry)));
        this.nextIndex = entry.index + 1;
        if (!writable) await this.drained();
        if (this.mode !== "replay") return;
      }
    }
  }

  /** Resolves on 'drain' or 'close' (a stalled client is dropped by the stall timeout, which closes it). */
  private drained(): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        this.response.off("drain", done);
        this.response.off("close", done);
        resolve();
      };
      this.response.on("drain", done);
      this.response.on("close", done);
    });
  }
}
