/**
 * JSON too large for one string, parsed from its UTF-8 bytes a member at a time.
 *
 * V8 caps a string at 2^29 - 24 characters (about 512 MiB), so
 * `JSON.parse(bytes.toString())` cannot read a larger document at all: a
 * snapshot of a state past that size would be written fine and then refuse
 * to load. `parseJsonBytes` parses any value whose text fits in
 * `wholeTextBytesMax` bytes with one native `JSON.parse`, and splits anything
 * larger into its members (object) or elements (array) first, recursing, so
 * no string it builds is longer than the largest single member.
 *
 * The splitter only finds where members begin and end (strings with their
 * escapes, nesting); every piece it hands on is still checked by `JSON.parse`,
 * and the punctuation between pieces (`{`, `:`, `,`, `}`, whitespace) is
 * checked here, so a malformed document is refused, never half-read. The
 * result equals `JSON.parse` of the whole text: `__proto__` is an ordinary own
 * key, and a repeated key keeps its last value.
 */

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
  ) {
    super(`${reason} at byte ${offset}`);
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

/** The offset just past the string whose opening quote is at `at`. */
function stringEnd(bytes: Uint8Array, at: number, end: number): number {
  let from = at + 1;
  for (;;) {
    const quote = bytes.indexOf(QUOTE, from);
    if (quote < 0 || quote >= end) throw new JsonSplitError(at, "unterminated string");
    // Escaped when preceded by an odd run of backslashes.
    let backslashes = 0;
    while (bytes[quote - 1 - backslashes] === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return quote + 1;
    from = quote + 1;
  }
}

/**
 * The offset just past the value that starts at `at` (no leading space). Only
 * the extent is found here: strings and nesting are followed, the rest is left
 * for `JSON.parse` to judge.
 */
function valueEnd(bytes: Uint8Array, at: number, end: number): number {
  const first = bytes[at];
  if (first === QUOTE) return stringEnd(bytes, at, end);
  if (first !== OPEN_OBJECT && first !== OPEN_ARRAY) {
    // A number or a literal: up to the next delimiter.
    let i = at;
    while (i < end) {
      const byte = bytes[i];
      if (byte === COMMA || byte === CLOSE_OBJECT || byte === CLOSE_ARRAY || isSpace(byte)) break;
      i++;
    }
    if (i === at) throw new JsonSplitError(at, "a value is missing");
    return i;
  }
  let depth = 0;
  let i = at;
  while (i < end) {
    const byte = bytes[i] as number;
    if (byte === QUOTE) {
      i = stringEnd(bytes, i, end);
      continue;
    }
    if (byte === OPEN_OBJECT || byte === OPEN_ARRAY) depth++;
    else if (byte === CLOSE_OBJECT || byte === CLOSE_ARRAY) {
      depth--;
      if (depth === 0) return i + 1;
    }
    i++;
  }
  throw new JsonSplitError(at, "unterminated object or array");
}

/**
 * The members of the object whose text is `bytes[start, end)` (surrounding
 * space allowed), in document order, without parsing their values.
 */
export function objectMembers(bytes: Uint8Array, start: number, end: number): MemberRange[] {
  let at = skipSpace(bytes, start, end);
  if (bytes[at] !== OPEN_OBJECT) throw new JsonSplitError(at, "an object was expected");
  at = skipSpace(bytes, at + 1, end);
  const members: MemberRange[] = [];
  if (bytes[at] === CLOSE_OBJECT) return closed(members, bytes, at + 1, end);
  for (;;) {
    if (bytes[at] !== QUOTE) throw new JsonSplitError(at, "a member name was expected");
    const keyEnd = stringEnd(bytes, at, end);
    const key = parseText(bytes, at, keyEnd) as string;
    at = skipSpace(bytes, keyEnd, end);
    if (bytes[at] !== COLON) throw new JsonSplitError(at, "':' was expected");
    const valueStart = skipSpace(bytes, at + 1, end);
    const valueStop = valueEnd(bytes, valueStart, end);
    members.push({ key, start: valueStart, end: valueStop });
    at = skipSpace(bytes, valueStop, end);
    if (bytes[at] === CLOSE_OBJECT) return closed(members, bytes, at + 1, end);
    if (bytes[at] !== COMMA) throw new JsonSplitError(at, "',' or '}' was expected");
    at = skipSpace(bytes, at + 1, end);
  }
}

/** The byte ranges of the elements of the array whose text is `bytes[start, end)`. */
export function arrayElements(bytes: Uint8Array, start: number, end: number): Array<{ start: number; end: number }> {
  let at = skipSpace(bytes, start, end);
  if (bytes[at] !== OPEN_ARRAY) throw new JsonSplitError(at, "an array was expected");
  at = skipSpace(bytes, at + 1, end);
  const elements: Array<{ start: number; end: number }> = [];
  if (bytes[at] === CLOSE_ARRAY) return closed(elements, bytes, at + 1, end);
  for (;;) {
    const valueStop = valueEnd(bytes, at, end);
    elements.push({ start: at, end: valueStop });
    at = skipSpace(bytes, valueStop, end);
    if (bytes[at] === CLOSE_ARRAY) return closed(elements, bytes, at + 1, end);
    if (bytes[at] !== COMMA) throw new JsonSplitError(at, "',' or ']' was expected");
    at = skipSpace(bytes, at + 1, end);
  }
}

/** `parts`, once nothing but space follows the closing bracket. */
function closed<T>(parts: T, bytes: Uint8Array, at: number, end: number): T {
  const rest = skipSpace(bytes, at, end);
  if (rest !== end) throw new JsonSplitError(rest, "unexpected text after the end");
  return parts;
}

function parseText(bytes: Uint8Array, start: number, end: number): unknown {
  try {
    return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start).toString("utf8"));
  } catch (error) {
    throw new JsonSplitError(start, (error as Error).message);
  }
}

/**
 * `JSON.parse` of the UTF-8 text `bytes[start, end)`, for a text of any size
 * a Buffer can hold: parts of at most `wholeTextBytesMax` bytes are parsed
 * natively, larger objects and arrays member by member.
 */
export function parseJsonBytes(bytes: Uint8Array, wholeTextBytesMax: number, start = 0, end = bytes.length): unknown {
  const first = end - start <= wholeTextBytesMax ? undefined : bytes[skipSpace(bytes, start, end)];
  if (first === OPEN_ARRAY) return arrayElements(bytes, start, end).map((element) => parseJsonBytes(bytes, wholeTextBytesMax, element.start, element.end));
  // Small enough, or not a container (JSON.parse judges it; a string past V8's limit is refused there).
  if (first !== OPEN_OBJECT) return parseText(bytes, start, end);
  const object: Record<string, unknown> = {};
  for (const member of objectMembers(bytes, start, end)) {
    const value = parseJsonBytes(bytes, wholeTextBytesMax, member.start, member.end);
    // As JSON.parse does: an own data property, even for `__proto__` (plain assignment would set the prototype).
    if (member.key === "__proto__") Object.defineProperty(object, member.key, { value, writable: true, enumerable: true, configurable: true });
    else object[member.key] = value;
  }
  return object;
}
