/**
 * replayInto and a log that vouches for its chain (`chainCheckedThrough`, the
 * LMDB log's probe child): links it vouches for are not hashed again, but the
 * first record of every replay is, since its predecessor's hash comes from a
 * snapshot or genesis rather than from the log.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { sealEntry } from "../../src/core/log-record.ts";
import type { LogRecord } from "../../src/core/log-record.ts";
import { encodeHlc } from "../../src/core/hlc.ts";
import { WalChainError } from "../../src/engine/errors.ts";
import { replayInto } from "../../src/engine/replay.ts";
import { MemoryCommandLog } from "../../src/storage/memory-log.ts";
import { counterGenesisState, counterMachine } from "../support/counter-machine.ts";

const GENESIS_HASH = "a".repeat(64);

/** `count` counter.add records chained from GENESIS_HASH. */
function counterRecords(count: number): LogRecord[] {
  const records: LogRecord[] = [];
  let prevHash = GENESIS_HASH;
  for (let index = 1; index <= count; index++) {
    const record = sealEntry({ index, hlc: encodeHlc({ wallMs: Date.UTC(2026, 10, 29) + index, counter: 0, nodeId: "n" }), type: "counter.add", payload: { amount: 1 } }, prevHash);
    records.push(record);
    prevHash = record.hash;
  }
  return records;
}

/** A memory log that claims every record it holds chains (as a probe child that read them all would). */
class VouchingLog extends MemoryCommandLog {
  chainCheckedThrough(): number {
    return this.lastIndex();
  }
}

async function vouchingLog(records: LogRecord[]): Promise<VouchingLog> {
  const log = new VouchingLog();
  await log.append(records);
  return log;
}

describe("replayInto with a log that vouches for its chain", () => {
  it("applies every record, and ends on the last record's hash", async () => {
    const records = counterRecords(50);
    const model = counterMachine.restore(counterGenesisState("c"));
    const position = await replayInto(counterMachine, model, await vouchingLog(records), { fromIndex: 0, toIndex: 50, logHash: GENESIS_HASH, hlc: "" });
    assert.equal(position.index, 50);
    assert.equal(position.logHash, records[49]?.hash);
    assert.equal(model.count, 50);
  });

  it("still hashes the first record of a replay: a start hash the log does not continue is refused at that record", async () => {
    const log = await vouchingLog(counterRecords(50));
    for (const fromIndex of [0, 20]) {
      const model = counterMachine.restore(counterGenesisState("c"));
      const replay = replayInto(counterMachine, model, log, { fromIndex, toIndex: 50, logHash: "b".repeat(64), hlc: "" });
      await assert.rejects(replay, (error: unknown) => error instanceof WalChainError && error.index === fromIndex + 1 && /hash mismatch/.test(error.message));
    }
  });
});
