/**
 * Agents by lastSeenAt, so `system.tick` finds the silent ones without scanning
 * agents: a min-heap by (lastSeen wall ms, agent id). It is keyed by when an
 * agent was last seen rather than by a deadline, so a change of
 * `heartbeatTimeoutMs` applies at once without rebuilding anything.
 */
import { BinaryHeap } from "./heap.ts";

export interface LivenessOwner {
  livenessEntry: LivenessEntry | null;
}

export interface LivenessEntry {
  readonly owner: LivenessOwner;
  readonly lastSeenMs: number;
  readonly id: string;
}

function seenFirst(a: LivenessEntry, b: LivenessEntry): boolean {
  return a.lastSeenMs !== b.lastSeenMs ? a.lastSeenMs < b.lastSeenMs : a.id < b.id;
}

export class AgentLivenessIndex {
  private readonly heap = new BinaryHeap<LivenessEntry>(seenFirst, (entry) => entry.owner.livenessEntry === entry);

  /** Records (or replaces) when `owner` was last seen. */
  track(owner: LivenessOwner, id: string, lastSeenMs: number): void {
    const entry: LivenessEntry = { owner, lastSeenMs, id };
    owner.livenessEntry = entry;
    this.heap.push(entry);
  }

  /** Removes and returns the next agent silent since `nowMs - timeoutMs` or earlier. */
  popSilent(nowMs: number, timeoutMs: number): LivenessOwner | undefined {
    const top = this.liveTop();
    if (top === undefined || top.lastSeenMs + timeoutMs > nowMs) return undefined;
    this.heap.pop();
    top.owner.livenessEntry = null;
    return top.owner;
  }

  /** The earliest wall ms at which a tracked agent goes silent, if any. */
  nextSilentMs(timeoutMs: number): number | undefined {
    const top = this.liveTop();
    return top === undefined ? undefined : top.lastSeenMs + timeoutMs;
  }

  private liveTop(): LivenessEntry | undefined {
    return this.heap.peekLive();
  }
}
