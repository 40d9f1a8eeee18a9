/**
 * Time travel in a worker thread (the parent side of time-travel-worker.ts):
 * one job at a time per worker, which loads the base (a snapshot file, or the
 * genesis state), asks here for the WAL records after it, and sends back the
 * state's canonical text as bytes (transferred, not copied) with its hash.
 * The parent's event loop only reads WAL records, a batch per request. A
 * worker is kept a few seconds after its job (TimeTravelWorkers), so a run of
 * reads pays for one worker start.
 */
import { Worker } from "node:worker_threads";
import { SwooshError } from "../core/errors.ts";
import type { JsonObject } from "../core/json.ts";
import type { LogRecord } from "../core/log-record.ts";
import { RecordTextCache } from "../core/record-text-cache.ts";
import { siblingModuleUrl } from "../core/module-url.ts";
import type { StateMachine } from "../core/state-machine.ts";
import type { CommandLog } from "../storage/types.ts";
import { ReplayDivergenceError, WalChainError } from "./errors.ts";
import { heapFigures, mib } from "./heap.ts";

/** The module (URL) and export of the state machine a worker replays with. */
export interface TimeTravelMachine {
  readonly module: string;
  readonly exportName: string;
}

/** What a worker is started with. */
export interface TimeTravelData {
  readonly entry: string;
  readonly machineModule: string;
  readonly machineExport: string;
  readonly snapshotDir: string;
  readonly clusterId: string;
  /** The WAL's path, named in chain errors. */
  readonly walFile: string;
}

/** Where a travel starts: a snapshot file (whose logHash must be `logHash`, the WAL's hash of its entry), or the genesis state. */
export type TravelBase = { readonly kind: "snapshot"; readonly index: number; readonly logHash: string } | { readonly kind: "genesis"; readonly state: JsonObject; readonly logHash: string };

export type TimeTravelRequest = { readonly kind: "start"; readonly base: TravelBase; readonly toIndex: number } | { readonly kind: "records"; readonly records: LogRecord[] };

export type TimeTravelReply =
  | { readonly kind: "need"; readonly from: number; readonly limit: number }
  | { readonly kind: "baseUnavailable"; readonly message: string }
  | { readonly kind: "text"; readonly hlc: string; readonly logHash: string; readonly stateHash: string; readonly bytes: ArrayBuffer }
  | { readonly kind: "failed"; readonly name: string; readonly message: string; readonly index?: number; readonly detail?: string };

export interface TravelledText {
  readonly hlc: string;
  readonly logHash: string;
  readonly stateHash: string;
  readonly bytes: Buffer;
}

/** Why a base snapshot cannot be travelled from (it does not load, or is of another history): the caller tries an older one. */
export class UnusableBase {
  constructor(readonly detail: string) {}
}

/** WAL records handed to a worker per request: a few milliseconds of reading each. */
const RECORDS_PER_MESSAGE = 1024;

const WORKER_ENTRY = new URL("../../bin/ts-worker.js", import.meta.url);
const TRAVEL_ENTRY = siblingModuleUrl("./time-travel-worker", import.meta.url);

/** How long a worker is kept after its job for the next one. */
export const TRAVEL_WORKER_IDLE_MS = 10_000;
/**
 * A worker whose answer was larger is not kept: its heap still holds that
 * state's garbage (hundreds of MiB for a large state), and against a travel of
 * seconds its start is small.
 */
export const TRAVEL_WORKER_KEPT_TEXT_BYTES_MAX = 8 * 1024 * 1024;

/**
 * The worker of the last time travel, kept TRAVEL_WORKER_IDLE_MS for the
 * next: starting one loads the machine's modules (about half a second from
 * the TypeScript sources, a tenth compiled), while a travel over a small
 * state takes milliseconds. Only a worker whose job ended cleanly is kept;
 * after its idle time, or at `close`, it is terminated (it never holds the
 * process open).
 */
export class TimeTravelWorkers {
  private idle: { readonly worker: Worker; readonly key: string; readonly timer: NodeJS.Timeout; readonly onEnd: () => void } | null = null;
  /** Workers on a job: `close` ends them too (a travel must not outlive its engine, nor keep the process alive). */
  private readonly busy = new Set<Worker>();
  private closed = false;

  constructor(private readonly idleMs = TRAVEL_WORKER_IDLE_MS) {}

  get isClosed(): boolean {
    return this.closed;
  }

  /** A worker for `data`, busy until `park` or `discard`: the kept one if it was started for the same, else a new one. */
  take(data: TimeTravelData): Worker {
    if (this.closed) throw new SwooshError("unavailable", "the engine is closed");
    const key = JSON.stringify(data);
    const idle = this.drop();
    let worker: Worker;
    if (idle !== null && idle.key === key) {
      worker = idle.worker;
    } else {
      if (idle !== null) void idle.worker.terminate();
      worker = new Worker(WORKER_ENTRY, { workerData: data });
      // It never keeps the process alive by itself (a server closing does not wait for a time travel).
      worker.unref();
    }
    this.busy.add(worker);
    return worker;
  }

  /** Ends a busy worker whose job did not end cleanly. */
  discard(worker: Worker): void {
    this.busy.delete(worker);
    void worker.terminate();
  }

  /** Keeps `worker`, idle after a clean job, for the next one (replacing any kept before). */
  park(worker: Worker, data: TimeTravelData): void {
    this.busy.delete(worker);
    if (this.closed) {
      void worker.terminate();
      return;
    }
    void this.drop()?.worker.terminate();
    const timer = setTimeout(() => {
      if (this.idle?.worker === worker) void this.drop()?.worker.terminate();
    }, this.idleMs);
    timer.unref();
    // A kept worker that dies (or errs: an 'error' with no listener would throw here) is simply forgotten.
    const onEnd = (): void => {
      if (this.idle?.worker === worker) this.drop();
    };
    worker.on("error", onEnd);
    worker.on("exit", onEnd);
    this.idle = { worker, key: JSON.stringify(data), timer, onEnd };
  }

  /** Terminates the kept worker and the busy ones (their travels then fail `unavailable`); no worker starts after. */
  close(): void {
    this.closed = true;
    void this.drop()?.worker.terminate();
    for (const worker of this.busy) void worker.terminate();
    this.busy.clear();
  }

  /** Forgets the kept worker (its timer and listeners) and returns it. */
  private drop(): { readonly worker: Worker; readonly key: string } | null {
    const idle = this.idle;
    if (idle === null) return null;
    this.idle = null;
    clearTimeout(idle.timer);
    idle.worker.off("error", idle.onEnd);
    idle.worker.off("exit", idle.onEnd);
    return idle;
  }
}

/**
 * Rebuilds the state as of `toIndex` from `base` in a worker of `workers`.
 * Resolves with its text, or an UnusableBase when the base snapshot could not
 * be loaded (the caller tries another); rejects with WalChainError /
 * ReplayDivergenceError as a replay here would, and `unavailable` once
 * `workers` is closed.
 */
export function travelInWorker(options: {
  readonly workers: TimeTravelWorkers;
  readonly machine: TimeTravelMachine;
  readonly snapshotDir: string;
  readonly clusterId: string;
  readonly log: CommandLog;
  readonly walFile: string;
  readonly base: TravelBase;
  readonly toIndex: number;
}): Promise<TravelledText | UnusableBase> {
  const data: TimeTravelData = {
    entry: TRAVEL_ENTRY,
    machineModule: options.machine.module,
    machineExport: options.machine.exportName,
    snapshotDir: options.snapshotDir,
    clusterId: options.clusterId,
    walFile: options.walFile,
  };
  const worker = options.workers.take(data);
  return new Promise<TravelledText | UnusableBase>((resolve, reject) => {
    let settled = false;
    /** `reusable`: the worker answered its job in full and waits for the next (not dead, not waiting for records). */
    const finish = (outcome: () => void, reusable: boolean): void => {
      if (settled) return;
      settled = true;
      worker.off("message", onMessage);
      worker.off("error", onError);
      worker.off("exit", onExit);
      if (options.workers.isClosed) {
        // Closed under it: whatever came of the travel (a closed log, a terminated worker), the engine is gone.
        options.workers.discard(worker);
        reject(new SwooshError("unavailable", "the engine is closed"));
        return;
      }
      outcome();
      if (reusable) options.workers.park(worker, data);
      else options.workers.discard(worker);
    };
    const onMessage = (reply: TimeTravelReply): void => {
      switch (reply.kind) {
        case "need":
          options.log.read(reply.from, Math.min(reply.limit, RECORDS_PER_MESSAGE)).then(
            (records) => {
              if (!settled) worker.postMessage({ kind: "records", records } satisfies TimeTravelRequest);
            },
            (error: unknown) => finish(() => reject(error), false),
          );
          return;
        case "baseUnavailable":
          finish(() => resolve(new UnusableBase(reply.message)), true);
          return;
        case "text":
          finish(
            () => resolve({ hlc: reply.hlc, logHash: reply.logHash, stateHash: reply.stateHash, bytes: Buffer.from(reply.bytes) }),
            reply.bytes.byteLength <= TRAVEL_WORKER_KEPT_TEXT_BYTES_MAX,
          );
          return;
        case "failed":
          finish(() => reject(rebuiltError(reply, options.walFile)), true);
          return;
      }
    };
    const onError = (error: Error): void => finish(() => reject(workerError(error, options.toIndex)), false);
    const onExit = (code: number): void => finish(() => reject(new Error(`time-travel worker exited (code ${code}) before answering`)), false);
    worker.on("message", onMessage);
    worker.on("error", onError);
    worker.on("exit", onExit);
    worker.postMessage({ kind: "start", base: options.base, toIndex: options.toIndex } satisfies TimeTravelRequest);
  });
}

/**
 * A worker that died: out of memory (its own heap, as large as this one's,
 * holds the loaded snapshot and the rebuilt state) is `unavailable` with the
 * figures, a condition to retry later rather than a fault; anything else as it came.
 */
function workerError(error: Error, toIndex: number): Error {
  if ((error as { code?: unknown }).code !== "ERR_WORKER_OUT_OF_MEMORY") return error;
  const { limitBytes } = heapFigures();
  return new SwooshError(
    "unavailable",
    `not enough memory to rebuild the state as of index ${toIndex}: its worker thread ran out of heap (${mib(limitBytes)} MiB); ` +
      "retry later, or restart with a larger --max-old-space-size",
    { index: toIndex, heapLimitBytes: limitBytes },
  );
}

/** The worker's failure as the error a replay on this thread would have thrown. */
function rebuiltError(reply: Extract<TimeTravelReply, { kind: "failed" }>, walFile: string): Error {
  if (reply.name === "WalChainError" && reply.index !== undefined) return new WalChainError(reply.index, reply.detail ?? reply.message, walFile);
  if (reply.name === "ReplayDivergenceError" && reply.index !== undefined) return new ReplayDivergenceError(reply.index, reply.detail ?? reply.message);
  const error = new Error(reply.message);
  error.name = reply.name;
  return error;
}

/**
 * The canonical text, in pieces of about `pieceChars`, of a model rebuilt for
 * time travel: nobody else holds it, so it does not change while it is read
 * (a capture, when the machine has one, lists its ids a step at a time), and
 * its record texts are not worth remembering.
 */
export function rebuiltModelPieces<Model>(machine: StateMachine<Model>, model: Model, pieceChars: number): Iterable<string> {
  const texts = new RecordTextCache({ remember: false });
  const capture = machine.capture?.(model) ?? null;
  return capture === null ? texts.pieces(machine.state(model), pieceChars) : texts.capturedPieces(capture, pieceChars);
}
