/**
 * Leases by expiry, so `system.tick` finds the expired ones without scanning
 * tasks: a min-heap by (expiresAt, token). Tokens are unique, so the order is
 * total. A heartbeat pushes a fresh entry; the old one is dead because the
 * owner's `expiryEntry` no longer points at it, and is dropped when it reaches
 * the top.
 */
import { BinaryHeap } from "./heap.ts";

export interface ExpiryOwner {
  expiryEntry: ExpiryEntry | null;
}

export interface ExpiryEntry {
  readonly owner: ExpiryOwner;
  readonly expiresAt: number;
  readonly token: number;
}

function expiresFirst(a: ExpiryEntry, b: ExpiryEntry): boolean {
  return a.expiresAt !== b.expiresAt ? a.expiresAt < b.expiresAt : a.token < b.token;
}

export class LeaseExpiryIndex {
  private readonly heap = new BinaryHeap<ExpiryEntry>(expiresFirst, (entry) => entry.owner.expiryEntry === entry);

  /** Records (or replaces) the live lease of `owner`. */
  track<T extends ExpiryOwner>(owner: T, expiresAt: number, token: number): void {
    const entry: ExpiryEntry = { owner, expiresAt, token };
    owner.expiryEntry = entry;
    this.heap.push(entry);
  }

  /** Removes and returns the owner of the next live lease with expiresAt <= nowMs. */
  popExpired(nowMs: number): ExpiryOwner | undefined {
    const top = this.liveTop();
    if (top === undefined || top.expiresAt > nowMs) return undefined;
    this.heap.pop();
    top.owner.expiryEntry = null;
    return top.owner;
  }

  /** The earliest live expiry, if any. */
  nextExpiryMs(): number | undefined {
    return this.liveTop()?.expiresAt;
  }

  private liveTop(): ExpiryEntry | undefined {
    return this.heap.peekLive();
  }
}
