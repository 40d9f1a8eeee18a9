/**
 * The leases a worker holds, one record per lease (keyed by its fencing
 * token, unique over all leases ever): the handler's abort controller, where
 * the lease stands at the server as far as the worker knows, and when it
 * expires in server time.
 *
 * A record lives from the claim answer until its outcome is acknowledged by
 * the server, or until the server is known not to hold it any more and its
 * handler has settled. Records still count against the capacity while their
 * handler runs, even when the lease is gone, so a handler that ignores its
 * aborted signal still bounds the worker's concurrency.
 */
import { LeaseLostError } from "../errors.ts";
import type { ClaimedLease } from "../types.ts";

export type LeaseLossReason = LeaseLostError["reason"];

export interface HeldLease {
  readonly lease: ClaimedLease;
  /** The log index of the claim (or the read that adopted it): reads older than this cannot judge it. */
  readonly claimIndex: number;
  readonly controller: AbortController;
  /** Server wall ms when the lease expires unless a heartbeat extends it. */
  expiresAt: number;
  handlerSettled: boolean;
  /** The server is known not to hold this lease (stale_lease, a read without it, agent removed). */
  gone: boolean;
  /** Why the signal was aborted, if it was. */
  lossReason?: LeaseLossReason;
}

export class LeaseTable {
  private readonly byToken = new Map<number, HeldLease>();

  get size(): number {
    return this.byToken.size;
  }

  has(token: number): boolean {
    return this.byToken.has(token);
  }

  get(token: number): HeldLease | undefined {
    return this.byToken.get(token);
  }

  add(lease: ClaimedLease, claimIndex: number): HeldLease {
    const held: HeldLease = { lease, claimIndex, controller: new AbortController(), expiresAt: lease.expiresAt, handlerSettled: false, gone: false };
    this.byToken.set(lease.token, held);
    return held;
  }

  delete(token: number): void {
    this.byToken.delete(token);
  }

  all(): HeldLease[] {
    return [...this.byToken.values()];
  }

  /** Handlers still running. */
  running(): number {
    let count = 0;
    for (const held of this.byToken.values()) if (!held.handlerSettled) count++;
    return count;
  }

  /** Leases the server should still show for this agent. */
  liveCount(): number {
    let count = 0;
    for (const held of this.byToken.values()) if (!held.gone) count++;
    return count;
  }

  /** Aborts the handler's signal once, with a LeaseLostError naming `reason`. */
  abort(held: HeldLease, reason: LeaseLossReason): void {
    if (held.lossReason !== undefined) return;
    held.lossReason = reason;
    held.controller.abort(new LeaseLostError(held.lease.taskId, held.lease.token, reason));
  }
}
