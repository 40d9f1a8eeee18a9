/**
 * Sorting a large set of ids without one long pause: the ids are read and
 * sorted a chunk at a time, then merged, and the work stops after every
 * bounded step so the caller can let the event loop run (a 100,000-id sort in
 * one go takes ~20 ms here; a chunk of IDS_PER_STEP ~1 ms).
 */

/** Ids read, sorted or merged per step, by default. */
export const IDS_PER_STEP = 4096;

/**
 * Appends the distinct strings of `source` to `out` in ascending UTF-16
 * code-unit order (the order RFC 8785 sorts keys in). Yields "" after every
 * step; `out` is complete when the generator is done. `source` is read a chunk
 * per step, so it may be a live iterator that changes between steps.
 */
export function* sortedUnique(source: Iterator<string>, out: string[], idsPerStep = IDS_PER_STEP): Generator<string> {
  const chunks: string[][] = [];
  for (;;) {
    const chunk: string[] = [];
    let next = source.next();
    for (; next.done !== true && chunk.length < idsPerStep; next = source.next()) chunk.push(next.value);
    if (next.done !== true) chunk.push(next.value);
    // Default sort compares UTF-16 code units.
    if (chunk.length > 0) chunks.push(chunk.sort());
    yield "";
    if (next.done === true) break;
  }
  yield* mergeSorted(chunks, out, idsPerStep);
}

/** K-way merge of sorted chunks into `out`, dropping repeats; yields "" every `idsPerStep` ids. */
function* mergeSorted(chunks: string[][], out: string[], idsPerStep: number): Generator<string> {
  // A binary min-heap of chunk numbers, ordered by each chunk's current head.
  const positions = new Array<number>(chunks.length).fill(0);
  const heap: number[] = [];
  const head = (c: number): string => (chunks[c] as string[])[positions[c] as number] as string;
  const less = (a: number, b: number): boolean => head(a) < head(b);
  const siftDown = (from: number): void => {
    let i = from;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let smallest = i;
      if (left < heap.length && less(heap[left] as number, heap[smallest] as number)) smallest = left;
      if (right < heap.length && less(heap[right] as number, heap[smallest] as number)) smallest = right;
      if (smallest === i) return;
      [heap[i], heap[smallest]] = [heap[smallest] as number, heap[i] as number];
      i = smallest;
    }
  };
  for (let c = 0; c < chunks.length; c++) heap.push(c);
  for (let i = (heap.length >> 1) - 1; i >= 0; i--) siftDown(i);
  let sinceYield = 0;
  while (heap.length > 0) {
    const c = heap[0] as number;
    const id = head(c);
    if (out.length === 0 || out[out.length - 1] !== id) out.push(id);
    positions[c] = (positions[c] as number) + 1;
    if ((positions[c] as number) >= (chunks[c] as string[]).length) {
      heap[0] = heap[heap.length - 1] as number;
      heap.pop();
    }
    if (heap.length > 0) siftDown(0);
    if (++sinceYield >= idsPerStep) {
      sinceYield = 0;
      yield "";
    }
  }
}
