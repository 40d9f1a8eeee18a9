/**
 * Seeded randomized test on the counter machine: random commands (valid,
 * invalid, repeated ids) submitted concurrently, snapshots, and crashes —
 * the engine abandoned mid-flight and every unsynced snapshot/genesis byte
 * forgotten by the strict in-memory file system — then restarts. After every
 * step the live state hash equals an independent replay of the log from
 * genesis, and every acknowledged command is still there.
 * SWOOSH_SEED replays a failure; the seed is in the test name.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { computeStateHash } from "../../src/core/hash.ts";
import { canonicalJSON } from "../../src/core/json.ts";
import { SwooshError } from "../../src/core/errors.ts";
import type { LogRecord } from "../../src/core/log-record.ts";
import type { Engine } from "../../src/engine/engine.ts";
import { openEngine } from "../../src/engine/open.ts";
import { replayInto } from "../../src/engine/replay.ts";
import { MemoryCommandLog, MemoryLogDisk } from "../../src/storage/memory-log.ts";
import { StrictMemFileSystem } from "../../src/storage/strict-mem-fs.ts";
import { counterMachine } from "../support/counter-machine.ts";
import type { CounterState } from "../support/counter-machine.ts";
import { FaultyLog, ManualClock, counterGenesis } from "../support/engine-fixtures.ts";
import { seededRandom } from "../../src/core/seeded-random.ts";

const seed = Number(process.env.SWOOSH_SEED ?? Date.now() % 2 ** 31);
const STEPS = 150;

async function replayHash(shadow: LogRecord[], upTo: number): Promise<string> {
  const genesis = counterGenesis();
  const disk = new MemoryLogDisk();
  disk.records = shadow.slice(0, upTo);
  const model = counterMachine.restore(JSON.parse(canonicalJSON(genesis.state)) as CounterState);
  await replayInto(counterMachine, model, new MemoryCommandLog(disk), { fromIndex: 0, toIndex: upTo, logHash: genesis.stateHash, hlc: "" });
  return computeStateHash(counterMachine.state(model));
}

describe(`engine: seeded random commands, crashes and restarts (seed ${seed})`, () => {
  it("keeps live hash == replay hash at every step and loses no acknowledged command", async () => {
    const random = seededRandom(seed);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
    const fs = new StrictMemFileSystem();
    const disk = new MemoryLogDisk();
    const shadow: LogRecord[] = [];
    const clock = new ManualClock();
    const acked = new Map<number, string>();
    let crashes = 0;
    let snapshots = 0;
    let log = new MemoryCommandLog(disk);
    const open = (): Promise<Engine<CounterState>> =>
      openEngine<CounterState>({
        dataDir: "/data",
        machine: counterMachine,
        genesis: counterGenesis(),
        fs,
        // Keeps a copy of every durable record, so replay from genesis stays possible after WAL truncation.
        log: new FaultyLog(log, (records) => shadow.push(...records)),
        clock,
        snapshotEvery: 0,
        snapshotsKept: 2,
        onFatal: () => undefined,
      });
    let engine = await open();

    for (let step = 0; step < STEPS; step++) {
      clock.ms += Math.floor(random() * 2000) - 500; // sometimes backwards
      const action = random();
      if (action < 0.7) {
        const batch = 1 + Math.floor(random() * 20);
        const submissions = Array.from({ length: batch }, () => {
          const id = random() < 0.3 ? `id-${Math.floor(random() * 40)}` : undefined;
          const command = pick([
            { type: "counter.add", payload: { amount: Math.floor(random() * 10) - 3 } },
            { type: "counter.set", payload: { key: pick(["a", "__proto__", "", "constructor"]), value: step } },
            { type: "counter.add", payload: { amount: "bad" } },
            { type: "counter.expect", payload: { equals: Math.floor(random() * 5) } },
          ]);
          return engine.submit({ ...command, id }).then(
            (o) => {
              if (o.duplicate === undefined) acked.set(o.index, canonicalJSON(command));
              return o;
            },
            (error: unknown) => {
              if (!(error instanceof SwooshError)) throw error;
              return null;
            },
          );
        });
        await Promise.all(submissions);
      } else if (action < 0.8) {
        await engine.snapshot();
        snapshots += 1;
      } else {
        // Crash: the next flush fails, the engine is abandoned, the file system loses what was not fsynced.
        const inflight = engine.submit({ type: "counter.add", payload: { amount: 1 } }).catch(() => null);
        log.failNextFlush(new Error("power loss"));
        await engine.barrier().catch(() => undefined);
        await inflight;
        fs.crash({ tearSeed: Math.floor(random() * 1e9) });
        fs.restart();
        shadow.length = disk.lastIndex; // the shadow holds exactly what the disk kept
        log = new MemoryCommandLog(disk);
        engine = await open();
        crashes += 1;
      }
      const { index, state } = await engine.readState();
      assert.equal(computeStateHash(state), await replayHash(shadow, index), `seed ${seed}, step ${step}: live hash differs from replay`);
      for (const [ackedIndex, command] of acked) {
        assert.ok(ackedIndex <= index, `seed ${seed}: acknowledged index ${ackedIndex} lost (recovered ${index})`);
        const record = shadow[ackedIndex - 1] as LogRecord;
        const entry = JSON.parse(record.body) as { type: string; payload: unknown };
        assert.equal(canonicalJSON({ type: entry.type, payload: entry.payload }), command);
      }
    }
    await engine.close();
    assert.ok(crashes > 0 && snapshots > 0, `seed ${seed}: the run crashed ${crashes} times and took ${snapshots} snapshots`);
  });
});
