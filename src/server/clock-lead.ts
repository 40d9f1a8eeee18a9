/**
 * A client's own `hlc` may be up to `maxDriftMs` ahead of this node's wall
 * clock, and the HLC receive rule moves the node's clock past it: "now" of
 * every later command, ticks included, then runs that far ahead until the wall
 * clock catches up, so leases and heartbeats seen before the jump are judged
 * early (SPEC §2, §6; API_INTEGRATION.md "HLC timestamps"). That is the
 * contract; this makes it visible in the log when it happens.
 */
import type { FastifyBaseLogger } from "fastify";
import { hlcWallMs } from "../core/hlc.ts";

/** A lead past this is worth a warning (NTP keeps honest clocks within a few ms). */
export const CLOCK_LEAD_WARN_MS = 1000;
/** At most one warning per this interval: a client whose clock runs ahead sends a stamp with every command. */
export const CLOCK_LEAD_WARN_INTERVAL_MS = 10_000;

export class ClockLeadWatch {
  private lastWarnedAtMs = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly log: FastifyBaseLogger,
    private readonly wallMs: () => number,
  ) {}

  /** `hlc`: what a command that carried a client's own stamp was stamped with. */
  observe(hlc: string): void {
    const nowMs = this.wallMs();
    const leadMs = hlcWallMs(hlc) - nowMs;
    if (leadMs <= CLOCK_LEAD_WARN_MS || nowMs - this.lastWarnedAtMs < CLOCK_LEAD_WARN_INTERVAL_MS) return;
    this.lastWarnedAtMs = nowMs;
    this.log.warn(
      { leadMs, hlc },
      "a client's hlc moved this node's clock ahead of its wall clock: until the wall clock catches up, leases and heartbeats are judged that much early (lower --max-drift-ms to bound it)",
    );
  }
}
