/**
 * Small helpers the route modules share: query parameters as single strings,
 * and the non-negative integers the API takes in queries and headers.
 */
import { SwooshError } from "../../core/errors.ts";

/** A query parameter given at most once, as a string (undefined when absent). */
export function queryParam(query: unknown, name: string): string | undefined {
  const value = (query as Record<string, unknown> | undefined)?.[name];
  if (value === undefined) return undefined;
  if (typeof value !== "string") throw new SwooshError("bad_request", `query parameter ${name} must be given once`, { field: name });
  return value;
}

/** A non-negative safe integer written in decimal digits; `bad_request` naming `field` otherwise. */
export function parseIndex(text: string, field: string): number {
  const value = /^\d{1,16}$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(value)) throw new SwooshError("bad_request", `${field} must be a non-negative integer`, { field });
  return value;
}
