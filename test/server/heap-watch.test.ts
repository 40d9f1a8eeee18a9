/**
 * The heap warning's decisions (heap-watch.ts), fed figures and times: when a
 * full GC earns a warning, when it repeats, when it re-arms; and the young
 * generation's reserve read from the process's flags.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { heapFigures, semiSpaceMaxMiB } from "../../src/engine/heap.ts";
import { HeapWarnings } from "../../src/server/heap-watch.ts";

const MIB = 1024 * 1024;
const at = (usedMiB: number) => ({ usedBytes: usedMiB * MIB, limitBytes: 100 * MIB });

describe("server: heap warnings", () => {
  it("warns once past 70% of the limit, again after a minute or another 5%, and re-arms below 65%", () => {
    const warnings = new HeapWarnings();
    assert.equal(warnings.afterFullGc(at(69), 0), false, "below the threshold");
    assert.equal(warnings.afterFullGc(at(71), 1_000), true, "crossing it");
    assert.equal(warnings.afterFullGc(at(72), 2_000), false, "not again at once");
    assert.equal(warnings.afterFullGc(at(73), 30_000), false, "nor within the minute");
    assert.equal(warnings.afterFullGc(at(77), 31_000), true, "5% more of the limit is news");
    assert.equal(warnings.afterFullGc(at(76), 60_000), false);
    assert.equal(warnings.afterFullGc(at(76), 91_000), true, "a minute after the last one");
    assert.equal(warnings.afterFullGc(at(67), 92_000), false, "between 65% and 70%: quiet, still armed as before");
    assert.equal(warnings.afterFullGc(at(71), 93_000), false, "back over 70% within the minute of the last warning");
    assert.equal(warnings.afterFullGc(at(64), 94_000), false, "below 65%: re-armed");
    assert.equal(warnings.afterFullGc(at(71), 95_000), true, "a new crossing warns at once");
  });

  it("reads --max-semi-space-size from NODE_OPTIONS and the command line (the command line wins)", () => {
    assert.equal(semiSpaceMaxMiB([], ""), 16);
    assert.equal(semiSpaceMaxMiB([], "--max-old-space-size=64 --max-semi-space-size=4"), 4);
    assert.equal(semiSpaceMaxMiB(["--max_semi_space_size=32"], "--max-semi-space-size=4"), 32);
  });

  it("measures this process: the old generation's live size under its limit", () => {
    const figures = heapFigures();
    assert.ok(figures.usedBytes > 0 && figures.usedBytes < figures.limitBytes, JSON.stringify(figures));
  });
});
