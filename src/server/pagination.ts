/**
 * Cursor pagination over id-keyed records (`GET /tasks`, `GET /agents`).
 *
 * Order: ids ascending by UTF-16 code units (JavaScript `<`, the same order
 * canonical JSON sorts keys in), so pages are stable while records come and go.
 * A cursor is opaque to clients: base64url of `{"after": <last id returned>}`;
 * the next page holds the first `limit` matching ids after it. A page is picked
 * with a bounded max-heap of `limit + 1` ids, O(n log limit) per request, never
 * a sort of everything.
 */
import { SwooshError } from "../core/errors.ts";

export const PAGE_LIMIT_DEFAULT = 100;
export const PAGE_LIMIT_MAX = 1000;
/** Bound on a cursor's text (an id is at most 1024 UTF-16 units; base64url of its JSON stays far below). */
const CURSOR_LENGTH_MAX = 16 * 1024;

export function encodeCursor(afterId: string): string {
  return Buffer.from(JSON.stringify({ after: afterId }), "utf8").toString("base64url");
}

/** The id a cursor points after; `bad_request` for anything that is not a cursor this server made. */
export function decodeCursor(cursor: string): string {
  if (cursor.length > CURSOR_LENGTH_MAX || !/^[A-Za-z0-9_-]*$/.test(cursor)) throw badCursor();
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch {
    throw badCursor();
  }
  if (typeof parsed !== "object" || parsed === null || typeof (parsed as { after?: unknown }).after !== "string") throw badCursor();
  return (parsed as { after: string }).after;
}

function badCursor(): SwooshError {
  return new SwooshError("bad_request", "cursor is not one this server returned", { field: "cursor" });
}

/** The `limit` query parameter: an integer 1..PAGE_LIMIT_MAX, default PAGE_LIMIT_DEFAULT. */
export function parseLimit(text: string | undefined, fallback = PAGE_LIMIT_DEFAULT, max = PAGE_LIMIT_MAX): number {
  if (text === undefined) return fallback;
  const value = /^\d{1,7}$/.test(text) ? Number(text) : NaN;
  if (!(value >= 1 && value <= max)) throw new SwooshError("bad_request", `limit must be an integer from 1 to ${max}`, { field: "limit" });
  return value;
}

/**
 * The smallest `limit` ids among `ids` (each > `after` when given), ascending,
 * and whether more matched.
 */
export function firstIds(ids: Iterable<string>, limit: number, after: string | undefined): { ids: string[]; more: boolean } {
  const page = new PageCollector(limit, after);
  for (const id of ids) page.offer(id);
  return page.result();
}

/**
 * `firstIds` fed one id at a time (a scan that pauses between steps). An id
 * offered twice counts once: a captured collection may list an id twice.
 */
export class PageCollector {
  /** Max-heap of the limit + 1 smallest seen so far: the root is the largest kept. */
  private readonly heap: string[] = [];
  private readonly kept = new Set<string>();

  constructor(
    private readonly limit: number,
    private readonly after: string | undefined,
  ) {}

  offer(id: string): void {
    const { heap, kept } = this;
    if (this.after !== undefined && !(id > this.after)) return;
    if (kept.has(id)) return;
    if (heap.length <= this.limit) {
      heap.push(id);
      kept.add(id);
      siftUp(heap, heap.length - 1);
    } else if (id < (heap[0] as string)) {
      kept.delete(heap[0] as string);
      kept.add(id);
      heap[0] = id;
      siftDown(heap, 0);
    }
  }

  result(): { ids: string[]; more: boolean } {
    const sorted = [...this.heap].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const more = sorted.length > this.limit;
    return { ids: more ? sorted.slice(0, this.limit) : sorted, more };
  }
}

function siftUp(heap: string[], i: number): void {
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if ((heap[parent] as string) >= (heap[i] as string)) return;
    [heap[parent], heap[i]] = [heap[i] as string, heap[parent] as string];
    i = parent;
  }
}

function siftDown(heap: string[], i: number): void {
  for (;;) {
    const left = 2 * i + 1;
    const right = left + 1;
    let largest = i;
    if (left < heap.length && (heap[left] as string) > (heap[largest] as string)) largest = left;
    if (right < heap.length && (heap[right] as string) > (heap[largest] as string)) largest = right;
    if (largest === i) return;
    [heap[largest], heap[i]] = [heap[i] as string, heap[largest] as string];
    i = largest;
  }
}
