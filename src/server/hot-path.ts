/**
 * The lean path for the two write routes, `POST /command` and `POST /commands`,
 * in front of Fastify on the same `node:http` server (Fastify's
 * `serverFactory`). Per request, Fastify builds a request, a reply and a child
 * logger and runs its hook, parser and serializer chain; for the one route
 * that carries the write load, this path does the same work directly:
 *
 *     headers → (take it, or hand it to Fastify untouched) → body bytes →
 *     readJsonBody → applyCommand / applyBatch → one writeHead + end
 *
 * It takes a request only when every header says it is the ordinary case:
 * method POST, path exactly `/command` or `/commands` (no query string), the
 * runtime ready, a Host header, the bearer token right (when one is set),
 * `Content-Type: application/json` (optionally `; charset=utf-8`), no
 * Content-Encoding, no Transfer-Encoding, and a Content-Length from 1 to the
 * body limit. Anything else — 401, 413, 503 while shutting down, another media
 * type, a chunked body, a missing Host — is decided before a byte of the body
 * is read, so it goes to Fastify whole and is answered there exactly as before.
 *
 * Past the headers it keeps Fastify's behaviour: the `X-Request-Id` header
 * (request-id.ts `requestIdOf`), a body that is not UTF-8 JSON answered 400 with
 * `Connection: close` (as Fastify's parser errors are), errors in the SPEC
 * shape logged as the error handler logs them (`answerFor`), refusals counted
 * by code, `Connection: close` on answers sent once shutdown began, and the
 * request log lines ("incoming request", "request completed") when the logger
 * is at info. The 200 is written only after the engine resolved (G1).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { FastifyBaseLogger } from "fastify";
import { closesConnection, processable } from "./connection-ledger.ts";
import { isLoopbackHost } from "./host-guard.ts";
import { JSON_CONTENT_TYPE, answerFor, errorJson } from "./errors.ts";
import { readJsonBody } from "./json-body.ts";
import { applyCommand } from "./routes/command.ts";
import { applyBatch, batchAnswerBody } from "./routes/commands.ts";
import type { ServerRuntime } from "./runtime.ts";
import { SwooshError } from "../core/errors.ts";

export interface HotPathOptions {
  readonly runtime: ServerRuntime;
  /** Fastify's logger (it carries the req/res serializers of its request log). */
  readonly log: FastifyBaseLogger;
  readonly bodyLimitBytes: number;
  /** The token check, or null without authentication. */
  readonly tokenOk: ((authorization: string | undefined) => boolean) | null;
  /** Requests for other host names are Fastify's to refuse (host-guard.ts). */
  readonly loopbackHostsOnly: boolean;
  readonly requestIdOf: (request: IncomingMessage) => string;
}

/** Takes a request (true) and answers it, or leaves it untouched (false) for Fastify. */
export type HotPath = (request: IncomingMessage, response: ServerResponse) => boolean;

/** The Content-Type values the lean path takes; any other goes through Fastify's checks. */
function plainJsonType(value: string | undefined): boolean {
  if (value === undefined) return false;
  if (value === "application/json") return true;
  const lower = value.toLowerCase();
  return lower === "application/json" || lower === JSON_CONTENT_TYPE || lower === "application/json;charset=utf-8";
}

export function createHotPath(options: HotPathOptions): HotPath {
  const { runtime, log: appLog, bodyLimitBytes, tokenOk, loopbackHostsOnly, requestIdOf } = options;

  return (request, response) => {
    if (request.method !== "POST") return false;
    const url = request.url;
    const batch = url === "/commands";
    if (!batch && url !== "/command") return false;
    if (runtime.phase !== "ready") return false;
    const headers = request.headers;
    if (headers.host === undefined || headers["content-encoding"] !== undefined || headers["transfer-encoding"] !== undefined) return false;
    if (!plainJsonType(headers["content-type"])) return false;
    const lengthText = headers["content-length"];
    const length = lengthText === undefined ? NaN : Number(lengthText);
    if (!(length >= 1 && length <= bodyLimitBytes)) return false;
    if (tokenOk !== null && !tokenOk(headers.authorization)) return false;
    if (loopbackHostsOnly && !isLoopbackHost(headers.host)) return false;

    const exchange = new WriteExchange(runtime, appLog, request, response, requestIdOf(request), batch, length);
    request.on("data", (chunk: Buffer) => exchange.received(chunk));
    // The client went away mid-body: nothing was submitted, and there is no one to answer.
    request.on("error", () => exchange.abandon());
    request.on("end", () => {
      try {
        exchange.complete();
      } catch (error) {
        exchange.broken(error);
      }
    });
    return true;
  };
}

/** One request the lean path took: its body as it arrives, then its one answer. */
class WriteExchange {
  private readonly log: FastifyBaseLogger;
  /** The request log lines are written (the logger is at info or below). */
  private readonly logged: boolean;
  private readonly startedAt: number;
  private first: Buffer | null = null;
  private more: Buffer[] | null = null;
  private bytes = 0;
  private abandoned = false;

  constructor(
    private readonly runtime: ServerRuntime,
    private readonly appLog: FastifyBaseLogger,
    private readonly request: IncomingMessage,
    private readonly response: ServerResponse,
    private readonly id: string,
    private readonly batch: boolean,
    private readonly length: number,
  ) {
    this.logged = appLog.level !== "silent" && isInfoOn(appLog);
    this.log = this.logged ? appLog.child({ reqId: id }) : appLog;
    this.startedAt = this.logged ? performance.now() : 0;
    if (this.logged) this.log.info({ req: requestView(request) }, "incoming request");
  }

  received(chunk: Buffer): void {
    this.bytes += chunk.length;
    if (this.first === null) this.first = chunk;
    else (this.more ??= [this.first]).push(chunk);
  }

  abandon(): void {
    this.abandoned = true;
  }

  complete(): void {
    if (this.abandoned) return;
    if (!processable(this.request)) {
      // Its answer would never be written: applying it would leave its client not knowing (RFC 9112 §9.6).
      this.log.info("not processed: an earlier answer on its connection closes it (RFC 9112 §9.6)");
      return;
    }
    const { first, more } = this;
    if (this.bytes !== this.length || first === null) {
      this.fail(new SwooshError("bad_request", "Content-Length does not match the body"), true);
      return;
    }
    let body: unknown;
    try {
      body = readJsonBody(more === null ? first : Buffer.concat(more, this.bytes), this.request.headers);
    } catch (error) {
      // As Fastify does after a parser error: the rest of the connection may be garbage.
      this.fail(error, true);
      return;
    }
    this.first = this.more = null;
    (this.batch ? applyBatch(this.runtime, body, this.log).then(batchAnswerBody) : applyCommand(this.runtime, body, this.log).then((value) => JSON.stringify(value)))
      .then(
        (text) => this.send(200, text, false),
        (error: unknown) => this.fail(error, false),
      )
      // A failure to answer (a bug) is answered like any unexpected error, never left as an unhandled rejection.
      .catch((error: unknown) => this.broken(error));
  }

  /** Something failed while answering: a 503 if nothing was sent yet, else the connection is cut (the log has the stack). */
  broken(error: unknown): void {
    if (!this.response.headersSent) {
      try {
        this.fail(error, true);
        return;
      } catch (again) {
        error = again;
      }
    }
    this.appLog.error({ err: error, reqId: this.id }, "answering a request failed");
    this.response.destroy();
  }

  private fail(error: unknown, closeConnection: boolean): void {
    // Logged with the request id whatever the level (as request.log would).
    const answer = answerFor(error, this.logged ? this.log : this.appLog.child({ reqId: this.id }), this.id);
    // Every refused write request is counted here or in the error handler (errors.ts), never both.
    this.runtime.metrics.rejected(answer.code);
    this.send(answer.status, errorJson(answer.code, answer.message, answer.details), closeConnection);
  }

  private send(status: number, body: string | Buffer[], closeConnection: boolean): void {
    // Requests in flight when shutdown began answer with Connection: close (as app.ts's onSend hook does).
    const close = closeConnection || this.runtime.closesAtShutdown(this.request);
    if (close) closesConnection(this.request);
    if (this.logged) {
      this.response.once("finish", () => this.log.info({ res: { statusCode: status }, responseTime: performance.now() - this.startedAt }, "request completed"));
    }
    const length = typeof body === "string" ? Buffer.byteLength(body) : body.reduce((sum, piece) => sum + piece.length, 0);
    this.response.writeHead(
      status,
      close
        ? { "x-request-id": this.id, connection: "close", "content-type": JSON_CONTENT_TYPE, "content-length": length }
        : { "x-request-id": this.id, "content-type": JSON_CONTENT_TYPE, "content-length": length },
    );
    if (typeof body === "string") {
      this.response.end(body);
      return;
    }
    // A batch answer too long for one string (batchAnswerBody): its pieces, in order.
    for (const piece of body) this.response.write(piece);
    this.response.end();
  }
}

function isInfoOn(log: FastifyBaseLogger): boolean {
  const check = (log as { isLevelEnabled?: (level: string) => boolean }).isLevelEnabled;
  return typeof check === "function" ? check.call(log, "info") : true;
}

/** What Fastify's `req` log serializer reads from its request object. */
function requestView(request: IncomingMessage): object {
  return {
    method: request.method,
    url: request.url,
    headers: request.headers,
    host: request.headers.host,
    ip: request.socket.remoteAddress,
    socket: request.socket,
  };
}
