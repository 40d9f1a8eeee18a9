/**
 * Every error the HTTP layer sends has one shape, `{"error": {"code",
 * "message", "details"?}}`, with a SPEC §6 code and the status that code maps
 * to (core/errors.ts). Fastify's own errors (body too large, wrong media type,
 * a bad URL) are translated to those codes here; anything unexpected is
 * logged with its stack and answered `unavailable` without one.
 */
import type { FastifyBaseLogger, FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import http from "node:http";
import type { Socket } from "node:net";
import { ERROR_STATUS, SwooshError } from "../core/errors.ts";
import { ReplayDivergenceError, WalChainError } from "../engine/errors.ts";
import { LogCorruptError } from "../storage/errors.ts";
import { answerAfterPending } from "./connection-ledger.ts";
import { newRequestId } from "./request-id.ts";
import type { ErrorBody, ErrorCode } from "../core/errors.ts";

/** The media type of every JSON answer, errors included. */
export const JSON_CONTENT_TYPE = "application/json; charset=utf-8";

/** The JSON text of an error response for `code`. */
export function errorJson(code: ErrorCode, message: string, details?: ErrorBody["details"]): string {
  return JSON.stringify({ error: details === undefined ? { code, message } : { code, message, details } });
}

/** Sends `error` as the SPEC error body with its status. */
export function sendError(reply: FastifyReply, error: SwooshError): FastifyReply {
  return reply.code(error.status).type(JSON_CONTENT_TYPE).send(errorJson(error.code, error.message, error.details));
}

/**
 * The SwooshError a thrown value stands for, or null when it is not an
 * operating error (a bug, or an unexpected failure below us).
 */
export function toSwooshError(error: unknown): SwooshError | null {
  if (error instanceof SwooshError) return error;
  // History that does not verify (time travel or /log through a damaged WAL entry): refused, naming file and index (G3).
  if (error instanceof WalChainError || error instanceof ReplayDivergenceError || error instanceof LogCorruptError) {
    return new SwooshError("unavailable", `the write-ahead log does not verify: ${error.message}`, { index: error.index });
  }
  const fastify = error as Partial<FastifyError> | null;
  if (typeof fastify !== "object" || fastify === null) return null;
  switch (fastify.code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return new SwooshError("payload_too_large", "the request body is larger than the server's limit");
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      // 400, not 415: SPEC §6 gives every malformed request the code bad_request, status 400.
      return new SwooshError("bad_request", "Content-Type must be application/json");
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
      return new SwooshError("bad_request", "the request body is empty; a JSON document is expected");
    case "FST_ERR_CTP_INVALID_CONTENT_LENGTH":
      return new SwooshError("bad_request", "Content-Length does not match the body");
    default:
      break;
  }
  const status = fastify.statusCode;
  if (status === 413) return new SwooshError("payload_too_large", "the request body is larger than the server's limit");
  if (status === 404) return new SwooshError("not_found", "not found");
  // Other 4xx raised by Fastify (bad URL, aborted body…): their messages are ours to show, never a stack.
  if (typeof status === "number" && status >= 400 && status < 500) return new SwooshError("bad_request", fastify.message ?? "bad request");
  return null;
}

/**
 * The SwooshError a request that failed with `error` is answered with, logged
 * on the request's logger: a refusal at info (warn for 5xx), anything
 * unexpected with its stack at error, answered `unavailable` without it.
 */
export function answerFor(error: unknown, log: FastifyBaseLogger, requestId: string): SwooshError {
  const known = toSwooshError(error);
  if (known !== null) {
    if (known.status >= 500) log.warn({ code: known.code }, known.message);
    else log.info({ code: known.code }, "request refused");
    return known;
  }
  log.error({ err: error }, "unexpected error");
  return new SwooshError("unavailable", `internal error (request ${requestId}); see the server log`);
}

/**
 * Installs the error and not-found handlers. `onRefused` sees every request
 * answered by the error handler, with the code it got: refusals before the
 * route ran (401, 413, a body that does not parse, 503 while closing) and
 * the route's own.
 */
export function installErrorHandlers(app: FastifyInstance, onRefused: (request: FastifyRequest, code: ErrorCode) => void = () => undefined): void {
  app.setErrorHandler((error: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const answer = answerFor(error, request.log, String(request.id));
    onRefused(request, answer.code);
    return sendError(reply, answer);
  });

  app.setNotFoundHandler((request, reply) => sendError(reply, new SwooshError("not_found", `no route ${request.method} ${request.url.split("?")[0] ?? ""}`)));
}

/** Node's limit on a request line plus headers (--max-http-header-size, 16 KiB by default). */
const HEADER_BYTES_MAX = http.maxHeaderSize;

/**
 * Answers requests Node's HTTP parser could not read (bad request line,
 * oversized headers, a request that timed out) in the same JSON shape, then
 * closes the connection; the refusal is logged under the id it was answered
 * with, as every other answered request is.
 */
export function clientErrorHandlerFor(log: FastifyBaseLogger): (error: Error & { code?: string }, socket: Socket) => void {
  return (error, socket) => {
    if (error.code === "ECONNRESET" || !socket.writable) {
      socket.destroy();
      return;
    }
    // A request that did not arrive in time was not read, let alone applied: nothing is wrong with it as far as
    // anyone knows (a stalled network, a slow sender), so it is answered as retryable (503), never as a bad request
    // — a client that trusts bad_request would give up, or drop what it was reporting.
    const timedOut = error.code === "ERR_HTTP_REQUEST_TIMEOUT";
    const code = timedOut ? "unavailable" : "bad_request";
    const status = ERROR_STATUS[code];
    const message = timedOut
      ? "the request took too long to arrive; nothing of it was applied: send it again"
      : error.code === "HPE_HEADER_OVERFLOW"
        ? `the request line and headers are larger than ${HEADER_BYTES_MAX / 1024} KiB`
        : "the request could not be parsed as HTTP";
    const body = errorJson(code, message);
    const requestId = newRequestId();
    log.info({ reqId: requestId, code, statusCode: status, parserError: error.code }, message);
    const answer =
      `HTTP/1.1 ${status} ${timedOut ? "Service Unavailable" : "Bad Request"}\r\nContent-Type: ${JSON_CONTENT_TYPE}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
      `X-Request-Id: ${requestId}\r\nConnection: close\r\n\r\n${body}`;
    // Requests read in full before these bytes are answered first: this 400 must not read as their answer.
    if (!answerAfterPending(socket, answer)) socket.end(answer);
  };
}
