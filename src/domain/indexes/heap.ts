/**
 * A binary min-heap under a strict "comes first" order, with lazy deletion.
 *
 * Every index of the orchestrator is one of these: an entry is never removed
 * from the middle; whoever pops it checks that it still describes the live
 * state (`isLive`) and drops it otherwise. The orders used are total over live
 * entries (they end in a unique id or token), so the sequence of live entries
 * popped depends only on the set of live entries, never on the order they were
 * pushed in or on when dead ones were swept: a model rebuilt from a snapshot
 * pops exactly what a model that never stopped pops (SPEC G2).
 *
 * Dead entries that never reach the top (a lease completed long before it
 * would expire, a heartbeat superseded by the next) would otherwise pile up
 * between ticks, so a push that finds the heap twice as large as after the last
 * sweep sweeps it: amortized O(1) per push, and at most about half the entries
 * are ever dead.
 */
const SWEEP_SIZE_MIN = 1024;

export class BinaryHeap<T> {
  private items: T[] = [];
  private sweepAt = SWEEP_SIZE_MIN;

  /**
   * `first(a, b)` is true when `a` must come out before `b`; `isLive(entry)`
   * says whether an entry still describes the state.
   */
  constructor(
    private readonly first: (a: T, b: T) => boolean,
    private readonly isLive: (entry: T) => boolean,
  ) {}

  /** A heap of `items` (all live), built bottom-up in O(n). */
  static of<T>(items: T[], first: (a: T, b: T) => boolean, isLive: (entry: T) => boolean): BinaryHeap<T> {
    const heap = new BinaryHeap(first, isLive);
    heap.items = items;
    for (let i = (items.length >> 1) - 1; i >= 0; i--) heap.siftDown(i, items[i] as T);
    heap.sweepAt = Math.max(SWEEP_SIZE_MIN, 2 * items.length);
    return heap;
  }

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  /** The first live entry, dropping dead ones above it. */
  peekLive(): T | undefined {
    for (let top = this.items[0]; top !== undefined; top = this.items[0]) {
      if (this.isLive(top)) return top;
      this.pop();
    }
    return undefined;
  }

  push(item: T): void {
    const items = this.items;
    let i = items.length;
    items.push(item);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = items[parent] as T;
      if (!this.first(item, p)) break;
      items[i] = p;
      i = parent;
    }
    items[i] = item;
    if (items.length >= this.sweepAt) this.sweep();
  }

  pop(): T | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length > 0 && last !== undefined) this.siftDown(0, last);
    return top;
  }

  /** Drops every dead entry and re-heapifies (bottom-up, O(n)). */
  private sweep(): void {
    const live = this.items.filter(this.isLive);
    this.items = live;
    for (let i = (live.length >> 1) - 1; i >= 0; i--) this.siftDown(i, live[i] as T);
    this.sweepAt = Math.max(SWEEP_SIZE_MIN, 2 * live.length);
  }

  /** Places `item` at `i` or below, moving smaller children up. */
  private siftDown(start: number, item: T): void {
    const items = this.items;
    const n = items.length;
    let i = start;
    while (true) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      let child = left;
      if (right < n && this.first(items[right] as T, items[left] as T)) child = right;
      const c = items[child] as T;
      if (!this.first(c, item)) break;
      items[i] = c;
      i = child;
    }
    items[i] = item;
  }
}
