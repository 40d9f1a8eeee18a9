/**
 * The state hash: lowercase hex SHA-256 of the RFC 8785 canonical JSON of a
 * state (SPEC §3). Anyone with JCS and SHA-256 computes the same value.
 */
import { createHash } from "node:crypto";
import { canonicalJSON, canonicalJSONPieces } from "./json.ts";

/** Lowercase hex SHA-256 of a UTF-8 string. */
export function sha256Hex(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex");
}

/** `computeStateHash(state)` = hex SHA-256 of `canonicalJSON(state)`. */
export function computeStateHash(state: unknown): string {
  return sha256Hex(canonicalJSON(state));
}

/**
 * The same hash as `computeStateHash`, fed a slice at a time; `yieldEvery`
 * is awaited between slices so a caller can keep its event loop responsive
 * while a large state is hashed.
 */
export async function computeStateHashSliced(state: unknown, yieldEvery: () => Promise<void>): Promise<string> {
  const hash = createHash("sha256");
  for (const piece of canonicalJSONPieces(state, 1 << 18)) {
    hash.update(piece, "utf8");
    await yieldEvery();
  }
  return hash.digest("hex");
}

/** A 64-hex-digit SHA-256 string. */
export function isSha256Hex(text: unknown): text is string {
  return typeof text === "string" && /^[0-9a-f]{64}$/.test(text);
}
