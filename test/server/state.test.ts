/**
 * GET /state (ETag, If-None-Match, ?at with 404/410/400) and POST /state
 * genesis initialization (201/200/409/422/400), including a server started
 * with awaitGenesis whose readyz turns 200 only after it.
 */
import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import { describe, it } from "node:test";
import type { TestContext } from "node:test";
import { computeStateHash } from "../../src/core/hash.ts";
import { canonicalJSON } from "../../src/core/json.ts";
import { defaultGenesis } from "../../src/index.ts";
import { STATE_TEXTS_SENDING_MAX } from "../../src/server/routes/state.ts";
import { command, eventually, get, post, startTestServer } from "./helpers.ts";

/** ~12 MB of state (6,000 tasks of 2 KB payloads, indexes 1–6,000): more than loopback buffers take from a client that reads nothing. */
async function fillLargeState(url: string): Promise<void> {
  for (let from = 0; from < 6000; from += 400) {
    const commands = Array.from({ length: 400 }, (_, i) => ({ type: "task.submit", payload: { taskId: `t${from + i}`, kind: "k", payload: { pad: "x".repeat(2000) } } }));
    assert.equal((await post(url, "/commands", { commands })).status, 200);
  }
}

/**
 * Clients that ask for a path and read nothing once the answer has started
 * (`stallOn` gives the status line they got); destroyed after the test, by a
 * hook registered before the server's own clean-up so that it does not wait
 * for these connections.
 */
function slowReaders(t: TestContext): { stalled: net.Socket[]; stallOn: (url: string, path: string) => Promise<string> } {
  const stalled: net.Socket[] = [];
  t.after(() => {
    for (const socket of stalled) socket.destroy();
  });
  const stallOn = async (url: string, path: string): Promise<string> => {
    const socket = net.connect(Number(new URL(url).port), "127.0.0.1");
    stalled.push(socket);
    socket.on("error", () => undefined);
    socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    await new Promise((resolve) => socket.once("readable", resolve));
    const first = (socket.read(64) as Buffer | null)?.toString("latin1") ?? "";
    return first.slice(0, first.indexOf("\r\n"));
  };
  return { stalled, stallOn };
}

describe("server: state and genesis", () => {
  it("serves the state with its hash as ETag and answers If-None-Match with 304", async (t) => {
    const { url } = await startTestServer(t);
    await command(url, "agent.register", { agentId: "a" });
    const first = await get(url, "/state");
    assert.equal(first.status, 200);
    assert.deepEqual(Object.keys(first.body), ["index", "hlc", "stateHash", "logHash", "state"]);
    assert.equal(first.body.index, 1);
    assert.equal(first.body.stateHash, computeStateHash(first.body.state));
    assert.equal(first.headers.get("etag"), `"${first.body.stateHash}"`);

    const etag = first.headers.get("etag") as string;
    for (const header of [etag, first.body.stateHash, `W/${etag}`, `"nope", ${etag}`, "*"]) {
      const again = await get(url, "/state", { "if-none-match": header });
      assert.equal(again.status, 304, header);
      assert.equal(again.text, "");
    }
    assert.equal((await get(url, "/state", { "if-none-match": '"0000"' })).status, 200);

    await command(url, "agent.register", { agentId: "b" });
    const changed = await get(url, "/state", { "if-none-match": etag });
    assert.equal(changed.status, 200);
    assert.notEqual(changed.body.stateHash, first.body.stateHash);
    assert.equal(changed.body.index, 2);
  });

  it("a large state is sent as its canonical text at one index while commands go on", async (t) => {
    const { url } = await startTestServer(t);
    // ~1.5 MB of state: its text is read in many slices, with the event loop free between them.
    const submit = (from: number, count: number) =>
      post(
        url,
        "/commands",
        { commands: Array.from({ length: count }, (_, i) => ({ type: "task.submit", payload: { taskId: `t${from + i}`, kind: "k", payload: { n: from + i, pad: "x".repeat(200) } } })) },
      );
    for (let from = 0; from < 6000; from += 500) assert.equal((await submit(from, 500)).status, 200);

    // Commands sent after the GET are applied while its text is being read:
    // new tasks, and changes to tasks whose text comes last (ids sort as strings).
    const cancel = (from: number) =>
      post(url, "/commands", { commands: Array.from({ length: 10 }, (_, i) => ({ type: "task.cancel", payload: { taskId: `t${from + i}` } })) });
    const reading = get(url, "/state");
    const writes = Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? submit(10_000 + i * 10, 10) : cancel(900 + i * 10))));
    const [read, written] = await Promise.all([reading, writes]);
    for (const answer of written) assert.equal(answer.status, 200);

    assert.equal(read.status, 200);
    assert.equal(read.headers.get("content-length"), String(Buffer.byteLength(read.text)));
    assert.deepEqual(Object.keys(read.body), ["index", "hlc", "stateHash", "logHash", "state"]);
    const stateText = read.text.slice(read.text.indexOf('"state":') + '"state":'.length, -1);
    assert.equal(stateText, canonicalJSON(read.body.state), "the state member is its canonical text");
    assert.equal(read.body.stateHash, computeStateHash(read.body.state));
    assert.equal(read.headers.get("etag"), `"${read.body.stateHash}"`);
    // It is the state of the index it names, which ?at rebuilds from the log.
    const rebuilt = await get(url, `/state?at=${read.body.index}`);
    assert.equal(rebuilt.body.stateHash, read.body.stateHash);
    assert.equal(rebuilt.body.logHash, read.body.logHash);
    const now = await get(url, "/state");
    assert.equal(now.body.index, 6000 + 200, "every command is in the state read afterwards");
    assert.equal(Object.keys(now.body.state.tasks).length, 6000 + 100);
    assert.equal(now.body.state.tasks.t999.status, "cancelled");
  });

  it("holds at most a few state texts for clients that read slowly: past them GET /state is 503 until one is done", async (t) => {
    const { stalled, stallOn } = slowReaders(t);
    const { url } = await startTestServer(t);
    await fillLargeState(url);
    const stall = async (agentId: string): Promise<void> => {
      // A command first: each stalled reader is at its own index, so each holds its own text.
      assert.equal((await command(url, "agent.register", { agentId })).status, 200);
      assert.equal(await stallOn(url, "/state"), "HTTP/1.1 200 OK");
    };
    for (let i = 0; i < STATE_TEXTS_SENDING_MAX - 1; i++) await stall(`a${i}`);

    // One place left: clients reading the same index at once share it, as they share the text.
    assert.equal((await command(url, "agent.register", { agentId: "shared" })).status, 200);
    const together = await Promise.all([get(url, "/state"), get(url, "/state"), get(url, "/state")]);
    assert.deepEqual(together.map((answer) => answer.status), [200, 200, 200]);
    assert.equal(new Set(together.map((answer) => answer.body.stateHash)).size, 1);
    // Reads of different things count from the moment they start: two time travels at once, one place.
    const travels = await Promise.all([get(url, "/state?at=3"), get(url, "/state?at=4")]);
    assert.deepEqual(travels.map((answer) => answer.status).sort(), [200, 503]);

    await stall("last");
    // (At the index "last" reads, a read would share its text: one more command makes a new one.)
    assert.equal((await command(url, "agent.register", { agentId: "after-last" })).status, 200);
    const refused = await get(url, "/state");
    assert.equal(refused.status, 503);
    assert.equal(refused.body.error.code, "unavailable");
    assert.equal(refused.headers.get("retry-after"), "1");
    assert.equal((await get(url, "/state?at=5")).status, 503);
    // Everything else goes on: writes, polls answered from the remembered hash, other reads.
    assert.equal((await command(url, "agent.register", { agentId: "late" })).status, 200);
    // If-None-Match: * is false while there is a state (RFC 9110 §13.1.2): 304 with its ETag, no text to send, no slot needed.
    const anyTag = await get(url, "/state", { "if-none-match": "*" });
    assert.equal(anyTag.status, 304, anyTag.text);
    assert.equal(anyTag.text, "");
    const anyTagAt5 = await get(url, "/state?at=5", { "if-none-match": "*" });
    assert.equal(anyTagAt5.status, 304, anyTagAt5.text);
    const pastEnd = await get(url, "/state?at=999999", { "if-none-match": "*" });
    assert.equal(pastEnd.status, 404, "an index with no state keeps its error");
    assert.equal((await get(url, "/tasks/t5")).status, 200);

    // One slow reader goes away: its text is let go and the next read is served, whole.
    (stalled.shift() as net.Socket).destroy();
    const served = await eventually(async () => {
      const answer = await get(url, "/state");
      return answer.status === 200 ? answer : undefined;
    }, 10_000, "GET /state served again");
    assert.equal(served.body.stateHash, computeStateHash(served.body.state));
    assert.equal(Object.keys(served.body.state.tasks).length, 6000);
    assert.ok(Object.hasOwn(served.body.state.agents, "late"));
    assert.equal(anyTag.headers.get("etag"), `"${served.body.stateHash}"`, "the 304 carried the current ETag");
    assert.equal(anyTagAt5.headers.get("etag"), `"${(await get(url, "/state?at=5")).body.stateHash}"`);
  });

  it("reads of one ?at share one text, also once it is being sent; distinct ones count against the bound", async (t) => {
    const { stallOn } = slowReaders(t);
    const { url } = await startTestServer(t);
    // ~12 MB of state at every index past 4,000.
    await fillLargeState(url);
    const stall = (path: string): Promise<string> => stallOn(url, path);
    // Six slow readers of one index at once, then three more of it one by one (while it is being sent): one text.
    const together = await Promise.all(Array.from({ length: 6 }, () => stall("/state?at=4500")));
    assert.deepEqual(together, Array(6).fill("HTTP/1.1 200 OK"));
    for (let i = 0; i < 3; i++) assert.equal(await stall("/state?at=4500"), "HTTP/1.1 200 OK");
    // So there is room for STATE_TEXTS_SENDING_MAX - 1 other texts, and no more.
    for (let i = 1; i < STATE_TEXTS_SENDING_MAX; i++) assert.equal(await stall(`/state?at=${4500 + i * 100}`), "HTTP/1.1 200 OK", `text ${i + 1}`);
    const refused = await get(url, "/state?at=5500");
    assert.equal(refused.status, 503, refused.text);
    assert.equal(refused.body.error.details?.sending, STATE_TEXTS_SENDING_MAX, refused.text);
    assert.equal(await stall("/state?at=4500"), "HTTP/1.1 200 OK", "a text being sent is shared even at the bound");
  });

  it("serves ?at=INDEX, with 404 past the end, 400 for a bad index and 410 once history is pruned", async (t) => {
    const { url } = await startTestServer(t, { snapshotEvery: 2 });
    const hashes = new Map<number, string>([[0, (await get(url, "/state")).body.stateHash]]);
    // Snapshots every 2 commands, 3 kept: the WAL is truncated below the oldest kept one. Write until it is.
    let firstIndex = 1;
    for (let i = 1; i <= 2000 && firstIndex < 4; i++) {
      assert.equal((await command(url, "agent.register", { agentId: `a${i}` })).status, 200);
      const state = await get(url, "/state");
      hashes.set(state.body.index, state.body.stateHash);
      const log = await get(url, "/log?limit=1");
      assert.equal(log.status, 200, log.text);
      firstIndex = log.body.firstIndex;
    }
    assert.ok(firstIndex >= 4, `the WAL was truncated (first index ${firstIndex})`);
    const lastIndex = Math.max(...hashes.keys());
    // A snapshot started by the last command may still truncate: wait until the first index holds still.
    firstIndex = await eventually(async () => {
      const before = (await get(url, "/log?limit=1")).body.firstIndex;
      await new Promise((resolve) => setTimeout(resolve, 200));
      const after = (await get(url, "/log?limit=1")).body.firstIndex;
      return before === after ? after : undefined;
    }, 5000, "the WAL to stop being truncated");

    for (const at of [lastIndex, lastIndex - 1, firstIndex, firstIndex + 1]) {
      const answer = await get(url, `/state?at=${at}`);
      assert.equal(answer.status, 200, `at=${at}: ${answer.text}`);
      assert.equal(answer.body.index, at);
      assert.equal(answer.body.stateHash, hashes.get(at), `at=${at}`);
      assert.equal(answer.headers.get("etag"), `"${hashes.get(at)}"`);
      assert.equal(Object.keys(answer.body.state.agents).length, at);
    }
    assert.equal((await get(url, `/state?at=${lastIndex - 1}`, { "if-none-match": `"${hashes.get(lastIndex - 1)}"` })).status, 304);

    const pruned = await get(url, "/state?at=1");
    assert.equal(pruned.status, 410, pruned.text);
    assert.equal(pruned.body.error.code, "history_pruned");
    const past = await get(url, `/state?at=${lastIndex + 1}`);
    assert.equal(past.status, 404);
    assert.equal(past.body.error.code, "not_found");
    for (const bad of ["-1", "abc", "1.5", "1e3", "+1", ""]) {
      const answer = await get(url, `/state?at=${bad}`);
      assert.equal(answer.status, 400, bad);
      assert.equal(answer.body.error.code, "bad_request");
    }
    // An integer past 2^53 is past the end like any other, not malformed: 404 here, an empty page from /log, 404 from /watch.
    for (const huge of ["9007199254740992", "99999999999999999999"]) {
      assert.equal((await get(url, `/state?at=${huge}`)).body.error?.code, "not_found", huge);
      const log = await get(url, `/log?from=${huge}`);
      assert.equal(log.status, 200, log.text);
      assert.deepEqual(log.body.entries, []);
      assert.equal((await get(url, `/watch?from=${huge}`)).status, 404, huge);
      assert.equal((await get(url, "/watch", { "last-event-id": huge })).status, 404, huge);
    }
    assert.equal((await get(url, "/state?at=1&at=2")).status, 400);
    const oldLog = await get(url, "/log?from=1");
    assert.equal(oldLog.status, 410);
    assert.equal(oldLog.body.error.code, "history_pruned");
  });

  it("with awaitGenesis: readyz 503 until POST /state initializes; then 200, same again 200, another 409", async (t) => {
    const { url, server, dataDir } = await startTestServer(t, { awaitGenesis: true });
    assert.equal(server.genesisHash, null);
    const before = await get(url, "/readyz");
    assert.equal(before.status, 503);
    assert.equal(before.body.error.code, "unavailable");
    assert.equal((await get(url, "/healthz")).status, 200);
    assert.equal((await get(url, "/state")).status, 503);
    assert.equal((await command(url, "agent.register", { agentId: "a" })).status, 503);

    const genesis = defaultGenesis("await-test");
    // Bad documents are refused before anything is written.
    const mismatch = await post(url, "/state", { ...genesis, stateHash: "0".repeat(64) });
    assert.equal(mismatch.status, 422);
    assert.equal(mismatch.body.error.code, "genesis_hash_mismatch");
    const malformed = await post(url, "/state", { clusterId: "x" });
    assert.equal(malformed.status, 400);
    assert.equal(malformed.body.error.code, "bad_request");
    // Hashed right, but no orchestrator state: binding the dir to it would leave a dir no server can open.
    const notAState = await post(url, "/state", { ...genesis, state: { foo: 1 }, stateHash: computeStateHash({ foo: 1 }) });
    assert.equal(notAState.status, 400, notAState.text);
    assert.equal(notAState.body.error.code, "bad_request");
    assert.match(notAState.body.error.message, /schemaVersion/);
    const badConfig = { ...genesis.state, config: { ...(genesis.state.config as object), backoffBaseMs: 5000, backoffMaxMs: 10 } };
    assert.equal((await post(url, "/state", { ...genesis, state: badConfig, stateHash: computeStateHash(badConfig) })).status, 400);
    assert.deepEqual(await readdir(dataDir), []);

    const created = await post(url, "/state", genesis);
    assert.equal(created.status, 201, created.text);
    assert.deepEqual(created.body, { clusterId: "await-test", stateHash: genesis.stateHash, created: true });
    assert.equal(server.genesisHash, genesis.stateHash);
    const ready = await get(url, "/readyz");
    assert.equal(ready.status, 200);
    assert.equal(ready.body.genesisHash, genesis.stateHash);
    assert.equal((await command(url, "agent.register", { agentId: "a" })).status, 200);

    const same = await post(url, "/state", genesis);
    assert.equal(same.status, 200);
    assert.equal(same.body.created, false);
    const other = await post(url, "/state", defaultGenesis("another"));
    assert.equal(other.status, 409);
    assert.equal(other.body.error.code, "already_initialized");
    assert.equal((await post(url, "/state", { ...genesis, stateHash: "f".repeat(64) })).status, 422);
    assert.ok((await readdir(dataDir)).includes("genesis.json"));
  });

  it("POST /state on a server opened with a default genesis: 200 for it, 409 for another", async (t) => {
    const { url, server, dataDir } = await startTestServer(t);
    const genesis = JSON.parse(
      await import("node:fs/promises").then((fs) => fs.readFile(path.join(dataDir, "genesis.json"), "utf8")),
    ) as { stateHash: string };
    assert.equal(genesis.stateHash, server.genesisHash);
    const same = await post(url, "/state", genesis);
    assert.equal(same.status, 200, same.text);
    assert.equal(same.body.created, false);
    const other = await post(url, "/state", defaultGenesis("other"));
    assert.equal(other.status, 409);
    assert.equal(other.body.error.code, "already_initialized");
  });
});
