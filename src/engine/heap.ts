/**
 * How full the heap is, in the terms that decide whether the process lives:
 * the old generation's live size against its limit. The whole state lives in
 * the heap; the process dies when the old generation passes its limit (V8
 * gives up from 80% once full GCs stop freeing memory), which is V8's
 * `heap_size_limit` less the young generation's reserve (three semi-spaces:
 * 48 MiB at Node's default `--max-semi-space-size` of 16 MiB): with
 * `--max-old-space-size=64` the reported limit is 112 MiB and the process
 * dies by ~63 MiB used.
 */
import v8 from "node:v8";

export interface HeapFigures {
  /** The old generation's used bytes (right after a full GC: what is live). */
  readonly usedBytes: number;
  /** The old generation's limit (`--max-old-space-size`). */
  readonly limitBytes: number;
}

const MIB = 1024 * 1024;

/** `bytes` in whole MiB, as the heap messages give them. */
export function mib(bytes: number): number {
  return Math.round(bytes / MIB);
}
/** V8's default largest semi-space on 64-bit Node, in MiB. */
const SEMI_SPACE_MAX_MIB_DEFAULT = 16;

/** The `--max-semi-space-size` (MiB) this process runs with: the last one in NODE_OPTIONS or its own flags, else the default. */
export function semiSpaceMaxMiB(execArgv: readonly string[] = process.execArgv, nodeOptions = process.env.NODE_OPTIONS ?? ""): number {
  let mib = SEMI_SPACE_MAX_MIB_DEFAULT;
  // Node applies NODE_OPTIONS first and the command line's flags after them.
  for (const flag of [...nodeOptions.split(/\s+/), ...execArgv]) {
    const match = /^--max[-_]semi[-_]space[-_]size=(\d+)$/.exec(flag);
    if (match) mib = Number(match[1]);
  }
  return mib;
}

const semiSpaceMibOfProcess = semiSpaceMaxMiB();

/** The old generation's used size and the size past which the process dies. */
export function heapFigures(semiSpaceMib = semiSpaceMibOfProcess): HeapFigures {
  const stats = v8.getHeapStatistics();
  let youngUsed = 0;
  for (const space of v8.getHeapSpaceStatistics()) if (space.space_name.startsWith("new_")) youngUsed += space.space_used_size;
  return { usedBytes: stats.used_heap_size - youngUsed, limitBytes: stats.heap_size_limit - 3 * semiSpaceMib * MIB };
}
