/**
 * The one request body parser: `application/json`, read as UTF-8 text.
 *
 * Fastify's default parser (secure-json-parse) refuses `__proto__` and
 * `constructor` keys, but SPEC §3 says they are ordinary keys that must round
 * trip. Plain `JSON.parse` already does the safe thing: it defines `__proto__`
 * as an own data property and never touches a prototype. Around it:
 *
 * - nesting is bounded: a long text is measured *before* parsing, so a
 *   megabyte of `[` costs one linear scan, never a deep recursion (a short one
 *   is parsed first and measured only when something is wrong with it);
 * - after parsing, every string and key must be well-formed UTF-16 (a
 *   `"\ud800"` escape decodes to a lone surrogate, which no hash can carry).
 *
 * - the bytes are decoded as strict UTF-8 (`decodeJsonBody`): invalid bytes,
 *   another charset or a Content-Encoding are refused, never guessed at.
 *
 * Every failure is a 400 `bad_request`. Any other media type gets 400 too (see errors.ts).
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import { SwooshError } from "../core/errors.ts";
import { JSON_DEPTH_MAX, JsonValueError, assertJsonValue, nestingDepth } from "../core/json.ts";

/**
 * Deepest nesting a request body may have: JSON_DEPTH_MAX levels for a payload
 * (which core counts from the payload, or a genesis' state, itself), the
 * deepest envelope — a batch's `{commands: [{type, payload}]}`, three levels —
 * and a margin of five, so that a payload a little too deep is refused by the
 * engine's own check, in its batch item's slot (the other items still apply),
 * and only a body deeper still is refused whole.
 */
export const BODY_DEPTH_MAX = JSON_DEPTH_MAX + 8;

/**
 * Bodies up to this many UTF-16 units are parsed before their nesting is
 * measured: V8's JSON.parse does not recurse, so even the deepest such body
 * costs little (a few KiB of `[` parse in well under a millisecond), and the
 * common body skips a scan. Longer bodies are measured first, so a megabyte
 * of `[` still costs one linear scan.
 */
const PARSE_FIRST_MAX_CHARS = 4096;

function refuseDeepNesting(text: string): void {
  if (nestingDepth(text, BODY_DEPTH_MAX) > BODY_DEPTH_MAX) {
    throw new SwooshError("bad_request", `the request body is nested deeper than ${BODY_DEPTH_MAX} levels`);
  }
}

/**
 * Parses a request body per the rules above; throws `bad_request`. Whatever
 * the order of the checks, a body nested too deeply is refused as such, before
 * any other complaint about it.
 */
export function parseJsonBody(text: string): unknown {
  if (text.trim().length === 0) throw new SwooshError("bad_request", "the request body is empty; a JSON document is expected");
  const measuredFirst = text.length > PARSE_FIRST_MAX_CHARS;
  if (measuredFirst) refuseDeepNesting(text);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    if (!measuredFirst) refuseDeepNesting(text);
    throw new SwooshError("bad_request", `the request body is not valid JSON: ${(error as Error).message}`);
  }
  try {
    // Also bounds the depth of what was parsed.
    assertJsonValue(value, BODY_DEPTH_MAX);
  } catch (error) {
    if (!measuredFirst) refuseDeepNesting(text);
    if (error instanceof JsonValueError) throw new SwooshError("bad_request", `request body ${error.path || "(root)"}: ${error.reason}`, { field: error.path });
    throw error;
  }
  return value;
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * The body's text: the bytes must be UTF-8 (RFC 8259 §8.1). A lenient decode
 * would turn invalid bytes into U+FFFD and store something the client never
 * sent, so they are refused instead. A body in another charset, or with a
 * Content-Encoding this server does not decode, is refused too rather than
 * read as if it were plain UTF-8.
 */
export function decodeJsonBody(bytes: Uint8Array, headers: { readonly [name: string]: string | string[] | undefined }): string {
  const encoding = headers["content-encoding"];
  if (encoding !== undefined && String(encoding).trim().toLowerCase() !== "identity") {
    throw new SwooshError("bad_request", "Content-Encoding is not supported: send the JSON body uncompressed", { field: "content-encoding" });
  }
  const charset = /;\s*charset\s*=\s*"?([^";\s]*)/i.exec(String(headers["content-type"] ?? ""))?.[1]?.toLowerCase();
  if (charset !== undefined && charset !== "utf-8" && charset !== "utf8") {
    throw new SwooshError("bad_request", "the request body must be UTF-8 JSON (charset=utf-8)", { field: "content-type" });
  }
  try {
    return strictUtf8.decode(bytes);
  } catch {
    throw new SwooshError("bad_request", "the request body is not valid UTF-8");
  }
}

/** A request body's bytes as the JSON value they hold, per the rules above; throws `bad_request`. */
export function readJsonBody(bytes: Uint8Array, headers: { readonly [name: string]: string | string[] | undefined }): unknown {
  return parseJsonBody(decodeJsonBody(bytes, headers));
}

/** Replaces every body parser of `app` with the JSON one above. */
export function installJsonBodyParser(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("application/json", { parseAs: "buffer" }, (request: FastifyRequest, body: string | Buffer, done) => {
    try {
      done(null, typeof body === "string" ? parseJsonBody(body) : readJsonBody(body, request.headers));
    } catch (error) {
      done(error as Error, undefined);
    }
  });
}
