/**
 * Small helpers the route modules share: query parameters as single strings,
 * and the non-negative integers the API takes in queries and headers.
 */
import { SwooshError } from "../../core/errors.ts";

/**
 * Refuses a query parameter the route does not read, naming it: a misspelt
 * filter (`?stauts=queued`, `?status[]=queued`) would otherwise widen a
 * listing without a word, as a misspelt body field would widen a command
 * (those are refused too).
 */
export function onlyQueryParams(query: unknown, names: readonly string[]): void {
  if (typeof query !== "object" || query === null) return;
  for (const name of Object.keys(query)) {
    if (names.includes(name)) continue;
    const takes = names.length === 0 ? "none" : names.join(", ");
    throw new SwooshError("bad_request", `unknown query parameter ${JSON.stringify(name)}; this path takes ${takes}`, { field: name });
  }
}

/** A query parameter given at most once, as a string (undefined when absent). */
export function queryParam(query: unknown, name: string): string | undefined {
  const value = (query as Record<string, unknown> | undefined)?.[name];
  if (value === undefined) return undefined;
  if (typeof value !== "string") throw new SwooshError("bad_request", `query parameter ${name} must be given once`, { field: name });
  return value;
}

/**
 * A non-negative integer written in decimal digits; `bad_request` naming
 * `field` otherwise. One past 2^53 − 1 (no log reaches it) is read as
 * 2^53 − 1: still past the end, so it gets the answer of any index past the
 * end (404, or an empty page), not a 400 an integer does not deserve.
 */
export function parseIndex(text: string, field: string): number {
  if (!/^\d{1,1000}$/.test(text)) throw new SwooshError("bad_request", `${field} must be a non-negative integer`, { field });
  return Math.min(Number(text), Number.MAX_SAFE_INTEGER);
}
