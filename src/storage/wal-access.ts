/**
 * Whether this process may use the files of a WAL directory, asked before
 * LMDB opens them. lmdb-js turns a refused open into "Permission denied:
 * Attempting to open main database file", or (a lock file it may not write)
 * into a SIGSEGV while cleaning up, and the probe (lmdb-probe.ts) would report
 * either as a damaged file: an operator would restore a backup over a healthy
 * WAL. A refusal found here is reported as what it is (`LogAccessError`).
 */
import { accessSync, constants, existsSync } from "node:fs";
import { basename, join } from "node:path";
import { LogAccessError, isAccessRefusal } from "./errors.ts";
import type { AccessRefusalCode } from "./errors.ts";

/** The LMDB files of an environment directory, in the order LMDB opens them. */
const LMDB_FILES = ["lock.mdb", "data.mdb"] as const;

/**
 * The first refusal among `dir` and its LMDB files that exist, for a log
 * opened to read only or to read and write; null when there is none (or the
 * directory is not there yet: creating it reports its own error). Root passes
 * any mode bits, but not a read-only mount (EROFS).
 */
export function walAccessRefusal(dir: string, readOnly: boolean): LogAccessError | null {
  if (!existsSync(dir)) return null;
  const needs = readOnly ? "read" : "read and write";
  const fileMode = readOnly ? constants.R_OK : constants.R_OK | constants.W_OK;
  const present = LMDB_FILES.map((name) => join(dir, name)).filter((file) => existsSync(file));
  // A read-write open creates the files that are missing, which takes a writable directory.
  const dirMode = constants.R_OK | constants.X_OK | (!readOnly && present.length < LMDB_FILES.length ? constants.W_OK : 0);
  // A read-only open does not need lock.mdb: LMDB reads without its locks where it may not write them.
  const needed = readOnly ? present.filter((file) => basename(file) !== "lock.mdb") : present;
  for (const [path, mode] of [[dir, dirMode], ...needed.map((file) => [file, fileMode] as const)] as const) {
    const refusal = accessRefusal(path, mode);
    if (refusal !== null) return new LogAccessError(dir, path, refusal.code, needs, `${path === dir ? "the directory" : basename(path)}: ${refusal.reason}`);
  }
  return null;
}

/** Why `access(path, mode)` fails, when it fails with a refusal (any other error is left to the open that follows). */
function accessRefusal(path: string, mode: number): { code: AccessRefusalCode; reason: string } | null {
  try {
    accessSync(path, mode);
    return null;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (!isAccessRefusal(code)) return null;
    return { code, reason: code === "EROFS" ? "on a read-only file system" : "permission denied" };
  }
}
