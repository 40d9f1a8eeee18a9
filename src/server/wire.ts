/**
 * The wire form of a WAL entry, shared by `GET /log` and `GET /watch`:
 * `{index, hlc, type, payload, id?, prevHash, hash}` (SPEC §8), always with its
 * keys in this order, whether it was read back from the log or is being
 * announced live by the engine.
 */
import type { LogEntry } from "../core/log-record.ts";

/** The SPEC §8 entry shape; the wire adds nothing to it, only fixes the key order. */
export type WireEntry = LogEntry;

/** Copies the entry fields of a log entry or an applied event (which also carries its result) in wire order. */
export function toWireEntry(entry: WireEntry): WireEntry {
  return entry.id === undefined
    ? { index: entry.index, hlc: entry.hlc, type: entry.type, payload: entry.payload, prevHash: entry.prevHash, hash: entry.hash }
    : { index: entry.index, hlc: entry.hlc, type: entry.type, payload: entry.payload, id: entry.id, prevHash: entry.prevHash, hash: entry.hash };
}
