/**
 * Pages of large records: `GET /log` and `GET /tasks` end at about
 * PAGE_CHARS_MAX characters whatever their `limit`, so a page of 1,000
 * entries of ~1 MiB each no longer builds an answer past V8's longest string
 * (it failed with a 503 "internal error" after seconds and gigabytes). A
 * reader that goes on (from the last index + 1, or with `nextCursor`) gets
 * every record once, in order; the engine's log pages are held to their
 * budget and to the hash chain.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { PAGE_CHARS_MAX } from "../../src/engine/engine.ts";
import { openSwoosh } from "../../src/index.ts";
import { tempDir } from "../support/engine-fixtures.ts";
import { get, post, startTestServer } from "./helpers.ts";

/** Tasks whose records together pass one page's budget by half. */
const BLOB = "x".repeat(800 * 1024);
const TASKS = Math.ceil((1.5 * PAGE_CHARS_MAX) / BLOB.length);

describe("server: pages of large records", () => {
  it("GET /log and GET /tasks end a page at its size budget; going on reads every record once", { timeout: 120_000 }, async (t) => {
    const { url } = await startTestServer(t);
    for (let i = 0; i < TASKS; i++) {
      const answer = await post(url, "/command", { type: "task.submit", payload: { taskId: `big-${String(i).padStart(3, "0")}`, kind: "k", payload: { blob: BLOB } } });
      assert.equal(answer.status, 200, answer.text.slice(0, 300));
    }

    const logPages: number[] = [];
    const indexes: number[] = [];
    for (let from = 1, guard = 0; guard < 100; guard++) {
      const page = await get(url, `/log?from=${from}&limit=1000`);
      assert.equal(page.status, 200, page.text.slice(0, 300));
      assert.ok(page.text.length <= PAGE_CHARS_MAX + BLOB.length + 4096, `page of ${page.text.length} characters`);
      const entries = page.body.entries as Array<{ index: number }>;
      assert.ok(entries.length > 0);
      logPages.push(entries.length);
      indexes.push(...entries.map((entry) => entry.index));
      const last = entries.at(-1) as { index: number };
      if (last.index >= page.body.lastIndex) break;
      from = last.index + 1;
    }
    assert.ok(logPages.length >= 2, `more than one page: ${logPages.join(", ")}`);
    assert.ok((logPages[0] as number) < TASKS, "the first page stopped before its limit");
    assert.deepEqual(indexes, Array.from({ length: TASKS }, (_, i) => i + 1), "every entry once, in order");

    const taskPages: number[] = [];
    const ids: string[] = [];
    for (let cursor: string | null = null, guard = 0; guard < 100; guard++) {
      const page = await get(url, `/tasks?limit=1000${cursor === null ? "" : `&cursor=${cursor}`}`);
      assert.equal(page.status, 200, page.text.slice(0, 300));
      assert.match(page.headers.get("content-type") ?? "", /^application\/json/);
      assert.ok(page.text.length <= PAGE_CHARS_MAX + BLOB.length + 4096, `page of ${page.text.length} characters`);
      taskPages.push(page.body.tasks.length);
      ids.push(...(page.body.tasks as Array<{ id: string; payload: { blob: string } }>).map((task) => task.id));
      assert.ok((page.body.tasks as Array<{ payload: { blob: string } }>).every((task) => task.payload.blob === BLOB), "records whole");
      cursor = page.body.nextCursor as string | null;
      if (cursor === null) break;
    }
    assert.ok(taskPages.length >= 2, `more than one page: ${taskPages.join(", ")}`);
    assert.deepEqual(ids, Array.from({ length: TASKS }, (_, i) => `big-${String(i).padStart(3, "0")}`), "every task once, in id order");
  });

  it("engine.readLog holds a page to its character budget, one entry at least, chained", async (t) => {
    const { dir, cleanup } = await tempDir();
    t.after(cleanup);
    const engine = await openSwoosh({ dataDir: dir, snapshotEvery: 0, onFatal: () => undefined });
    for (let i = 0; i < 300; i++) await engine.submit({ type: "task.submit", payload: { taskId: `t${i}`, kind: "k", payload: { text: "z".repeat(i % 7 === 0 ? 5000 : 500) } } });
    const all = await engine.readLog(1, 1000);
    assert.equal(all.length, 300, "a large budget: the whole limit");
    const seen: number[] = [];
    for (let from = 1; from <= 300; ) {
      const page = await engine.readLog(from, 1000, 4000);
      assert.ok(page.length >= 1);
      assert.ok(page.length === 1 || page.length * 600 <= 4000 + 5600, `page of ${page.length} entries`);
      for (const entry of page) assert.deepEqual(entry, all[entry.index - 1], "the same entry as in one read");
      seen.push(...page.map((entry) => entry.index));
      from = (page.at(-1)?.index ?? from) + 1;
    }
    assert.deepEqual(seen, Array.from({ length: 300 }, (_, i) => i + 1));
    assert.equal((await engine.readLog(7 * 3 + 1, 1000, 10)).length, 1, "an entry over the budget still comes alone");
    await engine.close();
  });
});
