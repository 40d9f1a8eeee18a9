/**
 * The app's query string parser (Fastify's `routerOptions.querystringParser`).
 *
 * Fastify's own (fast-querystring) keeps a name or value it cannot
 * percent-decode as it was written: `?status=%ZZ` read as the status "%ZZ",
 * `?from=%E0%A4` (a cut UTF-8 sequence) as that text — while a path that does
 * not decode is a 400. Here such a pair is kept as an `UndecodableQueryText`,
 * which `readQuery` (routes/common.ts) refuses with 400 naming the parameter.
 * The parser itself must not throw: it runs inside the router, before
 * Fastify's error handling.
 *
 * Otherwise it reads as fast-querystring does: `&`-separated pairs, empty ones
 * skipped; the first `=` splits name from value (no `=`: the value is "");
 * `+` is a space; a name given again makes an array of its values. The result
 * has no prototype, so `__proto__` is a name like any other.
 */

/** A pair whose name or value is not valid percent-encoded UTF-8, as written. */
export class UndecodableQueryText {
  constructor(readonly raw: string) {}
}

export type QueryValue = string | UndecodableQueryText;

/** Strict percent-decoding (decodeURIComponent refuses `%ZZ`, cut or overlong UTF-8, and surrogates); null when it fails. */
function decode(text: string): string | null {
  const spaced = text.includes("+") ? text.replaceAll("+", " ") : text;
  if (!spaced.includes("%")) return spaced;
  try {
    return decodeURIComponent(spaced);
  } catch {
    return null;
  }
}

export function parseQueryString(text: string): Record<string, QueryValue | QueryValue[]> {
  const result = Object.create(null) as Record<string, QueryValue | QueryValue[]>;
  if (text === "") return result;
  for (const pair of text.split("&")) {
    if (pair === "") continue;
    const equals = pair.indexOf("=");
    const rawName = equals === -1 ? pair : pair.slice(0, equals);
    const name = decode(rawName);
    const value = equals === -1 ? "" : decode(pair.slice(equals + 1));
    const key = name ?? rawName;
    const read: QueryValue = name !== null && value !== null ? value : new UndecodableQueryText(pair);
    const earlier = result[key];
    if (earlier === undefined) result[key] = read;
    else if (Array.isArray(earlier)) earlier.push(read);
    else result[key] = [earlier, read];
  }
  return result;
}
