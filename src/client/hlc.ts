/**
 * The client's HLC memory: the greatest HLC timestamp seen in any answer
 * (command outcomes, `/state`, log and watch entries), sent back as `hlc` with
 * every command so that what a client saw happens-before what it does next —
 * also across servers that share its causality.
 *
 * Sending back the server's own timestamps is safe: the server refuses an
 * `hlc` more than `maxDriftMs` ahead of its wall clock, and one it stamped
 * itself is behind it (a server whose clock jumped back by more than that is
 * handled by the caller, which forgets the HLC on `clock_drift`).
 *
 * The encoding (`WWWWWWWWWWWWWWW-CCCCCCCCCC-NODE`, fixed-width numbers) makes
 * string order the HLC order, so "max" is a string comparison.
 */

const HLC_PATTERN = /^\d{15}-\d{10}-[A-Za-z0-9_.-]{1,64}$/;

export function isHlc(value: unknown): value is string {
  return typeof value === "string" && HLC_PATTERN.test(value);
}

/** Wall-clock milliseconds of an encoded HLC. */
export function hlcWallMs(hlc: string): number {
  return Number(hlc.slice(0, 15));
}

export class HlcTracker {
  private latest: string | undefined;

  /** The greatest HLC seen, or undefined before the first (or after `forget`). */
  get value(): string | undefined {
    return this.latest;
  }

  /** Merges a timestamp from an answer; anything that is not an HLC is ignored. */
  observe(hlc: unknown): void {
    if (isHlc(hlc) && (this.latest === undefined || hlc > this.latest)) this.latest = hlc;
  }

  forget(): void {
    this.latest = undefined;
  }
}
