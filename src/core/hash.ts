/**
 * The state hash: lowercase hex SHA-256 of the RFC 8785 canonical JSON of a
 * state (SPEC §3). Anyone with JCS and SHA-256 computes the same value.
 */
import { hash } from "node:crypto";
import { canonicalJSON } from "./json.ts";

/** Lowercase hex SHA-256 of a UTF-8 string. */
export function sha256Hex(text: string): string {
  // One-shot crypto.hash (Node >= 20.12): no Hash object per call, which
  // matters at one call per WAL entry on replay.
  return hash("sha256", text, "hex");
}

/** `computeStateHash(state)` = hex SHA-256 of `canonicalJSON(state)`. */
export function computeStateHash(state: unknown): string {
  return sha256Hex(canonicalJSON(state));
}

/** A 64-hex-digit SHA-256 string. */
export function isSha256Hex(text: unknown): text is string {
  return typeof text === "string" && /^[0-9a-f]{64}$/.test(text);
}
