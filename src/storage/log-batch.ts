/**
 * The rules every `CommandLog.append` checks before writing (one source for the
 * memory, LMDB and future etcd logs): each record is well formed, and indexes
 * run consecutively from the log's next index. Also the argument checks of
 * `read` and `follow`.
 *
 * A malformed record is a programmer error (TypeError); a wrong index is an
 * operating error (`LogConflictError`, nothing written).
 */
import type { LogRecord } from "../core/log-record.ts";
import { LogConflictError } from "./errors.ts";

/** Length of a record hash: hex SHA-256. Stores may rely on it to split hash from body. */
export const RECORD_HASH_CHARS = 64;

/** Throws unless `records` are well formed and numbered `nextIndex, nextIndex + 1, …`. */
export function checkAppendBatch(records: readonly LogRecord[], nextIndex: number, file: string): void {
  for (let i = 0; i < records.length; i++) {
    const record = records[i] as LogRecord;
    if (!Number.isSafeInteger(record.index) || record.index < 1) throw new TypeError(`log record index ${String(record.index)} is not a positive integer`);
    // Length only: stores split hash from body at RECORD_HASH_CHARS; the content is checked by the chain on every read.
    if (typeof record.hash !== "string" || record.hash.length !== RECORD_HASH_CHARS) throw new TypeError(`log record ${record.index}: hash is not ${RECORD_HASH_CHARS} characters`);
    if (typeof record.body !== "string") throw new TypeError(`log record ${record.index}: body is not a string`);
    if (record.index !== nextIndex + i) throw new LogConflictError(nextIndex + i, record.index, file);
  }
}

/** Throws a RangeError unless `from` is a usable argument of `follow`: a first index to yield, so 1 or more. */
export function checkFollowFrom(from: number): void {
  if (!Number.isSafeInteger(from) || from < 1) throw new RangeError(`follow from ${from}: not a positive integer`);
}

/** Throws a RangeError unless `from` and `limit` are usable arguments of `read`. */
export function checkReadRange(from: number, limit: number): void {
  if (!Number.isSafeInteger(from) || from < 0) throw new RangeError(`read from ${from}: not a non-negative integer`);
  if (!Number.isSafeInteger(limit) || limit < 0) throw new RangeError(`read limit ${limit}: not a non-negative integer`);
}
