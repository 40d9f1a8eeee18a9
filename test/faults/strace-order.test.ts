/**
 * G1 observed from outside: under strace, every "ACK" write(2) of a process
 * that acknowledges commands must come after an fdatasync/fsync that returned
 * 0 since the previous ACK. Skipped (with a message) where strace is missing;
 * .ci/run installs it.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { tempDir } from "../support/engine-fixtures.ts";

const fixture = fileURLToPath(new URL("./fixtures/ack-after-flush.ts", import.meta.url));
const hasStrace = spawnSync("strace", ["-V"]).status === 0;

describe("acknowledgement order under strace", () => {
  it("writes each ACK only after a flush syscall returned", { skip: hasStrace ? false : "strace is not installed (apt-get install strace)" }, async (t) => {
    const { dir, cleanup } = await tempDir("swoosh-strace-");
    t.after(cleanup);
    const traceFile = path.join(dir, "trace.txt");
    const run = spawnSync(
      "strace",
      ["-f", "-tt", "-e", "trace=fdatasync,fsync,msync,write", "-o", traceFile, process.execPath, "--import", "tsx", fixture, path.join(dir, "data"), "8"],
      { encoding: "utf8", timeout: 120_000 },
    );
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout.match(/^ACK /gm)?.length, 8);
    const lines = (await readFile(traceFile, "utf8")).split("\n");
    let flushedSinceAck = false;
    let acks = 0;
    let afterReady = false;
    for (const line of lines) {
      if (/write\(1, "READY/.test(line)) afterReady = true;
      if (!afterReady) continue;
      // A completed flush: "fdatasync(5) = 0" or "<... fdatasync resumed>) = 0".
      if (/\b(fdatasync|fsync|msync)\b.*\)\s+= 0\b/.test(line)) flushedSinceAck = true;
      if (/write\(1, "ACK /.test(line)) {
        assert.ok(flushedSinceAck, `ACK written with no completed flush before it:\n${line}`);
        flushedSinceAck = false;
        acks += 1;
      }
    }
    assert.equal(acks, 8);
  });
});
