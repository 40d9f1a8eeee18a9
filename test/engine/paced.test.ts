/**
 * Pacing of background reads: they pause after a step only while commands are
 * being applied (a read on a server without writes runs at full speed).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { pacedWhileAdvancing } from "../../src/engine/paced.ts";

describe("pacedWhileAdvancing", () => {
  it("paces while the position moved within the last 250 ms, and never once pacing is off", () => {
    let index = 10;
    let open = true;
    let clockMs = 1000;
    const paced = pacedWhileAdvancing(
      () => index,
      () => open,
      () => clockMs,
    );
    assert.equal(paced(), false, "no command since the read began");
    clockMs += 100;
    index = 11;
    assert.equal(paced(), true, "a command was applied during the last step");
    clockMs += 200;
    assert.equal(paced(), true, "one 200 ms ago: writes are still going on");
    clockMs += 100;
    assert.equal(paced(), false, "none for 300 ms");
    index = 15;
    open = false;
    assert.equal(paced(), false, "closing: no pauses");
    open = true;
    assert.equal(paced(), true);
  });

  it("keeps one position per read, so concurrent reads do not hide writes from each other", () => {
    let index = 0;
    const clock = (): number => 0;
    const a = pacedWhileAdvancing(() => index, () => true, clock);
    const b = pacedWhileAdvancing(() => index, () => true, clock);
    index = 1;
    assert.equal(b(), true);
    assert.equal(a(), true, "b having looked does not make a miss the write");
  });
});
