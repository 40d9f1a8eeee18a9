/**
 * Snapshot files in one directory (SPEC §8), one per snapshot:
 *
 *     snapshot-<lastAppliedIndex, zero-padded to 20 digits>.json
 *
 * holding one JSON object, written in this field order so the state can be
 * streamed and hashed on the way to disk:
 *
 *     {"formatVersion":2,"clusterId":…,"genesisStateHash":…,"genesisTime":…,
 *      "lastAppliedIndex":…,"lastAppliedHlc":…,"logHash":…,"outcomes":…,
 *      "state":<canonical JSON>,"stateHash":…,"metaHash":…}
 *
 * `stateHash = computeStateHash(state)`; `metaHash` = hex SHA-256 of the
 * canonical JSON of every field except `state` and `metaHash` (so it covers
 * `stateHash`, and through it the state, and the genesis fields).
 * `genesisStateHash` and `genesisTime` name the genesis the snapshot descends
 * from (recovery and verify compare them with genesis.json). Files of
 * formatVersion 1, written before those two fields, are the same without
 * them: they still load, and their metaHash covers what they hold.
 *
 * Files are written with `writeFileAtomic` (temp → fsync → rename → fsync
 * dir); temp files and any other name are ignored by `list`.
 *
 * `load` re-verifies everything (a pair assertion with `save`) and throws
 * `SnapshotCorruptError` naming the file, the index, and the stored
 * ("expected") and recomputed ("actual") hash; for a whole snapshot of
 * another cluster, `SnapshotOtherClusterError` (one, holding the document).
 */
import { createHash } from "node:crypto";
import { posix } from "node:path";
import { computeStateHash } from "../core/hash.ts";
import { canonicalJSON } from "../core/json.ts";
import { JSON_PART_BYTES_MAX, STRING_LENGTH_MAX, objectMembers, parseJsonBytes } from "../core/json-split.ts";
import type { MemberRange } from "../core/json-split.ts";
import type { JsonValue } from "../core/json.ts";
import { writeFileAtomic } from "./atomic-file.ts";
import type { FilePiece } from "./atomic-file.ts";
import { SnapshotCorruptError, SnapshotOtherClusterError } from "./errors.ts";
import type { FileSystem, JsonRows, SavedSnapshot, SnapshotDocument, SnapshotHeader, SnapshotStore } from "./types.ts";

/** The format `save` writes; `load` reads it and formatVersion 1 (no genesis fields). */
export const SNAPSHOT_FORMAT_VERSION = 2 as const;
/** The format before the genesis fields. */
const SNAPSHOT_FORMAT_VERSION_NO_GENESIS = 1;
const INDEX_DIGITS = 20;
const NAME_PATTERN = /^snapshot-(\d{20})\.json$/;

/** `snapshot-00000000000000000042.json` for index 42. */
export function snapshotFileName(lastAppliedIndex: number): string {
  return `snapshot-${String(lastAppliedIndex).padStart(INDEX_DIGITS, "0")}.json`;
}

/** Snapshot file writes gather about this much (see `save`). */
const SNAPSHOT_WRITE_BYTES = 1 << 18;
/**
 * A snapshot being written is fsynced every this many bytes (see `save`):
 * each write is then flushed on its own, and a WAL fdatasync behind one waits
 * for 256 KiB at most. Measured at 2,000 commands/s over HTTP (two snapshots
 * in the 12 s), p99 medians of 4 interleaved runs: 1 MiB 10.4 ms, 256 KiB
 * 8.6 ms, 64 KiB 8.2 ms (no snapshots: ~6 ms); 64-connection throughput
 * unchanged (3 pairs: 11,992 vs 12,781/s).
 */
const SNAPSHOT_SYNC_BYTES = 1 << 18;

/** Outcome rows serialized per step of a snapshot write (a fraction of a millisecond each). */
const OUTCOME_ROWS_PER_STEP = 1024;

/**
 * The hash that seals a snapshot's header: hex SHA-256 of the canonical JSON
 * of every field but `state` and `metaHash`.
 */
export function computeMetaHash(fields: Omit<SnapshotDocument, "state" | "metaHash">, outcomesText = canonicalJSON(fields.outcomes)): string {
  const hash = createHash("sha256");
  hash.update(metaTextBefore(fields), "utf8");
  hash.update(outcomesText, "utf8");
  hash.update(metaTextAfter(fields.stateHash), "utf8");
  return hash.digest("hex");
}

/**
 * `computeMetaHash` with the outcome rows fed as `save` writes them
 * (`outcomePieces`, a step of rows at a time): the rows may hold results with
 * payloads, and 100,000 of them can pass V8's longest string, which one
 * canonicalJSON of them all would throw on.
 */
async function metaHashByPieces(fields: Omit<SnapshotDocument, "state" | "metaHash">): Promise<string> {
  const hash = createHash("sha256");
  hash.update(metaTextBefore(fields), "utf8");
  for await (const piece of outcomePieces(fields.outcomes)) hash.update(piece, "utf8");
  hash.update(metaTextAfter(fields.stateHash), "utf8");
  return hash.digest("hex");
}

/** The header fields the meta hash and the file head are made of (a formatVersion 1 file has no genesis fields). */
type HeadFields = Pick<SnapshotDocument, "formatVersion" | "clusterId" | "genesisStateHash" | "genesisTime" | "lastAppliedHlc" | "lastAppliedIndex" | "logHash">;

/** `"genesisStateHash":…,"genesisTime":…,` of a file that has them (formatVersion 2), else "" (canonical order and file order agree). */
function genesisText(fields: HeadFields): string {
  if (fields.formatVersion === SNAPSHOT_FORMAT_VERSION_NO_GENESIS) return "";
  return `"genesisStateHash":${canonicalJSON(fields.genesisStateHash)},"genesisTime":${canonicalJSON(fields.genesisTime)},`;
}

/** How a snapshot file begins, up to its outcome rows (the field order of the file, not the canonical one of the meta hash). */
function fileHead(fields: HeadFields): string {
  return (
    `{"formatVersion":${fields.formatVersion},"clusterId":${canonicalJSON(fields.clusterId)},${genesisText(fields)}` +
    `"lastAppliedIndex":${canonicalJSON(fields.lastAppliedIndex)},"lastAppliedHlc":${canonicalJSON(fields.lastAppliedHlc)},` +
    `"logHash":${canonicalJSON(fields.logHash)},"outcomes":`
  );
}

/** How a snapshot file ends, after its state. */
function fileTail(stateHash: string, metaHash: string): string {
  return `,"stateHash":"${stateHash}","metaHash":"${metaHash}"}\n`;
}

/**
 * The bytes of the state member in a snapshot file laid out exactly as
 * `save` writes it (head, outcome rows, state, tail), or null for any other
 * layout. Those bytes are the canonical text `save` hashed, so hashing them
 * checks the state at a tenth of the cost of serializing the parsed state
 * again; for any other layout `load` serializes (and accepts the same files).
 */
function stateBytesOf(bytes: Buffer, text: string, doc: SnapshotDocument, outcomesText: string): Buffer | null {
  // Compared on the decoded text, part by part: the outcome rows (megabytes) are neither concatenated nor encoded again.
  const parts = [fileHead(doc), outcomesText, `,"state":`];
  let at = 0;
  let headBytes = 0;
  for (const part of parts) {
    if (!text.startsWith(part, at)) return null;
    at += part.length;
    headBytes += Buffer.byteLength(part, "utf8");
  }
  const tail = fileTail(doc.stateHash, doc.metaHash);
  if (text.length < at + tail.length || !text.endsWith(tail)) return null;
  return bytes.subarray(headBytes, bytes.length - Buffer.byteLength(tail, "utf8"));
}

// The canonical JSON of the meta object, split around `outcomes` so that a
// writer can hash the outcome rows it streams instead of serializing them twice.
// Keys in canonical order: clusterId, formatVersion, genesisStateHash,
// genesisTime (formatVersion 2), lastAppliedHlc, lastAppliedIndex, logHash,
// outcomes, stateHash.
function metaTextBefore(fields: HeadFields): string {
  return (
    `{"clusterId":${canonicalJSON(fields.clusterId)},"formatVersion":${canonicalJSON(fields.formatVersion)},${genesisText(fields)}` +
    `"lastAppliedHlc":${canonicalJSON(fields.lastAppliedHlc)},"lastAppliedIndex":${canonicalJSON(fields.lastAppliedIndex)},` +
    `"logHash":${canonicalJSON(fields.logHash)},"outcomes":`
  );
}

function metaTextAfter(stateHash: string): string {
  return `,"stateHash":${canonicalJSON(stateHash)}}`;
}

/**
 * `canonicalJSON(outcomes)` in pieces of OUTCOME_ROWS_PER_STEP rows (100,000
 * rows in one go would stall the event loop for tens of milliseconds).
 */
async function* outcomePieces(outcomes: JsonValue | JsonRows): AsyncGenerator<string> {
  const rows = isJsonRows(outcomes) ? outcomes : Array.isArray(outcomes) ? { length: outcomes.length, row: (i: number) => outcomes[i] as JsonValue } : null;
  if (rows === null) {
    yield canonicalJSON(outcomes);
    return;
  }
  if (rows.length === 0) {
    yield "[]";
    return;
  }
  for (let start = 0; start < rows.length; start += OUTCOME_ROWS_PER_STEP) {
    const end = Math.min(start + OUTCOME_ROWS_PER_STEP, rows.length);
    let text = start === 0 ? "[" : ",";
    for (let i = start; i < end; i++) text += (i > start ? "," : "") + canonicalJSON(rows.row(i));
    yield end === rows.length ? text + "]" : text;
    if (end < rows.length) await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

function isJsonRows(value: JsonValue | JsonRows): value is JsonRows {
  return typeof value === "object" && value !== null && typeof (value as { row?: unknown }).row === "function";
}

export interface FileSnapshotStoreOptions {
  /** When given, `save` refuses and `load` reports a snapshot of any other cluster. */
  readonly clusterId?: string;
  /** Files up to this many bytes are parsed as one string, larger ones in parts of at most this many bytes (and of JSON_PART_BYTES_MAX); default SNAPSHOT_WHOLE_TEXT_BYTES_MAX. */
  readonly wholeTextBytesMax?: number;
}

/**
 * A snapshot file of up to V8's longest string in bytes (UTF-8 has at least
 * one byte per character) is read as one string and parsed by one
 * `JSON.parse`, the fastest way; a larger one is parsed in parts
 * (`readSplit`), about 1.5 times slower (measured on a 325 MB file of 900,000
 * tasks: 4.0 s whole, 6.1–6.7 s in parts), which is why parts are only for
 * what cannot be read whole.
 */
export const SNAPSHOT_WHOLE_TEXT_BYTES_MAX = STRING_LENGTH_MAX;

export class FileSnapshotStore implements SnapshotStore {
  private readonly clusterId: string | undefined;
  private readonly wholeTextBytesMax: number;
  private dirReady: Promise<void> | undefined;

  constructor(
    private readonly fs: FileSystem,
    readonly dir: string,
    options: FileSnapshotStoreOptions = {},
  ) {
    this.clusterId = options.clusterId;
    this.wholeTextBytesMax = options.wholeTextBytesMax ?? SNAPSHOT_WHOLE_TEXT_BYTES_MAX;
  }

  /** Full path of the file for `lastAppliedIndex`. */
  pathFor(lastAppliedIndex: number): string {
    return posix.join(this.dir, snapshotFileName(lastAppliedIndex));
  }

  async list(): Promise<number[]> {
    let names: string[];
    try {
      names = await this.fs.readdir(this.dir);
    } catch (error) {
      if (errorCode(error) === "ENOENT") return [];
      throw error;
    }
    const indexes: number[] = [];
    for (const name of names) {
      const match = NAME_PATTERN.exec(name);
      const index = match === null ? NaN : Number(match[1]);
      // Past 2^53 the name's digits do not survive as a number (it would name another file): not a name this store writes.
      if (Number.isSafeInteger(index)) indexes.push(index);
    }
    return indexes.sort((a, b) => b - a);
  }

  async save(header: SnapshotHeader, statePieces: AsyncIterable<string> | Iterable<string>): Promise<SavedSnapshot> {
    if (!Number.isSafeInteger(header.lastAppliedIndex) || header.lastAppliedIndex < 0) {
      throw new RangeError(`snapshot index ${header.lastAppliedIndex} is not a non-negative safe integer`);
    }
    if (this.clusterId !== undefined && header.clusterId !== this.clusterId) {
      throw new Error(`snapshot for cluster ${JSON.stringify(header.clusterId)} refused by the store of cluster ${JSON.stringify(this.clusterId)}`);
    }
    if (typeof header.genesisStateHash !== "string" || typeof header.genesisTime !== "string") {
      throw new TypeError("a snapshot header names its genesis (genesisStateHash and genesisTime)");
    }
    await this.ensureDir();
    const path = this.pathFor(header.lastAppliedIndex);
    let stateHash = "";
    let fileBytes = 0;
    async function* pieces(): AsyncGenerator<FilePiece> {
      const meta = { ...header, formatVersion: SNAPSHOT_FORMAT_VERSION } as const;
      const metaHash = createHash("sha256");
      metaHash.update(metaTextBefore(meta), "utf8");
      const head = fileHead(meta);
      fileBytes += Buffer.byteLength(head);
      yield head;
      for await (const piece of outcomePieces(header.outcomes)) {
        const bytes = Buffer.from(piece, "utf8");
        metaHash.update(bytes);
        fileBytes += bytes.length;
        yield bytes;
      }
      const stateKey = `,"state":`;
      fileBytes += stateKey.length;
      yield stateKey;
      const hash = createHash("sha256");
      let stateChars = 0;
      for await (const piece of statePieces) {
        // Encoded to UTF-8 once, for the hash and the file alike (given the
        // string, each encoded it on its own: a tenth of a snapshot's CPU).
        const bytes = Buffer.from(piece, "utf8");
        hash.update(bytes);
        stateChars += piece.length;
        fileBytes += bytes.length;
        yield bytes;
      }
      // Thrown before the rename: the temp file is removed and nothing is published.
      if (stateChars === 0) throw new Error(`snapshot ${path}: the state pieces were empty`);
      stateHash = hash.digest("hex");
      metaHash.update(metaTextAfter(stateHash), "utf8");
      const tail = fileTail(stateHash, metaHash.digest("hex"));
      fileBytes += Buffer.byteLength(tail);
      yield tail;
    }
    // Small writes: a megabyte of pieces held for one write outlives young-generation GCs and makes them slow.
    // Synced as it goes: the WAL's fdatasyncs never wait behind a whole snapshot's dirty pages.
    await writeFileAtomic(this.fs, path, pieces(), { bufferBytesMax: SNAPSHOT_WRITE_BYTES, syncEveryBytes: SNAPSHOT_SYNC_BYTES });
    return { stateHash, fileBytes };
  }

  async load(lastAppliedIndex: number): Promise<SnapshotDocument> {
    const file = this.pathFor(lastAppliedIndex);
    const corrupt = (detail: string, hashes?: { expectedHash: string; actualHash: string }): SnapshotCorruptError =>
      new SnapshotCorruptError(file, lastAppliedIndex, detail, hashes);
    // A missing file is not corruption: its ENOENT propagates as is.
    const bytes = await this.fs.readFile(file);
    const read = bytes.length <= this.wholeTextBytesMax ? readWhole(bytes, corrupt) : readSplit(bytes, Math.min(this.wholeTextBytesMax, JSON_PART_BYTES_MAX), corrupt);
    const { doc } = read;
    let metaHash: string;
    try {
      metaHash = await read.metaHash();
    } catch (error) {
      throw corrupt(`header is not hashable JSON: ${(error as Error).message}`);
    }
    if (metaHash !== doc.metaHash) throw corrupt("metaHash does not match the header", { expectedHash: doc.metaHash, actualHash: metaHash });
    // Another cluster's snapshot is named as such first: that is the operator's real problem, whatever its index.
    if (this.clusterId !== undefined && doc.clusterId !== this.clusterId) {
      const detail = `belongs to cluster ${JSON.stringify(doc.clusterId)}, expected ${JSON.stringify(this.clusterId)}`;
      // Whole, it goes with its document: the caller tells one of its own history (genesis.json replaced) from a stranger.
      try {
        checkBody(read, lastAppliedIndex, corrupt);
      } catch {
        throw corrupt(detail);
      }
      throw new SnapshotOtherClusterError(file, lastAppliedIndex, detail, doc);
    }
    checkBody(read, lastAppliedIndex, corrupt);
    return doc;
  }

  fileBytes(lastAppliedIndex: number): Promise<number> {
    return this.fs.fileSize(this.pathFor(lastAppliedIndex));
  }

  async remove(lastAppliedIndex: number): Promise<void> {
    try {
      await this.fs.unlink(this.pathFor(lastAppliedIndex));
    } catch (error) {
      // Idempotent: retention may race a crash that already removed it.
      if (errorCode(error) !== "ENOENT") throw error;
    }
    await this.fs.syncDir(this.dir);
  }

  /** Creates the directory once and makes its entry in the parent durable. */
  private ensureDir(): Promise<void> {
    this.dirReady ??= (async () => {
      await this.fs.mkdirp(this.dir);
      await this.fs.syncDir(posix.dirname(this.dir));
    })().catch((error: unknown) => {
      this.dirReady = undefined;
      throw error;
    });
    return this.dirReady;
  }
}

/** A snapshot file parsed, with its header's meta hash and the bytes of its state member (null when they cannot be located). */
interface SnapshotRead {
  readonly doc: SnapshotDocument;
  metaHash(): string | Promise<string>;
  stateBytes(): Buffer | null;
}

type Corrupt = (detail: string, hashes?: { expectedHash: string; actualHash: string }) => SnapshotCorruptError;

/** What `load` checks after the header: the index the file is named for, and the state against its stateHash. */
function checkBody(read: SnapshotRead, lastAppliedIndex: number, corrupt: Corrupt): void {
  const { doc } = read;
  if (doc.lastAppliedIndex !== lastAppliedIndex) throw corrupt(`file name says index ${lastAppliedIndex}, content says ${doc.lastAppliedIndex}`);
  const stateBytes = read.stateBytes();
  let stateHash = stateBytes === null ? "" : createHash("sha256").update(stateBytes).digest("hex");
  try {
    if (stateHash !== doc.stateHash) stateHash = computeStateHash(doc.state);
  } catch (error) {
    throw corrupt(`state is not hashable JSON: ${(error as Error).message}`);
  }
  if (stateHash !== doc.stateHash) throw corrupt("stateHash does not match the state", { expectedHash: doc.stateHash, actualHash: stateHash });
}

/** The whole file as one string and one JSON.parse. */
function readWhole(bytes: Buffer, corrupt: Corrupt): SnapshotRead {
  const text = bytes.toString("utf8");
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw corrupt(`not valid JSON (truncated or damaged): ${(error as Error).message}`);
  }
  const doc = checkShape(parsed, corrupt);
  // The file is one string, so its outcomes' text fits in one too; it serves both the hash and locating the state.
  let outcomesText: string | undefined;
  const outcomes = (): string => (outcomesText ??= canonicalJSON(doc.outcomes));
  return { doc, metaHash: () => computeMetaHash(doc, outcomes()), stateBytes: () => stateBytesOf(bytes, text, doc, outcomes()) };
}

/**
 * A file too large for one string: its top-level members are found without
 * parsing them, then each is parsed by `parseJsonBytes` (the state in parts,
 * runs of its records at a time). The state's bytes are its member's
 * own: whatever the layout around them, they hash to `stateHash` only if they
 * are the canonical text `save` wrote.
 */
function readSplit(bytes: Buffer, partBytesMax: number, corrupt: Corrupt): SnapshotRead {
  const fields: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  let stateRange: MemberRange | undefined;
  try {
    for (const member of objectMembers(bytes, 0, bytes.length)) {
      if (member.key === "state") stateRange = member;
      fields[member.key] = parseJsonBytes(bytes, partBytesMax, member.start, member.end);
    }
  } catch (error) {
    throw corrupt(`not valid JSON (truncated or damaged): ${(error as Error).message}`);
  }
  const doc = checkShape({ ...fields }, corrupt);
  const range = stateRange as MemberRange;
  return { doc, metaHash: () => metaHashByPieces(doc), stateBytes: () => bytes.subarray(range.start, range.end) };
}

function checkShape(value: unknown, corrupt: (detail: string) => SnapshotCorruptError): SnapshotDocument {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw corrupt("not a JSON object");
  const doc = value as Record<string, unknown>;
  const formatVersion = doc.formatVersion;
  if (formatVersion !== SNAPSHOT_FORMAT_VERSION && formatVersion !== SNAPSHOT_FORMAT_VERSION_NO_GENESIS) throw corrupt(`unsupported formatVersion ${JSON.stringify(formatVersion)}`);
  const strings = ["clusterId", "lastAppliedHlc", "logHash", "stateHash", "metaHash"] as const;
  // formatVersion 1 files predate the genesis fields: any such member there is no part of what its metaHash covers, and is not read.
  const genesisStrings = formatVersion === SNAPSHOT_FORMAT_VERSION ? (["genesisStateHash", "genesisTime"] as const) : [];
  for (const key of [...strings, ...genesisStrings]) if (typeof doc[key] !== "string") throw corrupt(`field ${key} is missing or not a string`);
  const index = doc.lastAppliedIndex;
  if (typeof index !== "number" || !Number.isSafeInteger(index) || index < 0) throw corrupt("field lastAppliedIndex is not a non-negative integer");
  if (!("outcomes" in doc)) throw corrupt("field outcomes is missing");
  const state = doc.state;
  if (typeof state !== "object" || state === null || Array.isArray(state)) throw corrupt("field state is not an object");
  const genesis = formatVersion === SNAPSHOT_FORMAT_VERSION ? { genesisStateHash: doc.genesisStateHash as string, genesisTime: doc.genesisTime as string } : {};
  return {
    formatVersion,
    clusterId: doc.clusterId as string,
    ...genesis,
    lastAppliedIndex: index,
    lastAppliedHlc: doc.lastAppliedHlc as string,
    logHash: doc.logHash as string,
    outcomes: doc.outcomes as JsonValue,
    state: state as { [key: string]: JsonValue },
    stateHash: doc.stateHash as string,
    metaHash: doc.metaHash as string,
  };
}

function errorCode(error: unknown): unknown {
  return typeof error === "object" && error !== null ? (error as { code?: unknown }).code : undefined;
}
