/**
 * WAL entries and their hash chain (SPEC §8).
 *
 * An entry is `{index, hlc, type, payload, id?, prevHash, hash}` with
 * `hash = SHA-256(prevHash + canonicalJSON(entry without hash))`. The chain is
 * anchored at index 0 by the genesis state hash, so a log cannot be replayed
 * against another genesis.
 *
 * A log stores each entry as a `LogRecord`: its index, its hash and its `body`,
 * the canonical JSON of the entry without `hash`. Verifying a record is then one
 * SHA-256 over bytes already at hand, with no re-serialization.
 */
import { hash as oneShotHash } from "node:crypto";
import { sha256Hex } from "./hash.ts";
import { canonicalJSON } from "./json.ts";
import type { JsonValue } from "./json.ts";

export interface LogEntry {
  readonly index: number;
  readonly hlc: string;
  readonly type: string;
  readonly payload: JsonValue;
  readonly id?: string;
  readonly prevHash: string;
  readonly hash: string;
}

export interface LogRecord {
  readonly index: number;
  readonly hash: string;
  /** canonicalJSON of the entry without `hash`. */
  readonly body: string;
  /**
   * `hash + body` as UTF-8 (what a log stores), when the writer has it
   * already (`sealBytes`); a log encodes the strings itself otherwise.
   */
  readonly bytes?: Uint8Array | undefined;
}

export interface UnsealedEntry {
  readonly index: number;
  readonly hlc: string;
  readonly type: string;
  readonly payload: JsonValue;
  readonly id?: string | undefined;
}

/** Builds the record for `entry`, chained after `prevHash`. */
export function sealEntry(entry: UnsealedEntry, prevHash: string): LogRecord {
  return sealEntryText(entry.index, entry.hlc, entry.type, canonicalJSON(entry.payload), entry.id, prevHash);
}

/**
 * `sealEntry` for a payload already in canonical form (the engine has it from
 * validation). `hlc` must be an encoded HLC and `prevHash` a hex hash (their
 * characters need no escaping in JSON). Writes the body's keys in their
 * canonical order (hlc < id < index < payload < prevHash < type) so that no
 * second serialization of the payload is needed; a test holds it equal to
 * `canonicalJSON` of the entry.
 */
export function sealEntryText(index: number, hlc: string, type: string, payloadText: string, id: string | undefined, prevHash: string): LogRecord {
  const body = entryBody(index, hlc, type, payloadText, id, prevHash);
  return { index, hash: chainHash(prevHash, body), body };
}

/** The body of `sealEntryText` (same preconditions). */
export function entryBody(index: number, hlc: string, type: string, payloadText: string, id: string | undefined, prevHash: string): string {
  return (
    `{"hlc":"${hlc}"` +
    (id === undefined ? "" : `,"id":${quoteJson(id)}`) +
    `,"index":${index},"payload":${payloadText},"prevHash":"${prevHash}","type":${quoteJson(type)}}`
  );
}

/** A record's hash: SHA-256 of the previous hash followed by its body. */
export function chainHash(prevHash: string, body: string): string {
  return sha256Hex(prevHash + body);
}

/** Characters (and UTF-8 bytes) of a hex SHA-256. */
const HASH_HEX_CHARS = 64;

/**
 * `chainHash(prevHash, body)` and the record's stored bytes (`hash + body` as
 * UTF-8) from one encoding of the body: `prevHash + body` is encoded once,
 * hashed as it is, and its first 64 bytes (the previous hash) overwritten
 * with the new one. Hashing the string and then encoding `hash + body` for
 * the log encoded every body twice (each a flattening and a UTF-8 pass), a
 * tenth of the write path's CPU. `prevHash` must be a hex hash.
 */
export function sealBytes(prevHash: string, body: string): { readonly hash: string; readonly bytes: Buffer } {
  const bytes = Buffer.from(prevHash + body, "utf8");
  const hash = oneShotHash("sha256", bytes, "hex");
  bytes.write(hash, 0, HASH_HEX_CHARS, "latin1");
  return { hash, bytes };
}

/**
 * JSON.stringify of a well-formed string: quotes around it as it is when no
 * character needs an escape (the usual id or type; about four times cheaper
 * than JSON.stringify), JSON.stringify's own answer otherwise.
 */
export function quoteJson(text: string): string {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) return JSON.stringify(text);
  }
  return `"${text}"`;
}

export type OpenedRecord = { readonly entry: LogEntry; readonly problem?: undefined } | { readonly entry?: undefined; readonly problem: string };

/**
 * Verifies that `record` continues the chain at `expectedIndex` after
 * `prevHash` and returns its entry, or says what is wrong with it.
 * `hashChecked`: its hash is known to be SHA-256 of `prevHash` and its body
 * already (see `CommandLog.chainCheckedThrough`), so it is not computed again.
 */
export function openRecord(record: LogRecord, expectedIndex: number, prevHash: string, hashChecked = false): OpenedRecord {
  if (record.index !== expectedIndex) return { problem: `expected index ${expectedIndex}, found ${record.index}` };
  if (!hashChecked) {
    const actual = chainHash(prevHash, record.body);
    if (actual !== record.hash) return { problem: `hash mismatch: stored ${record.hash}, computed ${actual}` };
  }
  let entry: LogEntry;
  try {
    entry = parseRecord(record);
  } catch {
    return { problem: "body is not JSON" };
  }
  // The body repeats index and prevHash; a record spliced from elsewhere fails here.
  if (entry.index !== expectedIndex) return { problem: `body names index ${entry.index}` };
  if (entry.prevHash !== prevHash) return { problem: `body names prevHash ${entry.prevHash}, chain has ${prevHash}` };
  return { entry };
}

/** The SPEC entry held by a record (not verified: see `openRecord`). */
export function parseRecord(record: LogRecord): LogEntry {
  // The parsed object is fresh: adding the hash to it avoids a copy per entry.
  const entry = JSON.parse(record.body) as { hash?: string };
  entry.hash = record.hash;
  return entry as LogEntry;
}
