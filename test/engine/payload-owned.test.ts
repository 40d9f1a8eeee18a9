/**
 * `submit(input, { payloadOwned: true })`: the model may keep the caller's
 * payload object, but only when it is exactly what replay builds from the
 * WAL's canonical text. Live and replayed models must agree on everything a
 * reader can see: state hash, key order, -0 read back as 0.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import type { OrchestratorModel } from "../../src/domain/index.ts";
import type { Engine } from "../../src/engine/engine.ts";
import { openSwoosh } from "../../src/index.ts";
import { tempDir } from "../support/engine-fixtures.ts";

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups) await cleanup();
});

async function open(dir: string): Promise<Engine<OrchestratorModel>> {
  return openSwoosh({ dataDir: dir, snapshotEvery: 0, onFatal: () => undefined });
}

/** The task payload the model holds for `taskId`. */
function heldPayload(engine: Engine<OrchestratorModel>, taskId: string): Promise<unknown> {
  return engine.read(({ model }) => model.state.tasks[taskId]?.payload);
}

/** `[1, <hole>, 2]`. */
function holey(): unknown[] {
  const array = [1, 2, 2];
  delete array[1];
  return array;
}

describe("engine: payloadOwned", () => {
  it("keeps a canonical payload, copies any other, and replay builds the same model", async () => {
    const { dir, cleanup } = await tempDir();
    cleanups.push(cleanup);
    const engine = await open(dir);
    // Canonical order at every level: kept as is.
    const canonical = JSON.parse('{"kind":"k","payload":{"a":[1,{"x":true,"y":null}],"b":"s"},"taskId":"t1"}') as Record<string, unknown>;
    // Keys out of order (the usual shape of a client body), -0, index-like keys: copied.
    const shuffled = JSON.parse('{"taskId":"t2","kind":"k","payload":{"z":1,"10":2,"9":3,"a":{"d":-0,"c":0}}}') as Record<string, unknown>;
    const plain = { taskId: "t3", kind: "k", payload: { b: 1, a: 2 } };
    await engine.submit({ type: "task.submit", payload: canonical, id: "c1" }, { payloadOwned: true });
    await engine.submit({ type: "task.submit", payload: shuffled, id: "c2" }, { payloadOwned: true });
    await engine.submit({ type: "task.submit", payload: plain });

    assert.equal(await heldPayload(engine, "t1"), canonical.payload, "a canonical handed-over payload is kept");
    assert.notEqual(await heldPayload(engine, "t2"), shuffled.payload, "a non-canonical one is copied");
    assert.notEqual(await heldPayload(engine, "t3"), plain.payload, "without payloadOwned the engine copies");
    const t2 = (await heldPayload(engine, "t2")) as { a: { d: number } };
    assert.ok(Object.is(t2.a.d, 0), "-0 is held as replay reads it back: 0");
    // The caller changing its object afterwards does not reach a copied payload.
    plain.payload.a = 99;

    const live = { ...(await engine.readState()), stateHash: await engine.stateHash() };
    // The tasks, not the whole state: a fresh cluster's config has its own key order before a restart.
    const liveText = JSON.stringify(live.state.tasks);
    await engine.close();

    const reopened = await open(dir);
    const replayed = { ...(await reopened.readState()), stateHash: await reopened.stateHash() };
    assert.equal(replayed.stateHash, live.stateHash);
    // JSON.stringify follows each object's own key order: the two models hold the same shapes.
    assert.equal(JSON.stringify(replayed.state.tasks), liveText);
    assert.deepEqual(Object.keys((await heldPayload(reopened, "t2")) as object), Object.keys(t2));
    assert.equal(((await heldPayload(reopened, "t3")) as { a: number }).a, 2);
    await reopened.close();
  });

  it("refuses a handed-over payload that is not JSON as any other, and logs nothing", async () => {
    const { dir, cleanup } = await tempDir();
    cleanups.push(cleanup);
    const engine = await open(dir);
    for (const payload of [{ kind: "k", payload: { n: Number.NaN }, taskId: "t" }, { kind: "k", payload: holey(), taskId: "t" }]) {
      await assert.rejects(engine.submit({ type: "task.submit", payload }, { payloadOwned: true }), (error: unknown) => (error as { code?: string }).code === "bad_request");
    }
    assert.equal(engine.stats().appliedIndex, 0);
    await engine.close();
  });
});
