/**
 * SIGKILL at random moments while 32 writers load the engine in a child
 * process; after each kill, a reopen must hold every acknowledged command
 * exactly once, the chain must verify, and the recovered state hash must equal
 * an independent replay. Seeded: the seed is printed, and SWOOSH_SEED replays it.
 * SWOOSH_KILL_ROUNDS sets the number of rounds (default 4 in `npm test`).
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { openEngine } from "../../src/engine/open.ts";
import { verifyDataDir } from "../../src/engine/verify.ts";
import { counterMachine } from "../support/counter-machine.ts";
import type { CounterState } from "../support/counter-machine.ts";
import { tempDir } from "../support/engine-fixtures.ts";
import { seededRandom } from "../../src/core/seeded-random.ts";

const fixture = fileURLToPath(new URL("./fixtures/engine-load.ts", import.meta.url));
const seed = Number(process.env.SWOOSH_SEED ?? Date.now() % 2 ** 31);
const rounds = Number(process.env.SWOOSH_KILL_ROUNDS ?? 4);

interface RoundResult {
  acked: Map<string, number>;
}

function runAndKill(dataDir: string, round: number, killAfterMs: number): Promise<RoundResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", fixture, dataDir, String(round), "32", "150"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    const acked = new Map<string, number>();
    let partial = "";
    let stderr = "";
    let timer: NodeJS.Timeout | undefined;
    const guard = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      const lines = (partial + chunk).split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) {
        if (line.startsWith("READY") && timer === undefined) timer = setTimeout(() => child.kill("SIGKILL"), killAfterMs);
        const [tag, id, index] = line.split(" ");
        if (tag === "ACK" && id) acked.set(id, Number(index));
      }
    });
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      clearTimeout(guard);
      if (timer) clearTimeout(timer);
      if (signal !== "SIGKILL") reject(new Error(`child exited with ${code}: ${stderr}`));
      else resolve({ acked });
    });
  });
}

describe(`engine under SIGKILL (seed ${seed}, rounds ${rounds})`, () => {
  it("recovers every acknowledged command exactly once, with a verified chain and replay hash", async (t) => {
    const random = seededRandom(seed);
    const { dir, cleanup } = await tempDir("swoosh-sigkill-");
    t.after(cleanup);
    const everAcked = new Map<string, number>();
    let totalAcked = 0;
    for (let round = 0; round < rounds; round++) {
      const killAfterMs = 150 + Math.floor(random() * 900);
      const { acked } = await runAndKill(dir, round, killAfterMs);
      totalAcked += acked.size;
      for (const [id, index] of acked) everAcked.set(id, index);

      const engine = await openEngine<CounterState>({ dataDir: dir, machine: counterMachine, snapshotEvery: 0, onFatal: () => undefined });
      const { index, state } = await engine.readState();
      const counter = state as CounterState;
      for (const [id, ackedIndex] of everAcked) {
        assert.ok(Object.prototype.hasOwnProperty.call(counter.values, id), `seed ${seed}: acknowledged ${id} (index ${ackedIndex}) lost`);
      }
      // Each command sets a distinct key and adds its index: both hold only if
      // every logged command was applied exactly once.
      assert.equal(Object.keys(counter.values).length, index, `seed ${seed}: keys vs applied entries`);
      assert.equal(counter.indexSum, (index * (index + 1)) / 2, `seed ${seed}: an entry was applied twice or skipped`);
      const liveHash = await engine.stateHash();
      await engine.close();

      const report = await verifyDataDir({ dataDir: dir, machine: counterMachine });
      assert.deepEqual(report.problems, [], `seed ${seed}: verify found problems`);
      assert.ok(report.ok);
      assert.equal(report.finalStateHash, liveHash, `seed ${seed}: replay hash differs from the recovered state`);
    }
    t.diagnostic(`seed ${seed}: ${rounds} rounds, ${totalAcked} acknowledged commands, 0 lost`);
    assert.ok(totalAcked > 0, "the load acknowledged commands before being killed");
  });
});
