/**
 * JSON too large for one string, parsed from its UTF-8 bytes in parts.
 *
 * V8 caps a string at 2^29 - 24 characters (about 512 MiB), so
 * `JSON.parse(bytes.toString())` cannot read a larger document at all: a
 * snapshot of a state past that size would be written fine and then refuse
 * to load. `parseJsonBytes` parses any value whose text fits in
 * `wholeTextBytesMax` bytes with one native `JSON.parse`; a larger object or
 * array is cut between its members (elements) into runs of at most that
 * many bytes, each run parsed natively as an object (array) of its own and
 * the runs merged, and a single member larger than that is split further.
 *
 * The cutting only follows strings (with their escapes) and nesting to find
 * the commas between members; every run still goes through `JSON.parse`, and
 * what lies between runs (the brackets, the commas, an empty member) is
 * checked here, so a malformed document is refused, never half-read. The
 * result equals `JSON.parse` of the whole text: `__proto__` is an ordinary own
 * key, keys keep their order, and a repeated key keeps its last value.
 */

/** V8's longest string (String::kMaxLength on 64-bit): a UTF-8 text of more bytes than this may not fit in one. */
export const STRING_LENGTH_MAX = 2 ** 29 - 24;

/**
 * A text too long for one string is parsed in runs of at most this many bytes:
 * small enough that no run nears the limit or holds much memory at once, large
 * enough that `JSON.parse` does most of the work (on a 325 MB state, 16 to 256
 * MiB made no difference; runs of 1 MiB were ~10% slower).
 */
export const JSON_PART_BYTES_MAX = 1 << 26;

/** A member of a JSON object: its decoded key and the byte range of its value. */
export interface MemberRange {
  readonly key: string;
  readonly start: number;
  readonly end: number;
}

/** A document the splitter refuses: what is wrong, and where (a byte offset). */
export class JsonSplitError extends Error {
  constructor(
    readonly offset: number,
    reason: string,
    /** How the message names the place; default "at byte <offset>", "" when the reason names it already. */
    where = `at byte ${offset}`,
  ) {
    super(where === "" ? reason : `${reason} ${where}`);
    this.name = "JsonSplitError";
  }
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;

function isSpace(byte: number | undefined): boolean {
  return byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09;
}

function skipSpace(bytes: Uint8Array, at: number, end: number): number {
  while (at < end && isSpace(bytes[at])) at++;
  return at;
}

/**
 * The members (elements) of the object (array) at `bytes[start, end)`, space
 * allowed around it, as the ranges between its brackets and its top-level
 * commas: member k is `[cuts[k] + 1, cuts[k + 1])`, `cuts[0]` being the
 * opening bracket and the last cut the closing one. An empty container has no
 * members; an empty member (`[1,,2]`, `{"a":1,}`) is refused.
 */
function containerCuts(bytes: Uint8Array, start: number, end: number): { readonly open: number; readonly cuts: number[] } {
  const openAt = skipSpace(bytes, start, end);
  const open = bytes[openAt];
  if (open !== OPEN_OBJECT && open !== OPEN_ARRAY) throw new JsonSplitError(openAt, "an object or array was expected");
  const cuts = [openAt];
  let depth = 0;
  let i = openAt;
  // One pass over the bytes, following strings so that brackets and commas inside them do not count.
  for (; i < end; i++) {
    const byte = bytes[i];
    if (byte === QUOTE) {
      i = closingQuote(bytes, i, end);
      if (i >= end) throw new JsonSplitError(openAt, "unterminated string");
    } else if (byte === OPEN_OBJECT || byte === OPEN_ARRAY) {
      depth++;
    } else if (byte === CLOSE_OBJECT || byte === CLOSE_ARRAY) {
      depth--;
      if (depth === 0) break;
    } else if (byte === COMMA && depth === 1) {
      cuts.push(i);
    }
  }
  if (i >= end) throw new JsonSplitError(openAt, "unterminated object or array");
  if (bytes[i] !== (open === OPEN_OBJECT ? CLOSE_OBJECT : CLOSE_ARRAY)) throw new JsonSplitError(i, "mismatched bracket");
  const rest = skipSpace(bytes, i + 1, end);
  if (rest !== end) throw new JsonSplitError(rest, "unexpected text after the end");
  cuts.push(i);
  if (cuts.length === 2 && skipSpace(bytes, openAt + 1, i) === i) return { open, cuts: [] };
  for (let k = 0; k + 1 < cuts.length; k++) {
    const memberStart = skipSpace(bytes, (cuts[k] as number) + 1, cuts[k + 1] as number);
    if (memberStart === cuts[k + 1]) throw new JsonSplitError(memberStart, "a value is missing");
  }
  return { open, cuts };
}

/** Strings longer than this are searched for their end natively rather than byte by byte. */
const SHORT_STRING_BYTES = 64;

/** Where the string opened at `at` closes (`end` when it does not). */
function closingQuote(bytes: Uint8Array, at: number, end: number): number {
  // Most strings in a state are short: a loop beats a native call per string.
  const shortEnd = Math.min(end, at + SHORT_STRING_BYTES);
  let i = at + 1;
  for (; i < shortEnd; i++) {
    const byte = bytes[i];
    if (byte === BACKSLASH) i++;
    else if (byte === QUOTE) return i;
  }
  // A long one (a payload's blob): memchr for each quote, then count the backslashes before it.
  for (;;) {
    const quote = bytes.indexOf(QUOTE, i);
    if (quote < 0 || quote >= end) return end;
    let backslashes = 0;
    while (quote - 1 - backslashes > at && bytes[quote - 1 - backslashes] === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return quote;
    i = quote + 1;
  }
}

/** An object member's text `bytes[start, end)` as its key and the range of its value. */
function memberOf(bytes: Uint8Array, start: number, end: number): MemberRange {
  const keyStart = skipSpace(bytes, start, end);
  if (bytes[keyStart] !== QUOTE) throw new JsonSplitError(keyStart, "a member name was expected");
  const keyEnd = closingQuote(bytes, keyStart, end);
  if (keyEnd >= end) throw new JsonSplitError(keyStart, "unterminated string");
  const key = parseText(bytes, keyStart, keyEnd + 1);
  if (typeof key !== "string") throw new JsonSplitError(keyStart, "a member name was expected");
  const colon = skipSpace(bytes, keyEnd + 1, end);
  if (bytes[colon] !== COLON) throw new JsonSplitError(colon, "':' was expected");
  let valueEnd = end;
  while (valueEnd > colon + 1 && isSpace(bytes[valueEnd - 1])) valueEnd--;
  return { key, start: skipSpace(bytes, colon + 1, valueEnd), end: valueEnd };
}

/**
 * The members of the object whose text is `bytes[start, end)` (surrounding
 * space allowed), in document order, without parsing their values.
 */
export function objectMembers(bytes: Uint8Array, start: number, end: number): MemberRange[] {
  const { open, cuts } = containerCuts(bytes, start, end);
  if (open !== OPEN_OBJECT) throw new JsonSplitError(start, "an object was expected");
  const members: MemberRange[] = [];
  for (let k = 0; k + 1 < cuts.length; k++) members.push(memberOf(bytes, (cuts[k] as number) + 1, cuts[k + 1] as number));
  return members;
}

function parseText(bytes: Uint8Array, start: number, end: number, prefix = "", suffix = ""): unknown {
  try {
    return JSON.parse(prefix + Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start).toString("utf8") + suffix);
  } catch (error) {
    // JSON.parse's own message may quote the text, newlines and all, and gives its position within the part parsed
    // (not within the document): kept on one line, and the place named as what it is.
    const reason = (error as Error).message.replace(/\r?\n/g, "\\n");
    throw new JsonSplitError(start, reason, start === 0 && prefix === "" ? "" : `(in the part from byte ${start})`);
  }
}

/** As JSON.parse stores a member: an own data property, even for `__proto__` (plain assignment would set the prototype). */
function setMember(object: Record<string, unknown>, key: string, value: unknown): void {
  if (key === "__proto__") Object.defineProperty(object, key, { value, writable: true, enumerable: true, configurable: true });
  else object[key] = value;
}

/**
 * `JSON.parse` of the UTF-8 text `bytes[start, end)`, for a text of any size
 * a Buffer can hold (see the top of this file).
 */
export function parseJsonBytes(bytes: Uint8Array, wholeTextBytesMax: number, start = 0, end = bytes.length): unknown {
  const firstAt = skipSpace(bytes, start, end);
  const first = end - start <= wholeTextBytesMax || firstAt === end ? undefined : bytes[firstAt];
  // Small enough, or not a container (JSON.parse judges it; a string past V8's limit is refused there).
  if (first !== OPEN_OBJECT && first !== OPEN_ARRAY) return parseText(bytes, start, end);
  const { open, cuts } = containerCuts(bytes, start, end);
  const isObject = open === OPEN_OBJECT;
  const object: Record<string, unknown> = {};
  const array: unknown[] = [];
  // A run is parsed with its brackets around it: two characters more.
  const runBytesMax = wholeTextBytesMax - 2;
  for (let k = 0; k + 1 < cuts.length; ) {
    const runStart = (cuts[k] as number) + 1;
    // The longest run of members from k that fits, at least one.
    let next = k + 1;
    while (next + 1 < cuts.length && (cuts[next + 1] as number) - runStart <= runBytesMax) next++;
    const runEnd = cuts[next] as number;
    if (runEnd - runStart <= runBytesMax) {
      const run = parseText(bytes, runStart, runEnd, isObject ? "{" : "[", isObject ? "}" : "]");
      if (isObject) for (const key of Object.keys(run as object)) setMember(object, key, (run as Record<string, unknown>)[key]);
      else for (const element of run as unknown[]) array.push(element);
    } else if (isObject) {
      // One member larger than a run may be: its value is split in turn.
      const member = memberOf(bytes, runStart, runEnd);
      setMember(object, member.key, parseJsonBytes(bytes, wholeTextBytesMax, member.start, member.end));
    } else {
      array.push(parseJsonBytes(bytes, wholeTextBytesMax, runStart, runEnd));
    }
    k = next;
  }
  return isObject ? object : array;
}

/** `JSON.parse` of UTF-8 bytes of any size a Buffer holds: as one string when it fits in one (the fastest way), in parts otherwise. */
export function parseJsonText(bytes: Uint8Array): unknown {
  return parseJsonBytes(bytes, bytes.length <= STRING_LENGTH_MAX ? bytes.length : JSON_PART_BYTES_MAX);
}
