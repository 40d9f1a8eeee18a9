/**
 * Genesis documents (SPEC §4): `{clusterId, genesisTime, state, stateHash}`
 * with `stateHash = computeStateHash(state)`. A data directory is bound to the
 * genesis it was initialized with; the WAL's hash chain is anchored at it.
 */
import { SwooshError } from "../core/errors.ts";
import { computeStateHash, isSha256Hex } from "../core/hash.ts";
import { JsonValueError, assertJsonValue } from "../core/json.ts";
import type { JsonObject } from "../core/json.ts";

export interface GenesisDocument {
  readonly clusterId: string;
  /** ISO-8601 UTC time the cluster was created (informational; not read by the reducer). */
  readonly genesisTime: string;
  readonly state: JsonObject;
  readonly stateHash: string;
}

export function createGenesis(clusterId: string, state: JsonObject, genesisTime: string): GenesisDocument {
  return { clusterId, genesisTime, state, stateHash: computeStateHash(state) };
}

/**
 * Checks the shape and the hash of a genesis document from outside. Throws
 * `bad_request` for a malformed one and `genesis_hash_mismatch` when the hash
 * does not match the state.
 */
export function checkGenesis(input: unknown): GenesisDocument {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    throw new SwooshError("bad_request", "genesis must be a JSON object");
  }
  const doc = input as Record<string, unknown>;
  const allowed = new Set(["clusterId", "genesisTime", "state", "stateHash"]);
  for (const key of Object.keys(doc)) {
    if (!allowed.has(key)) throw new SwooshError("bad_request", `genesis has an unknown field ${JSON.stringify(key)}`, { field: key });
  }
  if (typeof doc.clusterId !== "string" || doc.clusterId.length === 0 || doc.clusterId.length > 256) {
    throw new SwooshError("bad_request", "genesis.clusterId must be a non-empty string of at most 256 characters", { field: "clusterId" });
  }
  if (typeof doc.genesisTime !== "string" || Number.isNaN(Date.parse(doc.genesisTime))) {
    throw new SwooshError("bad_request", "genesis.genesisTime must be an ISO-8601 time", { field: "genesisTime" });
  }
  if (typeof doc.state !== "object" || doc.state === null || Array.isArray(doc.state)) {
    throw new SwooshError("bad_request", "genesis.state must be a JSON object", { field: "state" });
  }
  try {
    assertJsonValue(doc.state);
  } catch (error) {
    if (error instanceof JsonValueError) throw new SwooshError("bad_request", `genesis.state${error.path}: ${error.reason}`, { field: `state${error.path}` });
    throw error;
  }
  if (!isSha256Hex(doc.stateHash)) {
    throw new SwooshError("bad_request", "genesis.stateHash must be 64 lowercase hex digits", { field: "stateHash" });
  }
  const actual = computeStateHash(doc.state);
  if (actual !== doc.stateHash) {
    throw new SwooshError("genesis_hash_mismatch", `genesis stateHash ${doc.stateHash} does not match its state (${actual})`, {
      expected: doc.stateHash,
      actual,
    });
  }
  const state = doc.state as JsonObject;
  if ("clusterId" in state && state.clusterId !== doc.clusterId) {
    throw new SwooshError("bad_request", "genesis.clusterId differs from state.clusterId", { field: "clusterId" });
  }
  return { clusterId: doc.clusterId, genesisTime: doc.genesisTime, state, stateHash: doc.stateHash };
}

/**
 * A fresh copy of the genesis state for a model to start from: `restore` may
 * take ownership of what it is given, and the document must stay pristine
 * (it anchors recovery, time travel and verify alike).
 */
export function genesisStateCopy(genesis: GenesisDocument): JsonObject {
  return structuredClone(genesis.state);
}

/** Two genesis documents that initialize the same cluster. */
export function sameGenesis(a: GenesisDocument, b: GenesisDocument): boolean {
  return a.clusterId === b.clusterId && a.genesisTime === b.genesisTime && a.stateHash === b.stateHash;
}
