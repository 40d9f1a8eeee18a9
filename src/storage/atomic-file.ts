/**
 * Atomic, durable file replacement: write `path.tmp-<n>` → fsync(file) → close →
 * rename over `path` → fsync(directory).
 *
 * Why this order: the file's bytes must be durable before its name points at
 * them (else a crash can leave an empty or torn file under the final name), and
 * the directory fsync must come after the rename, since it is what makes the
 * rename itself durable. Fsyncing the directory before the rename (the seed's
 * order) makes only the temp file's creation durable and the rename may be lost.
 *
 * After a crash the target holds either the complete old or the complete new
 * content; once `writeFileAtomic` resolved, the new content survives. On any
 * error the temp file is removed (best effort) and the error rethrown.
 */
import { posix } from "node:path";
import type { FileSystem } from "./types.ts";

/** One piece of file content, as produced by a serializer. */
export type FilePiece = string | Uint8Array;
export type FilePieces = AsyncIterable<FilePiece> | Iterable<FilePiece>;

/** Pieces are gathered into writes of about this many bytes, so a large file takes few syscalls. */
export const WRITE_BUFFER_BYTES_MAX = 1 << 20;

/** Temp files carry this marker; listings skip any name containing it. */
export const TEMP_MARKER = ".tmp-";

let tempCounter = 0;

/** The temp name a write to `path` uses: unique within this process and across live processes. */
export function tempPathFor(path: string): string {
  tempCounter += 1;
  return `${path}${TEMP_MARKER}${process.pid}-${tempCounter}`;
}

export interface WriteFileAtomicOptions {
  /** Pieces gathered per write (default WRITE_BUFFER_BYTES_MAX). */
  readonly bufferBytesMax?: number;
  /**
   * fsync the temp file each time about this many bytes were written since the
   * last one (default: only at the end). A large file's dirty pages then never
   * pile up: flushed all at once, they hold every other fsync on the disk (the
   * WAL's) behind them for tens of milliseconds.
   */
  readonly syncEveryBytes?: number;
}

export async function writeFileAtomic(fs: FileSystem, path: string, pieces: FilePieces, options: WriteFileAtomicOptions = {}): Promise<void> {
  const bufferBytesMax = options.bufferBytesMax ?? WRITE_BUFFER_BYTES_MAX;
  const dir = posix.dirname(path);
  const temp = tempPathFor(path);
  const handle = await fs.create(temp);
  try {
    await writeBuffered(handle, pieces, bufferBytesMax, options.syncEveryBytes ?? Number.POSITIVE_INFINITY);
    await handle.sync();
  } catch (error) {
    await handle.close().catch(ignore);
    await fs.unlink(temp).catch(ignore);
    throw error;
  }
  try {
    await handle.close();
    await fs.rename(temp, path);
  } catch (error) {
    await fs.unlink(temp).catch(ignore);
    throw error;
  }
  // Not removable any more: the rename happened. If this fsync fails the caller
  // must treat the new content as possibly lost.
  await fs.syncDir(dir);
}

async function writeBuffered(
  handle: { write(data: string | Uint8Array): Promise<void>; sync(): Promise<void> },
  pieces: FilePieces,
  bufferBytesMax: number,
  syncEveryBytes: number,
): Promise<void> {
  let chunks: FilePiece[] = [];
  let unsyncedSize = 0;
  // Counted in UTF-16 units for strings: a lower bound on bytes, good enough to bound syscalls.
  let pendingSize = 0;
  const flush = async (): Promise<void> => {
    if (chunks.length === 0) return;
    const out = chunks.every((chunk) => typeof chunk === "string")
      ? chunks.join("")
      : Buffer.concat(chunks.map((chunk) => (typeof chunk === "string" ? Buffer.from(chunk, "utf8") : chunk)));
    chunks = [];
    unsyncedSize += pendingSize;
    pendingSize = 0;
    await handle.write(out);
    if (unsyncedSize >= syncEveryBytes) {
      unsyncedSize = 0;
      await handle.sync();
    }
  };
  for await (const piece of pieces) {
    chunks.push(piece);
    pendingSize += piece.length;
    if (pendingSize >= bufferBytesMax) await flush();
  }
  await flush();
}

/**
 * Removes the temp files a writer killed mid-write left in `dir` (a crashed
 * snapshot write leaves one as large as the state; a crash loop would pile
 * them up until the disk is full): every name holding TEMP_MARKER, or with
 * `of`, only the temp files of writes to `dir/of`. Only for the one process
 * that writes those files (the data dir's lock holder), before it writes:
 * any such temp file then belongs to a dead writer. The directory is fsynced
 * after a removal, so it does not come back after a power loss. Returns the
 * names removed.
 */
export async function removeTempFiles(fs: FileSystem, dir: string, of?: string): Promise<string[]> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch {
    return [];
  }
  const prefix = of === undefined ? undefined : `${of}${TEMP_MARKER}`;
  const removed: string[] = [];
  for (const name of names) {
    if (prefix === undefined ? !name.includes(TEMP_MARKER) : !name.startsWith(prefix)) continue;
    await fs.unlink(posix.join(dir, name));
    removed.push(name);
  }
  if (removed.length > 0) await fs.syncDir(dir);
  return removed;
}

function ignore(): void {}
