/**
 * Terminal tasks that `task.prune` may remove, by age: one min-heap per
 * terminal status, by (updatedAt, id). A task is in its heap only while it is
 * terminal and no live task depends on it; when a new task comes to depend on
 * it, its entry dies (the owner's `pruneEntry` is cleared) and it comes back
 * when its last live dependent ends. A prune therefore costs O(log n) per task
 * it removes, plus dead entries it meets on the way.
 */
import { hlcWallMs } from "../../core/hlc.ts";
import type { TerminalStatus } from "../types.ts";
import { BinaryHeap } from "./heap.ts";

export interface PruneOwner {
  pruneEntry: PruneEntry | null;
}

export interface PruneEntry {
  readonly owner: PruneOwner;
  readonly updatedAt: string;
  readonly id: string;
}

function olderFirst(a: PruneEntry, b: PruneEntry): boolean {
  return a.updatedAt !== b.updatedAt ? a.updatedAt < b.updatedAt : a.id < b.id;
}

function isLive(entry: PruneEntry): boolean {
  return entry.owner.pruneEntry === entry;
}

export class PruneIndex {
  private readonly heaps: Record<TerminalStatus, BinaryHeap<PruneEntry>> = {
    succeeded: new BinaryHeap(olderFirst, isLive),
    failed: new BinaryHeap(olderFirst, isLive),
    cancelled: new BinaryHeap(olderFirst, isLive),
  };

  /** Makes `owner` prunable. */
  track(owner: PruneOwner, status: TerminalStatus, id: string, updatedAt: string): void {
    const entry: PruneEntry = { owner, updatedAt, id };
    owner.pruneEntry = entry;
    this.heaps[status].push(entry);
  }

  /** True when a prunable `status` task updated before `beforeMs` (wall ms) is left. */
  hasOlderThan(status: TerminalStatus, beforeMs: number): boolean {
    const top = this.heaps[status].peekLive();
    return top !== undefined && hlcWallMs(top.updatedAt) < beforeMs;
  }

  /** Removes and returns the oldest prunable `status` task updated before `beforeMs` (wall ms). */
  popOlderThan(status: TerminalStatus, beforeMs: number): PruneOwner | undefined {
    const heap = this.heaps[status];
    const top = heap.peekLive();
    if (top === undefined || hlcWallMs(top.updatedAt) >= beforeMs) return undefined;
    heap.pop();
    top.owner.pruneEntry = null;
    return top.owner;
  }
}
