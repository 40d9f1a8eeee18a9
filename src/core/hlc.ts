/**
 * Hybrid logical clock (Kulkarni et al., 2014), SPEC §2.
 *
 * A timestamp is (wall ms, logical counter, node id). Its string form is
 *
 *     WWWWWWWWWWWWWWW-CCCCCCCCCC-NODE
 *
 * with the wall milliseconds zero-padded to 15 digits, the counter to 10 digits
 * and the node id last ([A-Za-z0-9_.-], 1–64 characters). Because the numeric
 * fields are fixed-width and the node id comes last, comparing two encoded
 * strings lexicographically (plain `<` on JS strings) gives the HLC order.
 *
 * The clock never reads time itself: a `Clock` is passed in, so tests and the
 * simulator control time, and the reducer only ever sees the stamped string.
 */

export interface HlcTimestamp {
  readonly wallMs: number;
  readonly counter: number;
  readonly nodeId: string;
}

/** A source of wall-clock milliseconds, injected so that time can be simulated. */
export interface Clock {
  nowMs(): number;
}

export const HLC_WALL_DIGITS = 15;
export const HLC_COUNTER_DIGITS = 10;
export const HLC_WALL_MAX = 10 ** HLC_WALL_DIGITS - 1;
export const HLC_COUNTER_MAX = 10 ** HLC_COUNTER_DIGITS - 1;
export const NODE_ID_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;
const HLC_PATTERN = /^(\d{15})-(\d{10})-([A-Za-z0-9_.-]{1,64})$/;
/** ZEROS[n] is n zeros: left padding for the counter without padStart's intermediate strings. */
const ZEROS: readonly string[] = Array.from({ length: HLC_COUNTER_DIGITS + 1 }, (_, n) => "0".repeat(n));

/** Raised for a malformed timestamp, or a remote one too far ahead of local time. */
export class HlcError extends Error {
  constructor(
    readonly code: "bad_hlc" | "clock_drift",
    message: string,
  ) {
    super(message);
    this.name = "HlcError";
  }
}

export function encodeHlc(ts: HlcTimestamp): string {
  if (!Number.isSafeInteger(ts.wallMs) || ts.wallMs < 0 || ts.wallMs > HLC_WALL_MAX) {
    throw new HlcError("bad_hlc", `wall time ${ts.wallMs} out of range`);
  }
  if (!Number.isSafeInteger(ts.counter) || ts.counter < 0 || ts.counter > HLC_COUNTER_MAX) {
    throw new HlcError("bad_hlc", `counter ${ts.counter} out of range`);
  }
  if (!NODE_ID_PATTERN.test(ts.nodeId)) throw new HlcError("bad_hlc", `node id ${JSON.stringify(ts.nodeId)} is invalid`);
  return `${String(ts.wallMs).padStart(HLC_WALL_DIGITS, "0")}-${String(ts.counter).padStart(HLC_COUNTER_DIGITS, "0")}-${ts.nodeId}`;
}

export function decodeHlc(text: string): HlcTimestamp {
  const match = typeof text === "string" ? HLC_PATTERN.exec(text) : null;
  if (!match) throw new HlcError("bad_hlc", `${JSON.stringify(text)} is not an HLC timestamp`);
  return { wallMs: Number(match[1]), counter: Number(match[2]), nodeId: match[3] as string };
}

/** Wall-ms part of an encoded timestamp: "now" inside the reducer. */
export function hlcWallMs(text: string): number {
  return digitsAt(text, 0, HLC_WALL_DIGITS);
}

/** Counter part of an encoded timestamp. */
export function hlcCounter(text: string): number {
  return digitsAt(text, HLC_WALL_DIGITS + 1, HLC_COUNTER_DIGITS);
}

/**
 * `Number(text.slice(start, start + count))` for a run of decimal digits,
 * without the intermediate string (this runs several times per command).
 * NaN when a character is not a digit, as Number would give for the slice.
 */
function digitsAt(text: string, start: number, count: number): number {
  let value = 0;
  for (let i = start; i < start + count; i++) {
    const digit = text.charCodeAt(i) - 0x30;
    if (!(digit >= 0 && digit <= 9)) return Number(text.slice(start, start + count));
    value = value * 10 + digit;
  }
  return value;
}

export function isHlc(text: unknown): text is string {
  return typeof text === "string" && HLC_PATTERN.test(text);
}

/**
 * The HLC of one node. `now()` stamps a local event; `receive()` merges a
 * remote timestamp. Both return a value strictly greater than every value this
 * clock returned or observed before, even when the wall clock steps backwards.
 * `observe()` seeds it from the last applied HLC on restart (G4).
 */
/** A reading of `HybridClock.position()`. */
export interface HlcPosition {
  readonly wallMs: number;
  readonly counter: number;
}

export class HybridClock {
  private wallMs = 0;
  private counter = 0;
  /** `wallMs` encoded with its dash, kept while the millisecond lasts: most stamps only change the counter. */
  private wallPrefix = "";
  private wallPrefixMs = -1;
  private readonly nodeSuffix: string;

  constructor(
    private readonly clock: Clock,
    readonly nodeId: string,
    readonly maxDriftMs = 60_000,
  ) {
    if (!NODE_ID_PATTERN.test(nodeId)) throw new HlcError("bad_hlc", `node id ${JSON.stringify(nodeId)} is invalid`);
    this.nodeSuffix = `-${nodeId}`;
  }

  /** The latest timestamp issued or observed, encoded (encodeHlc, with the parts that rarely change kept). */
  last(): string {
    const { wallMs, counter } = this;
    if (wallMs !== this.wallPrefixMs) {
      // encodeHlc checks the ranges; the node id was checked once in the constructor.
      this.wallPrefix = encodeHlc({ wallMs, counter: 0, nodeId: this.nodeId }).slice(0, HLC_WALL_DIGITS + 1);
      this.wallPrefixMs = wallMs;
    }
    if (!Number.isSafeInteger(counter) || counter < 0 || counter > HLC_COUNTER_MAX) throw new HlcError("bad_hlc", `counter ${counter} out of range`);
    const digits = String(counter);
    return this.wallPrefix + (ZEROS[HLC_COUNTER_DIGITS - digits.length] as string) + digits + this.nodeSuffix;
  }

  /**
   * The clock's reading in whole milliseconds. An injected clock may return
   * fractions (`performance.timeOrigin + performance.now()`): they are cut off,
   * as a timestamp holds whole milliseconds. Anything that is no time at all
   * is refused before it can reach the clock's state.
   */
  private physicalMs(): number {
    const reading = this.clock.nowMs();
    const ms = Math.floor(reading);
    if (!Number.isSafeInteger(ms) || ms < 0 || ms > HLC_WALL_MAX) {
      throw new RangeError(`clock.nowMs() returned ${String(reading)}: expected milliseconds since 1970 from 0 to ${HLC_WALL_MAX}`);
    }
    return ms;
  }

  /** Stamps a local or send event. */
  now(): string {
    const physical = this.physicalMs();
    if (physical > this.wallMs) {
      this.wallMs = physical;
      this.counter = 0;
    } else {
      this.bumpCounter();
    }
    return this.last();
  }

  /**
   * Stamps a receive event for a remote timestamp. Rejects one more than
   * `maxDriftMs` ahead of the local wall clock with `clock_drift`, leaving the
   * clock unchanged.
   */
  receive(remote: string): string {
    const r = decodeHlc(remote);
    const physical = this.physicalMs();
    if (r.wallMs > physical + this.maxDriftMs) {
      throw new HlcError("clock_drift", `hlc ${remote} is ${r.wallMs - physical} ms ahead of local time (max ${this.maxDriftMs})`);
    }
    const wall = Math.max(this.wallMs, r.wallMs, physical);
    let counter: number;
    if (wall === this.wallMs && wall === r.wallMs) counter = Math.max(this.counter, r.counter) + 1;
    else if (wall === this.wallMs) counter = this.counter + 1;
    else if (wall === r.wallMs) counter = r.counter + 1;
    else counter = 0;
    if (counter > HLC_COUNTER_MAX) {
      // The counter is exhausted within that millisecond: borrow the next one, as a local stamp does.
      this.wallMs = wall + 1;
      this.counter = 0;
    } else {
      this.wallMs = wall;
      this.counter = counter;
    }
    return this.last();
  }

  /** Where the clock stands, for `rewind` (two numbers, no string built). */
  position(): HlcPosition {
    return { wallMs: this.wallMs, counter: this.counter };
  }

  /**
   * Takes back the stamps issued since `position` was read, which must never
   * have been published: a command refused after it was stamped leaves no
   * trace in the log, so it must leave none in the clock either (a client
   * `hlc` up to maxDriftMs ahead would otherwise move "now" for every later
   * command, with nothing in the log to say why).
   */
  rewind(position: HlcPosition): void {
    this.wallMs = position.wallMs;
    this.counter = position.counter;
  }

  /**
   * Moves the clock past an already-applied timestamp without the drift check
   * (recovery: the log is the authority on what happened).
   */
  observe(applied: string): void {
    const t = decodeHlc(applied);
    if (t.wallMs > this.wallMs || (t.wallMs === this.wallMs && t.counter > this.counter)) {
      this.wallMs = t.wallMs;
      this.counter = t.counter;
    }
  }

  private bumpCounter(): void {
    if (this.counter >= HLC_COUNTER_MAX) {
      // Counter exhausted within one millisecond: borrow the next millisecond.
      this.wallMs += 1;
      this.counter = 0;
    } else {
      this.counter += 1;
    }
  }
}
