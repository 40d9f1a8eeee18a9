/**
 * Small helpers the route modules share: the query parameters a route takes,
 * and the non-negative integers the API takes in queries and headers.
 */
import { SwooshError } from "../../core/errors.ts";
import { UndecodableQueryText } from "../query-string.ts";

/**
 * The query parameters a route takes, each given at most once, as strings
 * (an absent one is undefined). A parameter whose name or value is not valid
 * percent-encoded UTF-8 (query-string.ts) is refused, naming it, and so is
 * any parameter the route does not take: a misspelt filter
 * (`?stauts=queued`, `?status[]=queued`) would otherwise widen a listing
 * without a word, as a misspelt body field would widen a command (those are
 * refused too).
 */
export function readQuery<const Name extends string>(query: unknown, names: readonly Name[]): Partial<Record<Name, string>> {
  const given = (typeof query === "object" && query !== null ? query : {}) as Record<string, unknown>;
  for (const [name, value] of Object.entries(given)) {
    if (value instanceof UndecodableQueryText || (Array.isArray(value) && value.some((each) => each instanceof UndecodableQueryText))) {
      throw new SwooshError("bad_request", `query parameter ${JSON.stringify(name)} is not valid percent-encoded UTF-8`, { field: name });
    }
    if ((names as readonly string[]).includes(name)) continue;
    const takes = names.length === 0 ? "none" : names.join(", ");
    throw new SwooshError("bad_request", `unknown query parameter ${JSON.stringify(name)}; this path takes ${takes}`, { field: name });
  }
  const values: Partial<Record<Name, string>> = {};
  for (const name of names) {
    const value = given[name];
    if (value === undefined) continue;
    if (typeof value !== "string") throw new SwooshError("bad_request", `query parameter ${name} must be given once`, { field: name });
    values[name] = value;
  }
  return values;
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
