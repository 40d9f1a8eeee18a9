/**
 * Bearer-token authentication (SPEC §7): with a token configured, every
 * request but `/healthz` carries `Authorization: Bearer <token>` or gets 401
 * `unauthorized`.
 *
 * Both sides are SHA-256 hashed before `timingSafeEqual`, so the comparison
 * takes the same time whatever the length or content of the guess.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { SwooshError } from "../core/errors.ts";

function digest(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}

/** A check for `Authorization` header values against `token`. */
export function bearerChecker(token: string): (authorization: string | undefined) => boolean {
  const expected = digest(token);
  return (authorization) => {
    if (typeof authorization !== "string") return false;
    const match = /^Bearer +(.+)$/i.exec(authorization);
    if (match === null) return false;
    return timingSafeEqual(digest((match[1] as string).trimEnd()), expected);
  };
}

/** Paths open without a token. */
export const PUBLIC_PATHS: ReadonlySet<string> = new Set(["/healthz"]);

export function unauthorized(): SwooshError {
  return new SwooshError("unauthorized", "a valid bearer token is required (Authorization: Bearer <token>)");
}
