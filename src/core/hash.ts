/**
 * The state hash: lowercase hex SHA-256 of the RFC 8785 canonical JSON of a
 * state (SPEC §3). Anyone with JCS and SHA-256 computes the same value.
 */
import { hash } from "node:crypto";
import { canonicalJSON } from "./json.ts";
import { RecordTextCache } from "./record-text-cache.ts";

/** Lowercase hex SHA-256 of a UTF-8 string. */
export function sha256Hex(text: string): string {
  // One-shot crypto.hash (Node >= 20.12): no Hash object per call, which
  // matters at one call per WAL entry on replay.
  return hash("sha256", text, "hex");
}

/**
 * `computeStateHash(state)` = hex SHA-256 of `canonicalJSON(state)`. The text
 * is streamed into the hash a record at a time rather than built whole first
 * (same bytes, less copying for a large state).
 */
export function computeStateHash(state: unknown): string {
  if (typeof state !== "object" || state === null) return sha256Hex(canonicalJSON(state));
  return new RecordTextCache({ remember: false }).stateHash(state);
}

/** A 64-hex-digit SHA-256 string. */
export function isSha256Hex(text: unknown): text is string {
  return typeof text === "string" && /^[0-9a-f]{64}$/.test(text);
}
