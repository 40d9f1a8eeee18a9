/**
 * The e2e helpers themselves: a child that exits without reading its input
 * must not fail the run (nor, through an uncaught EPIPE, whichever test runs
 * next — seen in CI after the CLI was run as nobody).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { runProcess } from "./processes.ts";

describe("e2e helpers", () => {
  it("runProcess resolves with the status of a child that exits without reading its input", async () => {
    const run = await runProcess("true", [], { input: "x".repeat(4 * 1024 * 1024) });
    assert.equal(run.status, 0);
  });
});
