import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { HybridClock, HlcError, decodeHlc, encodeHlc, hlcCounter, hlcWallMs } from "../../src/core/hlc.ts";
import type { Clock, HlcTimestamp } from "../../src/core/hlc.ts";

/** A clock the test moves by hand, backwards too. */
class ManualClock implements Clock {
  constructor(public ms: number) {}
  nowMs(): number {
    return this.ms;
  }
}

const timestamp = fc.record({
  wallMs: fc.integer({ min: 0, max: 10 ** 15 - 1 }),
  counter: fc.integer({ min: 0, max: 10 ** 10 - 1 }),
  nodeId: fc.stringMatching(/^[A-Za-z0-9_.-]{1,12}$/),
});

function compareTimestamps(a: HlcTimestamp, b: HlcTimestamp): number {
  if (a.wallMs !== b.wallMs) return a.wallMs < b.wallMs ? -1 : 1;
  if (a.counter !== b.counter) return a.counter < b.counter ? -1 : 1;
  return a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0;
}

describe("HLC encoding", () => {
  it("orders encoded strings exactly as the timestamps they encode", () => {
    fc.assert(
      fc.property(timestamp, timestamp, (a, b) => {
        const ea = encodeHlc(a);
        const eb = encodeHlc(b);
        const lexical = ea < eb ? -1 : ea > eb ? 1 : 0;
        assert.equal(lexical, compareTimestamps(a, b));
        assert.deepEqual(decodeHlc(ea), { ...a });
        assert.equal(hlcWallMs(ea), a.wallMs);
        assert.equal(hlcCounter(ea), a.counter);
      }),
      { numRuns: 5000 },
    );
  });

  it("stamps exactly what encodeHlc gives, across milliseconds and counters", () => {
    const clock = new ManualClock(1_000);
    const hlc = new HybridClock(clock, "node-7");
    for (const ms of [1_000, 1_000, 999, 1_001, 1_001, 10 ** 12, 10 ** 12]) {
      clock.ms = ms;
      const stamped = hlc.now();
      const decoded = decodeHlc(stamped);
      assert.equal(stamped, encodeHlc(decoded));
      assert.equal(decoded.nodeId, "node-7");
    }
    assert.equal(hlc.now(), encodeHlc({ wallMs: 10 ** 12, counter: 2, nodeId: "node-7" }));
  });

  it("has the documented fixed-width form", () => {
    assert.equal(encodeHlc({ wallMs: 1764417600000, counter: 7, nodeId: "node-1" }), "001764417600000-0000000007-node-1");
    for (const bad of ["", "1-2-3", "001764417600000-0000000007-", "001764417600000-0000000007-a b", "x".repeat(40)]) {
      assert.throws(() => decodeHlc(bad), HlcError);
    }
  });
});

describe("HybridClock", () => {
  it("strictly increases while the wall clock stands still or steps backwards", () => {
    const clock = new ManualClock(1_000_000);
    const hlc = new HybridClock(clock, "n1");
    let previous = hlc.now();
    for (const step of [0, 0, -500, 3, -10_000, 0, 20_000, -1]) {
      clock.ms += step;
      const next = hlc.now();
      assert.ok(next > previous, `${next} > ${previous}`);
      previous = next;
    }
  });

  it("follows the receive rule and stays ahead of every timestamp it saw", () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.record({ kind: fc.constant("tick" as const), step: fc.integer({ min: -1000, max: 1000 }) }), fc.record({ kind: fc.constant("recv" as const), skew: fc.integer({ min: -5000, max: 5000 }), counter: fc.nat(1000) })), { maxLength: 200 }),
        (events) => {
          const clock = new ManualClock(10_000_000);
          const hlc = new HybridClock(clock, "local", 60_000);
          let previous = hlc.now();
          for (const event of events) {
            let next: string;
            if (event.kind === "tick") {
              clock.ms += event.step;
              next = hlc.now();
            } else {
              const remote = encodeHlc({ wallMs: clock.ms + event.skew, counter: event.counter, nodeId: "remote" });
              next = hlc.receive(remote);
              assert.ok(next > remote, "after a receive the clock is past the remote stamp");
            }
            assert.ok(next > previous);
            previous = next;
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it("rejects a remote stamp more than maxDriftMs ahead and stays unchanged", () => {
    const clock = new ManualClock(5_000_000);
    const hlc = new HybridClock(clock, "n1", 60_000);
    const before = hlc.now();
    const ahead = encodeHlc({ wallMs: 5_000_000 + 60_001, counter: 0, nodeId: "far" });
    assert.throws(() => hlc.receive(ahead), (e: unknown) => e instanceof HlcError && e.code === "clock_drift");
    assert.equal(hlc.last(), before);
    const atLimit = encodeHlc({ wallMs: 5_000_000 + 60_000, counter: 3, nodeId: "near" });
    assert.equal(hlc.receive(atLimit), encodeHlc({ wallMs: 5_060_000, counter: 4, nodeId: "n1" }));
    // Within the limit, with its counter exhausted: accepted, the next millisecond borrowed (as a local stamp does).
    const full = encodeHlc({ wallMs: 5_060_000, counter: 10 ** 10 - 1, nodeId: "full" });
    assert.equal(hlc.receive(full), encodeHlc({ wallMs: 5_060_001, counter: 0, nodeId: "n1" }));
    assert.ok(hlc.now() > full, "later stamps stay ahead of it");
  });

  it("cuts an injected clock's fractions to whole milliseconds, and refuses a reading that is no time without changing", () => {
    const clock = new ManualClock(5_000_000.75);
    const hlc = new HybridClock(clock, "n1");
    assert.equal(hlc.now(), encodeHlc({ wallMs: 5_000_000, counter: 0, nodeId: "n1" }));
    assert.equal(hlc.now(), encodeHlc({ wallMs: 5_000_000, counter: 1, nodeId: "n1" }));
    clock.ms = 5_000_001.2;
    const remote = encodeHlc({ wallMs: 5_000_001, counter: 7, nodeId: "r" });
    assert.equal(hlc.receive(remote), encodeHlc({ wallMs: 5_000_001, counter: 8, nodeId: "n1" }));
    const before = hlc.last();
    for (const reading of [Number.NaN, Number.POSITIVE_INFINITY, -1, 10 ** 15]) {
      clock.ms = reading;
      assert.throws(() => hlc.now(), RangeError, `reading ${reading}`);
      assert.throws(() => hlc.receive(remote), RangeError, `reading ${reading}`);
      assert.equal(hlc.last(), before, "the clock's state is unchanged");
    }
    clock.ms = 5_000_002;
    assert.equal(hlc.now(), encodeHlc({ wallMs: 5_000_002, counter: 0, nodeId: "n1" }));
  });

  it("resumes past the last applied stamp after a restart with a clock that went back", () => {
    const lastApplied = encodeHlc({ wallMs: 9_000_000, counter: 12, nodeId: "n1" });
    const restarted = new HybridClock(new ManualClock(1_000), "n1");
    restarted.observe(lastApplied);
    assert.ok(restarted.now() > lastApplied);
  });
});
