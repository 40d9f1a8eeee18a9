/**
 * The worker side of time travel (`Engine.stateTextAt`, GET /state?at=N):
 * rebuilds the state as of an index from a snapshot file (or the genesis
 * state) plus the WAL entries after it, and answers with the state's
 * canonical text and hash. Parsing a large snapshot, restoring a model from
 * it, replaying and serializing take seconds on a large state; here they
 * never hold the server's event loop.
 *
 * The worker reads no LMDB: it asks its parent for WAL records a batch at a
 * time (`need`), and checks the chain itself while replaying, as recovery
 * does. Started through bin/ts-worker.js; `workerData` names the machine
 * module and the snapshot directory. One job at a time; a worker may get
 * another `start` after answering (time-travel.ts keeps it a few seconds).
 */
import { parentPort, workerData } from "node:worker_threads";
import type { MessagePort } from "node:worker_threads";
import { createHash } from "node:crypto";
import type { JsonObject } from "../core/json.ts";
import type { LogRecord } from "../core/log-record.ts";
import type { StateMachine } from "../core/state-machine.ts";
import { NodeFileSystem } from "../storage/node-fs.ts";
import { FileSnapshotStore } from "../storage/snapshot-store.ts";
import type { CommandLog } from "../storage/types.ts";
import { replayInto } from "./replay.ts";
import { rebuiltModelPieces } from "./time-travel.ts";
import type { TimeTravelData, TimeTravelReply, TimeTravelRequest } from "./time-travel.ts";

const port = parentPort as MessagePort;
/** The text is gathered in pieces of about this many characters before it becomes one buffer. */
const TEXT_PIECE_CHARS = 1 << 20;
const data = workerData as TimeTravelData;

/** Records answered by the parent, one `need` at a time. */
let pendingRead: ((records: LogRecord[]) => void) | null = null;

/** The WAL as the worker sees it: reads go to the parent; nothing else is allowed here. */
const remoteLog: CommandLog = {
  lastIndex: () => unavailable(),
  firstIndex: () => unavailable(),
  append: () => unavailable(),
  truncateBefore: () => unavailable(),
  close: () => unavailable(),
  follow: () => unavailable(),
  read: (from, limit) =>
    new Promise<LogRecord[]>((resolve) => {
      pendingRead = resolve;
      send({ kind: "need", from, limit });
    }),
};

function unavailable(): never {
  throw new Error("time-travel worker: only reads of the WAL are available");
}

function send(reply: TimeTravelReply, transfer: ArrayBuffer[] = []): void {
  port.postMessage(reply, transfer);
}

async function run(request: Extract<TimeTravelRequest, { kind: "start" }>): Promise<void> {
  const machineModule = (await import(data.machineModule)) as Record<string, unknown>;
  const machine = machineModule[data.machineExport] as StateMachine<unknown>;
  let state: JsonObject;
  let from: { fromIndex: number; logHash: string; hlc: string };
  if (request.base.kind === "snapshot") {
    const store = new FileSnapshotStore(new NodeFileSystem(), data.snapshotDir, { clusterId: data.clusterId });
    let doc;
    try {
      doc = await store.load(request.base.index);
    } catch (error) {
      // Not this snapshot (removed meanwhile, or damaged): the parent tries another.
      send({ kind: "baseUnavailable", message: error instanceof Error ? error.message : String(error) });
      return;
    }
    if (doc.logHash !== request.base.logHash) {
      // It verifies on its own but is of another history than this WAL's (copied from a diverged dir).
      send({ kind: "baseUnavailable", message: `snapshot ${request.base.index}'s logHash differs from the WAL entry at its index` });
      return;
    }
    state = doc.state;
    from = { fromIndex: request.base.index, logHash: doc.logHash, hlc: doc.lastAppliedHlc };
  } else {
    state = request.base.state;
    from = { fromIndex: 0, logHash: request.base.logHash, hlc: "" };
  }
  const model = machine.restore(state, from.hlc);
  const position = await replayInto(machine, model, remoteLog, { ...from, toIndex: request.toIndex, file: data.walFile });
  // Read in one go (this thread serves nobody else), encoded once into one
  // buffer, hashed there, and handed over transferred rather than copied.
  const pieces = [...rebuiltModelPieces(machine, model, TEXT_PIECE_CHARS)];
  let byteLength = 0;
  for (const piece of pieces) byteLength += Buffer.byteLength(piece, "utf8");
  const bytes = Buffer.allocUnsafeSlow(byteLength);
  let offset = 0;
  for (const piece of pieces) offset += bytes.write(piece, offset, "utf8");
  const stateHash = createHash("sha256").update(bytes).digest("hex");
  send({ kind: "text", hlc: position.hlc, logHash: position.logHash, stateHash, bytes: bytes.buffer }, [bytes.buffer]);
}

port.on("message", (request: TimeTravelRequest) => {
  if (request.kind === "records") {
    const resolve = pendingRead;
    pendingRead = null;
    resolve?.(request.records);
    return;
  }
  run(request).catch((error: unknown) => {
    const failure = error instanceof Error ? error : new Error(String(error));
    send({ kind: "failed", name: failure.name, message: failure.message, index: (failure as { index?: unknown }).index as number | undefined, detail: (failure as { detail?: unknown }).detail as string | undefined });
  });
});
