/**
 * The engine: the one place that runs stamp → validate → append → flush →
 * apply → respond (SPEC G1–G5).
 *
 * A command is stamped with the HLC, applied to the live model at once (so the
 * next command validates against it), sealed into the hash chain and queued.
 * One append is in flight at a time; everything that arrives while it flushes
 * forms the next batch (group commit). A caller's promise settles only after
 * the flush that covers its command — and, for a refusal or a duplicate, the
 * flush covering every command it observed — has returned. Reads wait the same
 * way, so nobody ever sees state that a crash could take back.
 *
 * A failed flush poisons the engine: the commands of that batch and every later
 * one are refused with `unavailable`, nothing is retried, and `onFatal` tells the
 * embedding process to exit; a restart recovers from disk.
 */
import path from "node:path";
import { SwooshError } from "../core/errors.ts";
import { HlcError, HybridClock, hlcWallMs, isHlc } from "../core/hlc.ts";
import { JSON_DEPTH_MAX, JsonValueError, deepFreeze, freezeRecords, ownedCanonicalJSON } from "../core/json.ts";
import type { OwnedJson } from "../core/json.ts";
import { RecordTextCache } from "../core/record-text-cache.ts";
import type { JsonObject, JsonValue } from "../core/json.ts";
import { entryBody, openRecord, parseRecord, sealBytes } from "../core/log-record.ts";
import type { LogEntry, LogRecord } from "../core/log-record.ts";
import type { StateCapture } from "../core/state-capture.ts";
import type { StateMachine } from "../core/state-machine.ts";
import { FileSnapshotStore, snapshotFileName } from "../storage/snapshot-store.ts";
import type { CommandLog, SnapshotStore } from "../storage/types.ts";
import type { DirLock } from "./dir-lock.ts";
import { FinalSnapshotError, WalChainError } from "./errors.ts";
import type { RecoveryProblem } from "./errors.ts";
import { walHashAt } from "./recovery.ts";
import { genesisStateCopy } from "./genesis.ts";
import type { GenesisDocument } from "./genesis.ts";
import type { OutcomeTable } from "./outcomes.ts";
import { replayInto } from "./replay.ts";
import { mib } from "./heap.ts";
import { collectText, pacedWhileAdvancing, pacer, runPaced, slicedPieces } from "./paced.ts";
import type { CollectedText } from "./paced.ts";
import { TimeTravelWorkers, UnusableBase, rebuiltModelPieces, travelInWorker } from "./time-travel.ts";
import type { EngineSettings } from "./settings.ts";

/** What a client sends: SPEC §6 `{type, payload, id?, hlc?}`. */
export interface CommandInput {
  readonly type: string;
  readonly payload?: unknown;
  readonly id?: string;
  readonly hlc?: string;
}

/** How `submit` may treat its input. */
export interface SubmitOptions {
  /**
   * The caller hands `input.payload` over: it was freshly parsed (JSON.parse
   * or the like: plain objects and arrays, data properties only) and nobody
   * else holds or will touch it. When it already is what replay builds from
   * the WAL (keys in canonical order, no -0), the model keeps it instead of a
   * copy; otherwise the engine copies it as usual. Default false.
   */
  readonly payloadOwned?: boolean;
}

/** The answer to an accepted command: SPEC §7 `{index, hlc, result}`. */
export interface CommandOutcome {
  readonly index: number;
  readonly hlc: string;
  readonly result: JsonValue;
  readonly duplicate?: true;
}

/** One applied, durable command, as `subscribe` listeners and /watch see it. */
/** It is its WAL entry (chain hashes included, so a watcher can show it without reading it back) plus the result. */
export interface AppliedEvent extends LogEntry {
  readonly result: JsonValue;
}

/** A consistent, durable picture of the engine for readers. */
export interface StateRead<Model> {
  readonly index: number;
  readonly hlc: string;
  readonly logHash: string;
  readonly model: Model;
}

/**
 * The durable state as its canonical JSON text (the pieces, concatenated),
 * with that text's SHA-256 (the state hash) and the position it is as of.
 */
export interface StateText {
  readonly index: number;
  readonly hlc: string;
  readonly logHash: string;
  readonly stateHash: string;
  /** Text, or its UTF-8 bytes (as a worker thread hands it over). */
  readonly pieces: readonly (string | Buffer)[];
  /** UTF-8 bytes of the pieces together. */
  readonly byteLength: number;
}

export interface EngineStats {
  readonly appliedIndex: number;
  readonly durableIndex: number;
  readonly flushes: number;
  readonly lastBatchSize: number;
  readonly lastSnapshotIndex: number;
  /**
   * Wall ms of the newest snapshot: when this process wrote it, or, before it
   * has written one, the wall time of the last command in the snapshot
   * recovery started from. Null when there is neither (recovery replayed
   * from genesis and no snapshot has been written since).
   */
  readonly lastSnapshotAtMs: number | null;
  readonly poisoned: boolean;
}

/** Where recovery left the engine. */
export interface RecoveredPosition<Model> {
  readonly model: Model;
  readonly index: number;
  readonly hlc: string;
  readonly logHash: string;
  readonly outcomes: OutcomeTable;
  readonly snapshotIndex: number;
  /** The `lastAppliedHlc` of the snapshot recovery started from; "" when it started from genesis. */
  readonly snapshotHlc: string;
  /** Bytes of the snapshot file recovery started from (0: genesis, or not known): the first automatic snapshot is paced by it. */
  readonly snapshotFileBytes?: number;
}

/** A snapshot to replay from, with the hash the WAL gives the entry at its index (which its logHash must be). */
interface SnapshotBase {
  readonly index: number;
  readonly logHash: string;
}

interface Waiter {
  readonly index: number;
  /** What the promise resolves with: a command's answer, or nothing for a bare wait. */
  readonly answer: CommandOutcome | undefined;
  readonly resolve: (answer: CommandOutcome | undefined) => void;
  readonly reject: (error: Error) => void;
}

/**
 * A sealed command waiting for its flush: the record the log gets (index, hash,
 * body) and what its `AppliedEvent` will say, in one object per command. The
 * event itself is built only if someone listens when the flush returns.
 */
class SealedCommand implements LogRecord {
  constructor(
    readonly index: number,
    readonly hash: string,
    readonly body: string,
    /** `hash + body` as UTF-8, for the log; let go once flushed (the pending list keeps sealed commands only until then). */
    readonly bytes: Uint8Array,
    readonly hlc: string,
    readonly type: string,
    readonly payload: JsonValue,
    readonly id: string | undefined,
    readonly prevHash: string,
    readonly result: JsonValue,
  ) {}

  event(): AppliedEvent {
    const { index, hlc, type, payload, id, prevHash, hash, result } = this;
    return id === undefined ? { index, hlc, type, payload, prevHash, hash, result } : { index, hlc, type, payload, id, prevHash, hash, result };
  }
}

/** Longest idempotency `id` a command may carry (the HTTP schema uses the same bound). */
export const COMMAND_ID_LENGTH_MAX = 256;
/**
 * Automatic snapshots write at most about this many bytes of snapshot file per
 * command logged since the previous one (about one WAL entry's worth), so their
 * cost stays a constant share of the write path as the state grows. The file
 * counts whole: the idempotency rows are written again each time too, and with
 * every command carrying an id (as the client SDK's do) 100,000 of them
 * outweighed a small state; paced by the state alone, a snapshot every 10,000
 * commands re-wrote them all and took a third of the write path.
 */
const SNAPSHOT_BYTES_PER_COMMAND = 256;
/**
 * A read that gathers a whole state's text (GET /state, time travel on this
 * thread) gives up with `unavailable` once the old generation holds more than
 * this share of its limit: the text costs about as much as the state again,
 * and V8 kills the process from 80% when full GCs stop freeing memory — a
 * server filled to ~80% died of one GET /state. Refused, the read is retried
 * later; granted, it could have taken the server and every client with it.
 */
const READ_HEAP_SHARE_MAX = 0.75;
/**
 * A page of records (GET /log, a /watch catching up, GET /tasks) holds about
 * this many characters at most, whatever its `limit`: entries and tasks may
 * be ~1 MiB each, and 1,000 of them made one JSON answer past V8's longest
 * string (the page failed after 6 s and gigabytes of heap). At least one record.
 */
export const PAGE_CHARS_MAX = 16 * 1024 * 1024;
/** Records read from the WAL per step of a log page, so that a page stops reading at its budget. */
const LOG_READ_CHUNK = 64;
/** Record texts a read serializes are kept for the next read (RecordTextCache) only while the heap is under this share: they are as large as the state. */
const REMEMBER_HEAP_SHARE_MAX = 0.5;
/** Longest command `type` (the HTTP schema uses the same bound). */
export const COMMAND_TYPE_LENGTH_MAX = 128;

export class Engine<Model> {
  private readonly hlc: HybridClock;
  private model: Model;
  private appliedIndex: number;
  private appliedHlc: string;
  private chainHead: string;
  private durableIndex: number;
  private readonly outcomes: OutcomeTable;
  /** Canonical texts of unchanged records, reused by hashing and snapshots (reducer rule 2). */
  private readonly texts = new RecordTextCache();
  private hashAt: { index: number; hash: string } | null = null;
  /** The time travel under way (they run one at a time: each holds a large model). */
  private travelling: Promise<void> = Promise.resolve();
  /** The worker of the last time travel, kept for the next one a few seconds. */
  private readonly travelWorkers = new TimeTravelWorkers();
  /** Time travels queued or under way, by target index: callers asking for one index share one (each holds a whole state's text). */
  private readonly travelsByIndex = new Map<number, Promise<StateText>>();
  /** Time-travel replays under way, each with the snapshot it starts from (null: genesis) and the first log index it still has to read. */
  private readonly replayHolds = new Set<{ readonly snapshot: number | null; readonly from: number }>();
  /** The bound of the retention truncation under way (0 when none): entries below it may be going. */
  private truncatingBefore = 0;
  /**
   * Where retention wants the log to start: entries below it go once no
   * time-travel replay reads them. New replays treat them as gone already,
   * so that replays in a row (clients polling an old `?at`) cannot hold the
   * log back for good while each new one takes its own hold from index 1.
   */
  private truncationWanted = 0;
  /** Truncations run one after another (retention after a snapshot, or a replay's hold released). */
  private truncation: Promise<void> = Promise.resolve();
  /** Whether background work (snapshots, large reads, time travel) paces itself: until closing, commands may be waiting behind it. */
  private readonly paced = (): boolean => !this.closing;
  /** How a read (GET /state, GET /tasks, time travel) paces its steps: as a snapshot, but only while commands are applied (paced.ts). */
  private readPacing(): () => boolean {
    return pacedWhileAdvancing(() => this.appliedIndex, this.paced);
  }
  /** The `stateText` being read, shared by callers at the same index and dropped once read (its text is large). */
  private stateTextReading: { index: number; text: Promise<StateText> } | null = null;
  /** The hash-only read of the state under way (`stateHash`), shared by callers at its index. */
  private stateHashReading: { index: number; hash: Promise<string> } | null = null;

  /** Sealed commands not yet handed to the log, in index order. */
  private pending: SealedCommand[] = [];
  /** Callers waiting for durableIndex to reach an index, in index order. */
  private waiters: Waiter[] = [];
  private flushScheduled = false;
  private appendsInFlight = 0;
  private poisonedBy: Error | null = null;
  private closing = false;
  private closed: Promise<void> | null = null;

  private flushes = 0;
  private lastBatchSize = 0;
  private lastSnapshotIndex: number;
  /** Index the last automatic snapshot attempt started at: a failing disk is retried every snapshotEvery commands, not on every flush. */
  private snapshotAttemptIndex: number;
  /** Size of the last snapshot file; sets how soon the next one is worth its cost. */
  private lastSnapshotBytes = 0;
  private lastSnapshotAtMs: number | null = null;
  private snapshotInFlight: Promise<void> | null = null;
  /**
   * Snapshots known to load: the one recovery started from and those this
   * process wrote. Retention counts only these among the K kept: one recovery
   * passed over (damaged, or of another history) is no base to count on, nor
   * is an older one recovery never read, which may be damaged as well.
   */
  private readonly loadable = new Set<number>();
  private readonly listeners = new Set<(event: AppliedEvent) => void>();
  /** The listeners that are not readOnly: while there is one, events are frozen. */
  private readonly freezingListeners = new Set<object>();
  private readonly flushListeners = new Set<(info: { batchSize: number; durationMs: number }) => void>();

  constructor(
    readonly machine: StateMachine<Model>,
    readonly genesis: GenesisDocument,
    private readonly log: CommandLog,
    private readonly snapshots: SnapshotStore,
    readonly settings: EngineSettings,
    recovered: RecoveredPosition<Model> & { readonly skipped?: readonly RecoveryProblem[] },
    private readonly lock: DirLock | null = null,
  ) {
    if (recovered.snapshotIndex > 0) this.loadable.add(recovered.snapshotIndex);
    this.hlc = new HybridClock(settings.clock, settings.nodeId, settings.maxDriftMs);
    this.model = recovered.model;
    this.appliedIndex = recovered.index;
    this.durableIndex = recovered.index;
    this.appliedHlc = recovered.hlc;
    this.chainHead = recovered.logHash;
    this.outcomes = recovered.outcomes;
    this.lastSnapshotIndex = recovered.snapshotIndex;
    this.snapshotAttemptIndex = recovered.snapshotIndex;
    // After a restart, as after a save: a large state's first snapshot comes after as many commands as its size calls for.
    this.lastSnapshotBytes = recovered.snapshotFileBytes ?? 0;
    // The snapshot recovery started from is dated by its lastAppliedHlc's wall
    // time, not by its file's mtime: the HLC is inside the verified file, so a
    // copy or a restore from backup (which resets the mtime) leaves it as is;
    // it comes from this engine's clock, the one the age is measured with;
    // and nothing the storage layer offers has to grow a stat. It can be
    // earlier than the write (a final snapshot at shutdown after idle time
    // holds nothing newer, so the age is that of its contents), or up to
    // maxDriftMs later (a client's HLC ahead; the age is clamped at 0).
    if (recovered.snapshotIndex > 0 && isHlc(recovered.snapshotHlc)) this.lastSnapshotAtMs = hlcWallMs(recovered.snapshotHlc);
    if (isHlc(recovered.hlc)) this.hlc.observe(recovered.hlc);
  }

  /**
   * Submits one command. Resolves once it is durable, with its index, HLC and
   * result; rejects with a `SwooshError` (and logs nothing) when it is refused.
   */
  submit(input: CommandInput, options?: SubmitOptions): Promise<CommandOutcome> {
    try {
      return this.submitChecked(input, options?.payloadOwned === true);
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
  }

  private submitChecked(input: CommandInput, payloadOwned: boolean): Promise<CommandOutcome> {
    this.assertWritable();
    checkEnvelope(input);
    const { type, id } = input;
    const payload = (input.payload === undefined ? {} : input.payload) as JsonValue;

    if (id !== undefined) {
      const seen = this.outcomes.get(id);
      if (seen !== undefined) {
        return this.whenDurable(seen.index).then(() => ({ index: seen.index, hlc: seen.hlc, result: deepFreeze(seen.result), duplicate: true as const }));
      }
    }

    // The model keeps its own copy (a library caller may reuse the object it
    // passed), built as replay builds it from the WAL's canonical text.
    const { text: payloadText, value: ownPayload } = canonicalPayload(payload, payloadOwned);

    // A command refused after its stamp takes the stamp back: it is not logged, so it must not move the clock either.
    const clockBefore = this.hlc.position();
    let hlc: string;
    try {
      hlc = input.hlc === undefined ? this.hlc.now() : this.hlc.receive(input.hlc);
    } catch (error) {
      if (error instanceof HlcError) throw new SwooshError(error.code === "clock_drift" ? "clock_drift" : "bad_request", error.message, { field: "hlc" });
      throw error;
    }
    const index = this.appliedIndex + 1;
    const nowMs = hlcWallMs(hlc);
    let outcome: ReturnType<typeof this.machine.apply>;
    try {
      outcome = this.machine.apply(this.model, { type, payload: ownPayload }, { hlc, index, nowMs, payloadIsJson: true });
    } catch (error) {
      this.hlc.rewind(clockBefore);
      throw error;
    }
    if (!outcome.ok) {
      this.hlc.rewind(clockBefore);
      // The refusal was judged against state that may not be durable yet.
      const error = new SwooshError(outcome.error.code, outcome.error.message, outcome.error.details);
      return this.whenDurable(this.appliedIndex).then(() => Promise.reject(error));
    }

    const prevHash = this.chainHead;
    // Handed to the caller, kept for duplicates and shown to listeners: frozen, so no one can change the others' copy.
    const result = deepFreeze(outcome.result);
    const body = entryBody(index, hlc, type, payloadText, id, prevHash);
    const { hash, bytes } = sealBytes(prevHash, body);
    this.chainHead = hash;
    this.appliedIndex = index;
    this.appliedHlc = hlc;
    if (id !== undefined) this.outcomes.record(id, index, hlc, result, nowMs);
    this.pending.push(new SealedCommand(index, hash, body, bytes, hlc, type, ownPayload, id, prevHash, result));
    const answer: CommandOutcome = { index, hlc, result };
    const done = new Promise<CommandOutcome>((resolve, reject) => {
      this.waiters.push({ index, answer, resolve: resolve as (answer: CommandOutcome | undefined) => void, reject });
    });
    this.scheduleFlush();
    return done;
  }

  /** Resolves when every command applied so far is durable (a read barrier). */
  barrier(): Promise<void> {
    if (this.poisonedBy) return Promise.reject(this.unavailable());
    return this.whenDurable(this.appliedIndex);
  }

  /**
   * Runs `reader` against the live model now and hands its result out once
   * everything it could see is durable (like a refusal). Running it after the
   * wait instead would let it see commands applied while the flush ran, which
   * are not durable yet. `reader` must not keep the model or hand out parts of
   * it that a later command would change (copy what it returns).
   */
  async read<T>(reader: (state: StateRead<Model>) => T): Promise<T> {
    if (this.poisonedBy) throw this.unavailable();
    const index = this.appliedIndex;
    const result = reader({ index, hlc: this.appliedHlc, logHash: this.chainHead, model: this.model });
    await this.whenDurable(index);
    if (this.poisonedBy) throw this.unavailable();
    return result;
  }

  /** The canonical state and its position, durable, as a stable copy. */
  async readState(): Promise<{ index: number; hlc: string; logHash: string; state: JsonObject }> {
    // The view copies the top two levels; the records it shares with the live state are frozen.
    return this.read(({ index, hlc, logHash, model }) => ({ index, hlc, logHash, state: freezeRecords(this.machine.view(model)) }));
  }

  /**
   * `computeStateHash` of the current durable state (remembered until the next
   * command). Not remembered, it comes from a text read of this index under
   * way, or the state is hashed as its text is read, a slice at a time, with
   * no piece kept: no whole text is held for it.
   */
  async stateHash(): Promise<string> {
    const remembered = await this.rememberedStateHash();
    if (remembered !== undefined) return remembered;
    const index = this.appliedIndex;
    const reading = this.stateTextReading;
    if (reading?.index === index) return (await reading.text).stateHash;
    // Callers at one index share one hashing (a burst of If-None-Match: * would otherwise each read the whole state).
    const hashing = this.stateHashReading;
    if (hashing?.index === index) return hashing.hash;
    const started = { index, hash: this.readStateText(false).then((text) => text.stateHash) };
    this.stateHashReading = started;
    const forget = (): void => {
      if (this.stateHashReading === started) this.stateHashReading = null;
    };
    started.hash.then(forget, forget);
    return started.hash;
  }

  /** The current durable state's hash if it is remembered (nothing applied since it was computed), else undefined: free to ask. */
  async rememberedStateHash(): Promise<string | undefined> {
    const hash = this.hashAt?.index === this.appliedIndex ? this.hashAt.hash : undefined;
    return this.read(() => hash);
  }

  /**
   * The durable state as canonical text with its hash (what GET /state
   * sends). On a machine that can capture its state, the text is read from a
   * capture a slice at a time, paced as a snapshot is: a large state never
   * holds the event loop for long, commands go on meanwhile, and the text
   * stays that of the index it was read at. Callers at one index share the
   * work; one read runs at a time, so a caller that comes while an earlier
   * index is being read gets the state as it is once that read is done.
   */
  stateText(): Promise<StateText> {
    if (this.poisonedBy) return Promise.reject(this.unavailable());
    const index = this.appliedIndex;
    const reading = this.stateTextReading;
    if (reading?.index === index) return reading.text;
    // One read at a time (each holds the whole text): a caller at a later
    // index waits for the one under way, then reads the state as it is then.
    if (reading !== null) return reading.text.then(() => this.stateText(), () => this.stateText());
    const text = this.readStateText();
    const started = { index, text };
    this.stateTextReading = started;
    const forget = (): void => {
      if (this.stateTextReading === started) this.stateTextReading = null;
    };
    text.then(forget, forget);
    return text;
  }

  /** Throws `unavailable` while the heap has no room for more of a state's text (READ_HEAP_SHARE_MAX). */
  private readonly heapRoomForText = (): void => {
    const { usedBytes, limitBytes } = this.settings.heapFigures();
    if (usedBytes <= READ_HEAP_SHARE_MAX * limitBytes) return;
    throw new SwooshError(
      "unavailable",
      `not enough memory for the state's text now: the heap holds ${mib(usedBytes)} MiB of its ${mib(limitBytes)} MiB limit ` +
        `(${Math.round((100 * usedBytes) / limitBytes)}%, reads stop at ${100 * READ_HEAP_SHARE_MAX}%); retry later, or restart with a larger --max-old-space-size`,
      { heapUsedBytes: usedBytes, heapLimitBytes: limitBytes },
    );
  };

  /** The durable state's text and hash as `stateText` gives them; `keepText: false` gives only the hash (`pieces` empty, no heap check: nothing is held). */
  private async readStateText(keepText = true): Promise<StateText> {
    const index = this.appliedIndex;
    const hlc = this.appliedHlc;
    const logHash = this.chainHead;
    const capture = this.machine.capture?.(this.model) ?? null;
    let text: CollectedText;
    if (capture === null) {
      // No capture: the live state is read in one go, before any command can change it.
      text = await collectText(this.texts.pieces(this.machine.state(this.model)), keepText ? this.heapRoomForText : undefined, keepText);
    } else {
      try {
        // Texts are remembered, as a hash of the live state did, while the heap
        // has room for them: the next read (a client polling with If-None-Match) reuses them.
        const { usedBytes, limitBytes } = this.settings.heapFigures();
        const remember = usedBytes < REMEMBER_HEAP_SHARE_MAX * limitBytes;
        const pieces = this.texts.capturedPieces(capture, SNAPSHOT_PIECE_CHARS, undefined, remember);
        text = await collectText(slicedPieces(pieces, this.readPacing()), keepText ? this.heapRoomForText : undefined, keepText);
      } finally {
        capture.release();
      }
    }
    await this.whenDurable(index);
    if (this.poisonedBy) throw this.unavailable();
    if (this.hashAt === null || this.hashAt.index < index) this.hashAt = { index, hash: text.stateHash };
    return { index, hlc, logHash, ...text };
  }

  /**
   * `stateAt(index)` as `stateText` gives it. With a time-travel machine
   * module (settings) and snapshot files, a worker thread loads the snapshot,
   * replays and serializes, and this thread only reads it WAL records;
   * otherwise the replay and the text are done here a step at a time
   * (loading the snapshot is then one step). One time travel runs at a time,
   * and callers asking for an index already queued or under way share it.
   */
  stateTextAt(index: number): Promise<StateText> {
    const queued = this.travelsByIndex.get(index);
    if (queued !== undefined) return queued;
    const run = this.travelling.then(() => this.travelledText(index));
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    this.travelling = settled;
    this.travelsByIndex.set(index, run);
    void settled.then(() => this.travelsByIndex.delete(index));
    return run;
  }

  private async travelledText(index: number): Promise<StateText> {
    if (await this.isLiveIndex(index)) {
      // stateText may first wait for a read of an earlier index and then read the state as it is by then:
      // past `index` if commands were applied meanwhile. Then `index` is travelled to like any other.
      const live = await this.stateText();
      if (live.index === index) return live;
    }
    this.assertLogOpen();
    const machine = this.settings.timeTravelMachine;
    const snapshots = this.snapshots;
    if (machine !== null && snapshots instanceof FileSnapshotStore) {
      const walFile = this.walFile();
      return this.fromBase(index, async (base) => {
        const travelled = await travelInWorker({
          workers: this.travelWorkers,
          machine,
          snapshotDir: snapshots.dir,
          clusterId: this.genesis.clusterId,
          log: this.log,
          walFile,
          base: base === null ? { kind: "genesis", state: genesisStateCopy(this.genesis), logHash: this.genesis.stateHash } : { kind: "snapshot", index: base.index, logHash: base.logHash },
          toIndex: index,
        });
        if (travelled instanceof UnusableBase) return travelled;
        return { index, hlc: travelled.hlc, logHash: travelled.logHash, stateHash: travelled.stateHash, pieces: [travelled.bytes], byteLength: travelled.bytes.length };
      });
    }
    const at = await this.fromBase(index, (base) => this.replayedModel(base, index, pacer(this.readPacing())));
    const text = await collectText(slicedPieces(rebuiltModelPieces(this.machine, at.model, SNAPSHOT_PIECE_CHARS), this.readPacing()), this.heapRoomForText);
    return { index, hlc: at.hlc, logHash: at.logHash, ...text };
  }

  /**
   * Runs `scan` over a capture of the state (state-capture.ts) a step at a
   * time — every `yield` in it is a point where the event loop may run, paced
   * as snapshots are — and hands out what it returns once everything it saw
   * is durable, with the index it saw. For reads too large for one turn of
   * the event loop (GET /tasks over 100,000 tasks); `scan` must copy nothing
   * it returns out of the live state but records (never mutated, rule 2).
   */
  async scanCaptured<T>(scan: (capture: StateCapture) => Generator<void, T>): Promise<{ index: number; value: T }> {
    if (this.poisonedBy) throw this.unavailable();
    const capture = this.machine.capture?.(this.model);
    if (capture === undefined) throw new Error("this state machine cannot capture its state");
    const index = this.appliedIndex;
    let value: T;
    try {
      value = await runPaced(scan(capture), this.readPacing());
    } finally {
      capture.release();
    }
    await this.whenDurable(index);
    if (this.poisonedBy) throw this.unavailable();
    return { index, value };
  }

  /**
   * The state as of log index `index` (0 = genesis): the newest snapshot at or
   * before it plus a replay. `history_pruned` when the log no longer reaches back.
   */
  async stateAt(index: number): Promise<{ index: number; hlc: string; logHash: string; state: JsonObject }> {
    if (await this.isLiveIndex(index)) return this.readState();
    this.assertLogOpen();
    const at = await this.fromBase(index, (base) => this.replayedModel(base, index, undefined));
    return { index, hlc: at.hlc, logHash: at.logHash, state: this.machine.state(at.model) };
  }

  /** Checks a time-travel index; true when the live model is exactly there (commands applied since are not part of the answer). */
  private async isLiveIndex(index: number): Promise<boolean> {
    await this.barrier();
    if (!Number.isSafeInteger(index) || index < 0) throw new SwooshError("bad_request", "index must be a non-negative integer", { field: "at" });
    if (index > this.durableIndex) throw new SwooshError("not_found", `index ${index} is past the newest entry ${this.durableIndex}`, { index });
    return index === this.appliedIndex;
  }

  /**
   * Builds something as of `index` from the newest usable base — a snapshot
   * at or before it whose next WAL entries are still held, else genesis while
   * the log reaches back to 1 (`build` gets null for genesis) — with the log
   * held from that base on while `build` runs. `build` answering an
   * UnusableBase (its snapshot does not load, or is of another history) moves
   * on to the next base, and the snapshot is reported (G3). When only such
   * snapshots could have answered, the refusal is `unavailable` naming them,
   * not `history_pruned`: the history is kept, in files that are damaged.
   */
  private async fromBase<T>(index: number, build: (base: SnapshotBase | null) => Promise<T | UnusableBase>): Promise<T> {
    const snapshotIndexes = (await this.snapshots.list()).filter((i) => i <= index);
    const unusable: RecoveryProblem[] = [];
    for (const snapshotIndex of snapshotIndexes) {
      // Checked and held in one turn of the event loop: no truncation can come in between.
      if (snapshotIndex < index && snapshotIndex + 1 < this.firstReadableIndex()) continue;
      const built = await this.holding(snapshotIndex, async () => {
        // A snapshot is a base only for the history this WAL holds (one copied from a diverged dir verifies on its own).
        const logHash = await this.walHashAt(snapshotIndex);
        return logHash === null ? null : build({ index: snapshotIndex, logHash });
      });
      if (built instanceof UnusableBase) {
        const problem: RecoveryProblem = { file: this.snapshotFile(snapshotIndex), index: snapshotIndex, detail: `passed over by time travel to ${index}: ${built.detail}` };
        this.settings.onSkippedSnapshot(problem);
        unusable.push(problem);
        continue;
      }
      if (built !== null) return built;
    }
    // Index 0 is the genesis state, kept for good: no log entry is needed to reach it.
    if (this.firstReadableIndex() <= 1 || index === 0) {
      const built = await this.holding(null, () => build(null));
      if (!(built instanceof UnusableBase)) return built;
    }
    if (unusable.length > 0) {
      throw new SwooshError("unavailable", `no usable snapshot at or before ${index}: ${unusable.map((problem) => `${problem.file}: ${problem.detail}`).join("; ")}`, {
        index,
        snapshots: unusable.map((problem) => problem.file),
      });
    }
    // Past a truncation under way: the entries below it are as good as gone (what firstIndex will say once it is done).
    const firstIndex = this.firstReadableIndex();
    throw new SwooshError("history_pruned", `the log starts at index ${firstIndex} and no snapshot at or before ${index} is kept`, { index, firstIndex });
  }

  /** A snapshot's file, for reports ("snapshot <index>" for a store that has no files). */
  private snapshotFile(index: number): string {
    return this.snapshots instanceof FileSnapshotStore ? path.join(this.snapshots.dir, snapshotFileName(index)) : `snapshot ${index}`;
  }

  /**
   * The hash the WAL gives the entry at `index`: its own, or, when it was
   * truncated, the next entry's `prevHash`; null when the WAL holds neither.
   */
  private async walHashAt(index: number): Promise<string | null> {
    return index === 0 ? this.genesis.stateHash : walHashAt(this.log, index);
  }

  /** The model as of `index`, from `base` (null: genesis) and a replay; an UnusableBase when that snapshot cannot be loaded or is not of this WAL's history. */
  private async replayedModel(base: SnapshotBase | null, index: number, pause: (() => Promise<void>) | undefined): Promise<{ model: Model; hlc: string; logHash: string } | UnusableBase> {
    let model: Model;
    let from: { fromIndex: number; logHash: string; hlc: string };
    if (base === null) {
      model = this.machine.restore(genesisStateCopy(this.genesis));
      from = { fromIndex: 0, logHash: this.genesis.stateHash, hlc: "" };
    } else {
      let doc;
      try {
        doc = await this.snapshots.load(base.index);
      } catch (error) {
        return new UnusableBase(error instanceof Error ? error.message : String(error));
      }
      if (doc.logHash !== base.logHash) return new UnusableBase("its logHash differs from the WAL entry at its index");
      model = this.machine.restore(doc.state, doc.lastAppliedHlc);
      from = { fromIndex: base.index, logHash: doc.logHash, hlc: doc.lastAppliedHlc };
    }
    const position = await replayInto(this.machine, model, this.log, { ...from, toIndex: index, pause });
    return { model, hlc: position.hlc, logHash: position.logHash };
  }

  /** The WAL's path for errors ("wal" for a log that has none, e.g. in memory). */
  private walFile(): string {
    return (this.log as { readonly file?: string }).file ?? "wal";
  }

  /** The oldest log index a replay starting now can count on: past a truncation under way, entries may be going. */
  private firstReadableIndex(): number {
    return Math.max(this.log.firstIndex(), this.truncatingBefore, this.truncationWanted);
  }

  /**
   * Runs `read` with its base kept: retention removes neither the snapshot
   * file `snapshot` nor the log entries after it while it runs (time travel
   * takes many turns of the event loop, in a worker or in paced steps).
   */
  private async holding<T>(snapshot: number | null, read: () => Promise<T>): Promise<T> {
    const hold = { snapshot, from: (snapshot ?? 0) + 1 };
    this.replayHolds.add(hold);
    try {
      return await read();
    } finally {
      this.replayHolds.delete(hold);
      // What retention left for this replay can go now.
      if (this.truncationWanted > this.log.firstIndex() && !this.poisonedBy && !this.closing) {
        this.truncateAsWanted().catch((error: unknown) => this.settings.onSnapshotError(error instanceof Error ? error : new Error(String(error))));
      }
    }
  }

  /** Truncates the log below `truncationWanted`, but not past what a replay under way still reads. */
  private truncateAsWanted(): Promise<void> {
    const run = this.truncation.then(async () => {
      let before = this.truncationWanted;
      for (const hold of this.replayHolds) before = Math.min(before, hold.from);
      if (before <= this.log.firstIndex()) return;
      this.truncatingBefore = before;
      try {
        await this.log.truncateBefore(before);
      } finally {
        this.truncatingBefore = 0;
      }
    });
    this.truncation = run.catch(() => undefined);
    return run;
  }

  /**
   * Durable WAL entries from `from` on, at most `limit` and about `charsMax`
   * characters of records (always at least one entry: a reader goes on from
   * the last index + 1), each checked against the hash chain (G3: a damaged
   * entry is never handed out; `WalChainError` names it). The record before
   * the page, while still held, anchors the first entry; the oldest held
   * record can only be checked against itself. Records are read
   * LOG_READ_CHUNK at a time, so a page of large entries stops reading at
   * its budget.
   *
   * The page starts exactly at `from`, never later: a `from` below the
   * oldest entry held (or one a truncation removes while this read starts)
   * is `history_pruned` naming the oldest held, as GET /log answers, so a
   * reader going through the history never skips a stretch of it unawares.
   * `from` below 1 or not an integer, or a `limit` that is not an integer
   * ≥ 0, is `bad_request`.
   */
  async readLog(from: number, limit: number, charsMax = PAGE_CHARS_MAX): Promise<LogEntry[]> {
    if (!Number.isSafeInteger(from) || from < 1) throw new SwooshError("bad_request", "from must be a log index >= 1", { field: "from" });
    if (!Number.isSafeInteger(limit) || limit < 0) throw new SwooshError("bad_request", "limit must be an integer >= 0", { field: "limit" });
    await this.barrier();
    this.assertLogOpen();
    const firstIndex = this.log.firstIndex();
    if (from < firstIndex) throw historyPruned(from, firstIndex);
    const start = from;
    const count = Math.min(limit, this.durableIndex - start + 1);
    if (count <= 0) return [];
    const anchored = start > firstIndex;
    const file = this.walFile();
    const entries: LogEntry[] = [];
    let chars = 0;
    let prevHash: string | undefined;
    let next = start;
    for (let chunk = 0; entries.length < count; chunk++) {
      const want = Math.min(count - entries.length, LOG_READ_CHUNK);
      const anchorNow = chunk === 0 && anchored;
      let records = await this.log.read(anchorNow ? next - 1 : next, anchorNow ? want + 1 : want);
      if (chunk === 0) {
        // A truncation may have run since firstIndex was read. If it took only
        // the record before `start`, the first entry has nothing before it to
        // be checked against (it is checked against its own prevHash); if it
        // took `start` too, the read is refused below.
        if (anchorNow && records[0]?.index === start - 1) {
          prevHash = records[0].hash;
          records = records.slice(1);
        } else if (records[0]?.index === 1) {
          prevHash = this.genesis.stateHash;
        }
        // Truncated between reading firstIndex and reading the records: `start` is gone.
        if (records.length > 0 && (records[0] as LogRecord).index !== start) throw historyPruned(start, (records[0] as LogRecord).index);
      } else if (records[0]?.index !== next) {
        // Truncated under this read (a snapshot dropped older entries): the page ends
        // here, and the reader asking for `next` learns it is gone (history_pruned).
        return entries;
      }
      for (const record of records.slice(0, want)) {
        const recordChars = record.hash.length + record.body.length;
        if (entries.length > 0 && chars + recordChars > charsMax) return entries;
        const expectedPrev = prevHash ?? (parseRecordOrNull(record)?.prevHash ?? "");
        const opened = openRecord(record, record.index, expectedPrev);
        if (opened.entry === undefined) throw new WalChainError(record.index, opened.problem, file);
        if (entries.length > 0 && record.index !== (entries[entries.length - 1] as LogEntry).index + 1) {
          throw new WalChainError(record.index, `expected index ${(entries[entries.length - 1] as LogEntry).index + 1}`, file);
        }
        entries.push(opened.entry);
        chars += recordChars;
        prevHash = record.hash;
        next = record.index + 1;
      }
      if (records.length < want) return entries;
    }
    return entries;
  }

  /**
   * Calls `listener` for every command once it is durable, in index order. The
   * event is frozen (its payload is the one the state keeps), unless every
   * listener is `readOnly`: one that neither changes the event nor keeps it
   * past the call (the server's watch hub and metrics, which format or count it
   * at once) — freezing costs ~0.7 µs per event.
   */
  subscribe(listener: (event: AppliedEvent) => void, options: { readOnly?: boolean } = {}): () => void {
    const entry = { listener };
    this.listeners.add(listener);
    if (options.readOnly !== true) this.freezingListeners.add(entry);
    return () => {
      this.listeners.delete(listener);
      this.freezingListeners.delete(entry);
    };
  }

  /** Calls `listener` after every successful flush (for metrics). */
  onFlush(listener: (info: { batchSize: number; durationMs: number }) => void): () => void {
    this.flushListeners.add(listener);
    return () => this.flushListeners.delete(listener);
  }

  stats(): EngineStats {
    return {
      appliedIndex: this.appliedIndex,
      durableIndex: this.durableIndex,
      flushes: this.flushes,
      lastBatchSize: this.lastBatchSize,
      lastSnapshotIndex: this.lastSnapshotIndex,
      lastSnapshotAtMs: this.lastSnapshotAtMs,
      poisoned: this.poisonedBy !== null,
    };
  }

  get firstLogIndex(): number {
    return this.log.firstIndex();
  }

  /**
   * Takes a snapshot of everything applied so far and resolves when it is on
   * disk and retention has run. If one is being written, waits for it and then
   * takes another when commands were applied since (no-op otherwise).
   */
  snapshot(): Promise<void> {
    const inFlight = this.snapshotInFlight;
    if (inFlight) return inFlight.catch(() => undefined).then(() => this.snapshot());
    if (this.poisonedBy) return Promise.reject(this.unavailable());
    const run = this.writeSnapshot().finally(() => {
      this.snapshotInFlight = null;
    });
    this.snapshotInFlight = run;
    return run;
  }

  /**
   * Stops taking commands, lets every accepted one become durable, optionally
   * takes a final snapshot, and closes the log.
   */
  /** Closes the engine; a second call returns the first call's promise (resolved once the log is closed and the lock released). */
  close(options: { snapshot?: boolean } = {}): Promise<void> {
    this.closed ??= this.closeOnce(options);
    return this.closed;
  }

  private async closeOnce(options: { snapshot?: boolean }): Promise<void> {
    this.closing = true;
    try {
      if (!this.poisonedBy) {
        await this.whenDurable(this.appliedIndex).catch(() => undefined);
        if (this.snapshotInFlight) await this.snapshotInFlight.catch(() => undefined);
        if (options.snapshot && !this.poisonedBy && this.durableIndex > this.lastSnapshotIndex) {
          await this.snapshot().catch((error: unknown) => {
            throw new FinalSnapshotError(error instanceof Error ? error : new Error(String(error)));
          });
        }
      }
    } finally {
      this.travelWorkers.close();
      await this.log.close();
      await this.lock?.release();
    }
  }

  /** Reads of the WAL after close() are `unavailable` (the storage's own error is not a SPEC code). */
  private assertLogOpen(): void {
    if (this.closed !== null) throw new SwooshError("unavailable", "the engine is closed");
  }

  private assertWritable(): void {
    if (this.poisonedBy) throw this.unavailable();
    if (this.closing) throw new SwooshError("unavailable", "the engine is shutting down");
  }

  private unavailable(): SwooshError {
    return new SwooshError("unavailable", `the write-ahead log failed and the engine stopped: ${this.poisonedBy?.message ?? "closed"}`);
  }

  private whenDurable(index: number): Promise<void> {
    if (this.poisonedBy) return Promise.reject(this.unavailable());
    if (index <= this.durableIndex) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      // A bare wait resolves with the waiter's answer, undefined.
      this.waiters.push({ index, answer: undefined, resolve: resolve as (answer: CommandOutcome | undefined) => void, reject });
    });
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // Let every command submitted in this turn of the event loop join the batch.
    setImmediate(() => {
      this.flushScheduled = false;
      this.startAppends();
    });
  }

  /**
   * Hands pending records to the log, up to `appendsInFlightMax` batches at a
   * time (settings.ts says why one). The log completes appends in order; while
   * one flushes, the event loop keeps applying commands into the next batch,
   * so CPU and fdatasync overlap.
   */
  private startAppends(): void {
    const max = this.settings.batchSizeMax;
    while (this.pending.length > 0 && this.appendsInFlight < this.settings.appendsInFlightMax && !this.poisonedBy) {
      const batch = this.pending.length <= max ? this.pending : this.pending.slice(0, max);
      this.pending = batch === this.pending ? [] : this.pending.slice(batch.length);
      this.appendsInFlight += 1;
      const startedMs = performance.now();
      this.log.append(batch).then(
        () => this.appended(batch, startedMs),
        (error: unknown) => this.poison(error instanceof Error ? error : new Error(String(error))),
      );
    }
  }

  private appended(batch: SealedCommand[], startedMs: number): void {
    this.appendsInFlight -= 1;
    if (this.poisonedBy) return;
    const last = batch[batch.length - 1] as SealedCommand;
    this.durableIndex = last.index;
    this.flushes += 1;
    this.lastBatchSize = batch.length;
    this.releaseWaiters();
    const durationMs = performance.now() - startedMs;
    // A listener that throws is its own bug: reported, and neither the other
    // listeners nor the engine's next flush and snapshot may miss a step for it.
    for (const listener of this.flushListeners) this.callListener(listener, { batchSize: batch.length, durationMs });
    if (this.listeners.size > 0) {
      for (const sealed of batch) {
        // Its payload is the one the state keeps (a task's payload): frozen before a listener that may keep it sees it.
        const event = this.freezingListeners.size > 0 ? deepFreeze(sealed.event()) : sealed.event();
        for (const listener of this.listeners) this.callListener(listener, event);
      }
    }
    this.maybeSnapshot();
    this.startAppends();
  }

  private callListener<T>(listener: (value: T) => void, value: T): void {
    try {
      listener(value);
    } catch (error) {
      this.settings.onListenerError(error instanceof Error ? error : new Error(String(error)));
    }
  }

  private releaseWaiters(): void {
    let released = 0;
    while (released < this.waiters.length && (this.waiters[released] as Waiter).index <= this.durableIndex) {
      const waiter = this.waiters[released] as Waiter;
      waiter.resolve(waiter.answer);
      released += 1;
    }
    if (released > 0) this.waiters = this.waiters.slice(released);
  }

  private poison(error: Error): void {
    if (this.poisonedBy) return;
    this.poisonedBy = error;
    this.pending = [];
    const unavailable = this.unavailable();
    for (const waiter of this.waiters) waiter.reject(unavailable);
    this.waiters = [];
    this.settings.onFatal(error);
  }

  private maybeSnapshot(): void {
    if (this.settings.snapshotEvery <= 0 || this.snapshotInFlight || this.closing) return;
    // Amortized: a snapshot costs O(state), so one is due only after enough
    // commands to pay for it — snapshotEvery, or one command per
    // SNAPSHOT_BYTES_PER_COMMAND bytes of the last snapshot file, whichever is more.
    const dueAfter = Math.max(this.settings.snapshotEvery, Math.ceil(this.lastSnapshotBytes / SNAPSHOT_BYTES_PER_COMMAND));
    if (this.durableIndex - Math.max(this.lastSnapshotIndex, this.snapshotAttemptIndex) < dueAfter) return;
    this.snapshotAttemptIndex = this.durableIndex;
    this.snapshot().catch((error: unknown) => {
      // A snapshot failing is not fatal for the log: recovery still has the WAL.
      this.settings.onSnapshotError(error instanceof Error ? error : new Error(String(error)));
    });
  }

  private async writeSnapshot(): Promise<void> {
    // Everything up to appliedIndex is in the picture; wait until it is durable
    // before the file can exist, so a snapshot is never ahead of the WAL.
    const index = this.appliedIndex;
    if (index === this.lastSnapshotIndex) return;
    const hlc = this.appliedHlc;
    const logHash = this.chainHead;
    // A capture costs nothing now; a view copies the top two levels at once.
    const capture = this.machine.capture?.(this.model) ?? null;
    try {
      const pieces = capture === null ? this.texts.pieces(this.machine.view(this.model), SNAPSHOT_PIECE_CHARS) : this.texts.capturedPieces(capture, SNAPSHOT_PIECE_CHARS);
      const outcomes = this.outcomes.captureRows();
      await this.whenDurable(index);
      const { clusterId, stateHash: genesisStateHash, genesisTime } = this.genesis;
      const header = { clusterId, genesisStateHash, genesisTime, lastAppliedIndex: index, lastAppliedHlc: hlc, logHash, outcomes };
      const saved = await this.snapshots.save(header, slicedPieces(pieces, this.paced));
      this.loadable.add(index);
      this.lastSnapshotIndex = index;
      this.lastSnapshotBytes = saved.fileBytes;
    } finally {
      capture?.release();
    }
    this.lastSnapshotAtMs = this.settings.clock.nowMs();
    // Retention: keep the newest K snapshots known to load. The WAL goes
    // below the oldest kept one only once K exist, so a young cluster keeps
    // its whole history (GET /log, ?at=). Any other snapshot is not counted:
    // kept instead of a good one, a damaged one left a dir whose next damaged
    // snapshot could not be recovered at all. It goes once K known to load
    // are newer (after a restart, once this process has written K − 1).
    const listed = await this.snapshots.list();
    const usable = listed.filter((index) => this.loadable.has(index));
    const oldestKept = usable.length >= this.settings.snapshotsKept ? usable[this.settings.snapshotsKept - 1] : undefined;
    for (const old of listed) {
      const goes = this.loadable.has(old) ? usable.indexOf(old) >= this.settings.snapshotsKept : oldestKept !== undefined && old < oldestKept;
      // A time travel starting from it keeps it until it is done (a later snapshot removes it).
      if (!goes || [...this.replayHolds].some((hold) => hold.snapshot === old)) continue;
      await this.snapshots.remove(old);
      this.loadable.delete(old);
    }
    if (oldestKept === undefined) return;
    // Not past what a time-travel replay still has to read: the rest goes when it is done (holding).
    this.truncationWanted = Math.max(this.truncationWanted, oldestKept);
    await this.truncateAsWanted();
  }
}

/** `history_pruned` for a read from `index`, below the oldest entry the log holds. */
function historyPruned(index: number, firstIndex: number): SwooshError {
  return new SwooshError("history_pruned", `the log starts at index ${firstIndex}`, { index, firstIndex });
}

/** The entry a record holds, or null when its body is not JSON (openRecord then names the problem). */
function parseRecordOrNull(record: LogRecord): LogEntry | null {
  try {
    return parseRecord(record);
  } catch {
    return null;
  }
}

/**
 * Snapshot pieces are about this many characters: about half a millisecond of
 * serializing under load, so a step of background work fits in the wait for a
 * WAL commit instead of holding the next batch up. Measured in process at 256
 * commands in flight (7 interleaved pairs): 1 << 17 (~1.3 ms steps) 61,867
 * commands/s, 1 << 16 65,718 (+6%, 7 of 7 pairs); over HTTP at 64 connections
 * no difference (8 pairs: 15,448 vs 15,525).
 */
const SNAPSHOT_PIECE_CHARS = 1 << 16;

/**
 * The payload's canonical text and the model's copy of it, which also
 * validates it: anything that is not JSON, or nested past JSON_DEPTH_MAX, is
 * refused naming the place. `owned`: see `SubmitOptions.payloadOwned`.
 */
function canonicalPayload(payload: JsonValue, owned: boolean): OwnedJson {
  try {
    return ownedCanonicalJSON(payload, JSON_DEPTH_MAX, owned);
  } catch (error) {
    // `details.path` is a JSON pointer from the payload's root, as for a payload outside its schema (validate.ts).
    if (error instanceof JsonValueError) throw new SwooshError("bad_request", `payload${error.path}: ${error.reason}`, { path: error.path, message: error.reason });
    if (error instanceof RangeError) throw new SwooshError("bad_request", `payload is nested too deeply (max ${JSON_DEPTH_MAX})`, { path: "", message: `nested deeper than ${JSON_DEPTH_MAX}` });
    throw error;
  }
}

/** The fields of a command envelope (SPEC §6); the HTTP schema is closed over the same four. */
const ENVELOPE_FIELDS: ReadonlySet<string> = new Set(["type", "payload", "id", "hlc"]);

/** Throws `bad_request` unless `input` is a well-formed command envelope. */
function checkEnvelope(input: CommandInput): void {
  if (typeof input !== "object" || input === null) throw new SwooshError("bad_request", "a command is a JSON object");
  // As over HTTP: a misspelt field ("ID", "payLoad") is refused, not silently dropped.
  for (const key in input) {
    if (!ENVELOPE_FIELDS.has(key)) {
      const extra = Object.keys(input).filter((name) => !ENVELOPE_FIELDS.has(name));
      throw new SwooshError("bad_request", `unknown command field ${extra.map((name) => JSON.stringify(name)).join(", ")}`, { field: extra[0] ?? "" });
    }
  }
  const { type, id } = input;
  if (typeof type !== "string" || type.length === 0 || type.length > COMMAND_TYPE_LENGTH_MAX || !type.isWellFormed()) {
    throw new SwooshError("bad_request", `type must be a non-empty string of at most ${COMMAND_TYPE_LENGTH_MAX} characters`, { field: "type" });
  }
  if (id !== undefined && (typeof id !== "string" || id.length > COMMAND_ID_LENGTH_MAX || !id.isWellFormed())) {
    throw new SwooshError("bad_request", `id must be a string of at most ${COMMAND_ID_LENGTH_MAX} characters`, { field: "id" });
  }
  if (input.hlc !== undefined && !isHlc(input.hlc)) {
    throw new SwooshError("bad_request", "hlc must be an HLC timestamp (see API_INTEGRATION.md)", { field: "hlc" });
  }
}
