/**
 * Request ids (`X-Request-Id` on every answer, `reqId` in every log line of
 * the request): the client's own when it is a short token, else one made here.
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage } from "node:http";

const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:-]{1,64}$/;
const requestIdPrefix = randomUUID().slice(0, 8);
let requestSeq = 0;

/** A new id: a per-process prefix and a counter (no UUID draw on the hot path). */
export function newRequestId(): string {
  return `${requestIdPrefix}-${(requestSeq++).toString(36)}`;
}

/** The request's id: the client's `X-Request-Id` when it is a short token, else a new one. */
export function requestIdOf(request: IncomingMessage): string {
  const given = request.headers["x-request-id"];
  return typeof given === "string" && REQUEST_ID_PATTERN.test(given) ? given : newRequestId();
}
