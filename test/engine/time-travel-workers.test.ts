/**
 * TimeTravelWorkers keeps the worker of the last time travel for the next one
 * (a worker start costs far more than a travel over a small state), and never
 * hands out one that died, one started for other data, or one past its idle
 * time; at close, every worker ends, busy ones too.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { describe, it } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { Worker } from "node:worker_threads";
import { TimeTravelWorkers } from "../../src/engine/time-travel.ts";
import type { TimeTravelData } from "../../src/engine/time-travel.ts";

const entry = pathToFileURL(fileURLToPath(new URL("../support/echo-worker.ts", import.meta.url))).href;
const data = (snapshotDir: string): TimeTravelData => ({ entry, machineModule: "unused", machineExport: "unused", snapshotDir, clusterId: "c", walFile: "wal" });

async function threadIdOf(worker: Worker): Promise<number> {
  worker.postMessage("id");
  const [id] = (await once(worker, "message")) as [number];
  return id;
}

async function exits(worker: Worker): Promise<void> {
  await once(worker, "exit");
}

describe("time travel: the kept worker", () => {
  it("hands the kept worker out again for the same data only, and drops it after its idle time, when it dies, and at close", async (t) => {
    // The workers are unref'd (they never hold a process open): this test's waits need a handle that does.
    const keepAlive = setInterval(() => undefined, 1000);
    t.after(() => clearInterval(keepAlive));
    const workers = new TimeTravelWorkers(300);
    const first = workers.take(data("a"));
    const firstId = await threadIdOf(first);
    workers.park(first, data("a"));
    const again = workers.take(data("a"));
    assert.equal(again, first, "the same worker for the same data");
    assert.equal(await threadIdOf(again), firstId);

    // Other data: a new worker, and the kept one is terminated.
    workers.park(again, data("a"));
    const firstExit = exits(first);
    const other = workers.take(data("b"));
    assert.notEqual(other, first);
    await firstExit;
    assert.notEqual(await threadIdOf(other), firstId);

    // Idle past its time: terminated, and the next take starts a new one.
    workers.park(other, data("b"));
    await exits(other);
    const fresh = workers.take(data("b"));
    assert.notEqual(fresh, other);

    // A kept worker that dies is forgotten, not handed out dead.
    workers.park(fresh, data("b"));
    const freshExit = exits(fresh);
    fresh.postMessage("exit");
    await freshExit;
    const replacement = workers.take(data("b"));
    assert.notEqual(replacement, fresh);
    assert.equal(typeof (await threadIdOf(replacement)), "number");

    // close terminates a busy worker (as it does the kept one), and none starts after it.
    workers.park(replacement, data("b"));
    const replacementExit = exits(replacement);
    const busy = workers.take(data("b"));
    assert.equal(busy, replacement);
    await threadIdOf(busy);
    workers.close();
    await replacementExit;
    assert.throws(() => workers.take(data("b")), /the engine is closed/);
  });
});
