/**
 * A disk that fills up, and a disk that fails (SPEC G1: a failed flush is
 * fatal for the writer, never retried, never acknowledged; the server stops
 * taking writes and exits non-zero; a restart recovers from disk).
 *
 * Disk full: the data dir lives on a 2 MiB tmpfs (needs root; skipped with the
 * reason otherwise), `swoosh serve` runs in a child process, and 16 writers
 * post task.submit until the disk is full. Every answer must be 200 or 503
 * `unavailable` — or no answer once the process is gone — and none may hang;
 * the server must exit non-zero (lmdb-js 3.5.6 may abort with 134 after a
 * failed page write: any non-zero exit counts). Then the tmpfs is remounted
 * larger in place, `swoosh verify` must pass, and a restarted server must hold
 * every acknowledged command, the replay's state hash, and take writes again.
 * A restart is required: the writer is poisoned by design.
 *
 * Injected EIO: a fixture runs the server with its WAL opened through the
 * `openEngine` seam with LmdbCommandLog failpoints; SIGUSR2 makes the next
 * append fail with EIO before its flush (nothing written) or after it
 * (durable, never acknowledged). In-flight requests get 503, the default
 * onFatal logs and exits 1; a restart recovers every acknowledged command, and
 * a client retry of each refused command is applied exactly once.
 *
 * SWOOSH_DISKFULL_ROUNDS sets the disk-full rounds (2 by default).
 */
import assert from "node:assert/strict";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { seededRandom } from "../../src/core/seeded-random.ts";
import { tempDir } from "../support/engine-fixtures.ts";
import { NoAnswer, getJson, killChildren, scaled, post, readLog, seedFromEnv, spawnServer, stopServer, verifyCli } from "./harness.ts";
import { mountTmpfsAt, resizeTmpfs, unmount } from "../support/tmpfs.ts";
import type { ServerChild } from "./harness.ts";

const seed = seedFromEnv();
const diskFullRounds = scaled("SWOOSH_DISKFULL_ROUNDS", 2, 10);
const fixture = fileURLToPath(new URL("./fixtures/serve-failpoint.ts", import.meta.url));
const WRITERS = 16;
/** No writer sends more than this (a 2 MiB disk holds far fewer). */
const COMMANDS_PER_WRITER_MAX = 2000;
/** An answer slower than this is a hang. */
const ANSWER_TIMEOUT_MS = 20_000;
/** The server must exit within this after the disk filled. */
const EXIT_TIMEOUT_MS = 30_000;

after(killChildren);

interface Outcomes {
  readonly acked: Map<string, number>;
  readonly refused: string[];
  readonly noAnswer: string[];
  readonly hangs: string[];
  readonly unexpected: string[];
}

function submit(id: string, payloadBytes: number) {
  return { type: "task.submit", id, payload: { taskId: id, kind: "fill", payload: { pad: "x".repeat(payloadBytes) } } };
}

/** WRITERS writers until each gets a refusal or no answer. */
async function fill(url: string, prefix: string, payloadBytes: () => number, onAck?: () => void): Promise<Outcomes> {
  const outcomes: Outcomes = { acked: new Map(), refused: [], noAnswer: [], hangs: [], unexpected: [] };
  const writer = async (w: number): Promise<void> => {
    for (let n = 0; n < COMMANDS_PER_WRITER_MAX; n++) {
      const id = `${prefix}-w${w}-${n}`;
      try {
        const answer = await post(url, submit(id, payloadBytes()), ANSWER_TIMEOUT_MS);
        if (answer.status === 200) {
          outcomes.acked.set(id, answer.body.index as number);
          onAck?.();
          continue;
        }
        if (answer.status === 503 && answer.body?.error?.code === "unavailable") outcomes.refused.push(id);
        else outcomes.unexpected.push(`${id}: HTTP ${answer.status} ${answer.text.slice(0, 300)}`);
      } catch (error) {
        if (!(error instanceof NoAnswer)) throw error;
        if (error.timedOut) outcomes.hangs.push(id);
        else outcomes.noAnswer.push(id);
      }
      return;
    }
    outcomes.unexpected.push(`writer ${w} sent ${COMMANDS_PER_WRITER_MAX} commands without the disk filling`);
  };
  await Promise.all(Array.from({ length: WRITERS }, (_, w) => writer(w)));
  return outcomes;
}

async function exitWithin(server: ServerChild, ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null } | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<null>((resolve) => {
    timer = setTimeout(() => resolve(null), ms);
  });
  try {
    return await Promise.race([server.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Restarts on `dataDir` (after verify), checks every acknowledged task and the replay hash; returns the task ids held. */
async function recoverAndCheck(dataDir: string, acked: Map<string, number>, context: string): Promise<{ server: ServerChild; url: string; tasks: Set<string> }> {
  const verify = await verifyCli(dataDir);
  assert.equal(verify.status, 0, `${context}: swoosh verify after the failure:\n${verify.stdout}${verify.stderr}`);
  const server = spawnServer(["--data-dir", dataDir]);
  const info = await server.ready;
  const read = await getJson<{ index: number; stateHash: string; state: { tasks: Record<string, unknown> } }>(info.url, "/state");
  assert.equal(read.index, verify.report?.walLastIndex, `${context}: recovered index`);
  assert.equal(read.stateHash, verify.report?.finalStateHash, `${context}: recovered state hash vs the offline replay`);
  const tasks = new Set(Object.keys(read.state.tasks));
  for (const [id, index] of acked) assert.ok(tasks.has(id), `${context}: acknowledged ${id} (index ${index}) lost`);
  // Acknowledged commands are where they were acknowledged, as far as the WAL still holds them (snapshots truncate it).
  const { firstIndex, entries } = await readLog(info.url, "oldest");
  const at = new Map(entries.map((entry) => [entry.id, entry.index]));
  for (const [id, index] of acked) if (index >= firstIndex) assert.equal(at.get(id), index, `${context}: ${id} acknowledged at ${index}`);
  return { server, url: info.url, tasks };
}

describe(`faults: disk full and I/O errors (seed ${seed})`, () => {
  it(`a full disk: 503 or no answer (never a hang), exit non-zero, nothing acknowledged lost (${diskFullRounds} rounds)`, { timeout: 600_000 + diskFullRounds * 60_000 }, async (t) => {
    const random = seededRandom(seed);
    const { dir: root, cleanup } = await tempDir("swoosh-diskfull-");
    t.after(cleanup);
    const mountpoint = path.join(root, "mnt");
    await mkdir(mountpoint);
    const refused = await mountTmpfsAt(mountpoint, "2m");
    if (refused !== null) {
      t.skip(`skipped: ${refused}`);
      return;
    }
    await unmount(mountpoint);
    const totals = { acked: 0, refused: 0, noAnswer: 0, exits: new Map<string, number>() };
    for (let round = 0; round < diskFullRounds; round++) {
      const context = `seed ${seed}, disk-full round ${round}`;
      // Vary what fills the disk: big or small commands, with or without snapshots competing for space.
      const payloadBytes = [200, 2000, 20_000][Math.floor(random() * 3)] as number;
      const snapshotEvery = random() < 0.5 ? 0 : 20 + Math.floor(random() * 100);
      // Mounted large enough for a new data dir (NEW_DATA_DIR_FREE_BYTES_MIN), shrunk to 2 MiB once the server runs.
      const refusal = await mountTmpfsAt(mountpoint, "80m");
      assert.equal(refusal, null, `${context}: mount`);
      let server: ServerChild | null = null;
      try {
        const dataDir = path.join(mountpoint, "data");
        server = spawnServer(["--data-dir", dataDir, "--snapshot-every", String(snapshotEvery)]);
        const info = await server.ready;
        await resizeTmpfs(mountpoint, "2m");
        const outcomes = await fill(info.url, `r${round}`, () => payloadBytes);
        const exit = await exitWithin(server, EXIT_TIMEOUT_MS);
        assert.notEqual(exit, null, `${context}: the server did not exit within ${EXIT_TIMEOUT_MS} ms of the disk filling`);
        assert.deepEqual(outcomes.hangs, [], `${context}: requests that hung`);
        assert.deepEqual(outcomes.unexpected, [], `${context}: answers other than 200 and 503 unavailable`);
        assert.ok(exit?.code !== 0, `${context}: the server exited 0 after a failed flush (${JSON.stringify(exit)})`);
        assert.ok(outcomes.refused.length + outcomes.noAnswer.length > 0, `${context}: nothing was refused`);
        const how = exit?.signal ?? `exit ${exit?.code}`;
        totals.exits.set(how, (totals.exits.get(how) ?? 0) + 1);
        if (exit?.code === 1) assert.match(server.stderr(), /flush|data\.mdb/, `${context}: the fatal error is logged, naming the WAL`);
        assert.doesNotMatch(server.stderr(), /"level":60.*"msg":"unexpected error"/, `${context}: no unexpected errors`);

        // Space returns (the same tmpfs, remounted larger): verify, recover, and write again.
        await resizeTmpfs(mountpoint, "64m");
        const recovered = await recoverAndCheck(dataDir, outcomes.acked, context);
        server = recovered.server;
        const again = await post(recovered.url, submit(`r${round}-after`, 10));
        assert.equal(again.status, 200, `${context}: writes after the restart: ${again.text}`);
        const stop = await stopServer(server);
        assert.equal(stop.code, 0, `${context}: clean stop after recovery: ${server.stderr()}`);
        const final = await verifyCli(dataDir);
        assert.equal(final.status, 0, `${context}: verify after the clean stop:\n${final.stdout}`);
        totals.acked += outcomes.acked.size;
        totals.refused += outcomes.refused.length;
        totals.noAnswer += outcomes.noAnswer.length;
        t.diagnostic(
          `round ${round}: ${payloadBytes}-byte payloads, snapshotEvery ${snapshotEvery}: ${outcomes.acked.size} acknowledged, ` +
            `${outcomes.refused.length} answered 503, ${outcomes.noAnswer.length} without answer, server ${how}; recovered all, verify OK`,
        );
      } finally {
        if (server !== null) {
          server.child.kill("SIGKILL");
          await server.exited;
        }
        await unmount(mountpoint);
      }
    }
    t.diagnostic(`seed ${seed}: ${diskFullRounds} disk-full rounds, ${totals.acked} acknowledged, ${totals.refused} refused with 503, ${totals.noAnswer} unanswered, exits ${JSON.stringify([...totals.exits])}, 0 lost`);
  });

  for (const mode of ["before", "after"] as const) {
    it(`an EIO injected ${mode} the flush: in-flight requests 503, onFatal exits 1, a restart recovers, retries apply once`, { timeout: 120_000 }, async (t) => {
      const { dir, cleanup } = await tempDir("swoosh-eio-");
      t.after(cleanup);
      const dataDir = path.join(dir, "data");
      const server = spawnServer([dataDir, mode], { fixture });
      let recovered: ServerChild | null = null;
      try {
        const info = await server.ready;
        let armedAt = -1;
        let acks = 0;
        const outcomes = await fill(info.url, `eio-${mode}`, () => 100, () => {
          // Fail the WAL once the load is well under way.
          if (++acks === 300) {
            armedAt = acks;
            server.child.kill("SIGUSR2");
          }
        });
        assert.ok(armedAt > 0, "the failpoint was armed");
        const exit = await exitWithin(server, EXIT_TIMEOUT_MS);
        assert.deepEqual(exit, { code: 1, signal: null }, `the server exits 1 after the failed flush: ${server.stderr()}`);
        assert.deepEqual(outcomes.hangs, [], "requests that hung");
        assert.deepEqual(outcomes.unexpected, [], "answers other than 200 and 503 unavailable");
        assert.ok(outcomes.refused.length > 0, "in-flight requests were answered 503");
        const injected = /INJECTED \w+ (\d+) (\d+)/.exec(server.stdout());
        assert.ok(injected, "the failpoint fired");
        const [first, last] = [Number(injected[1]), Number(injected[2])];
        assert.match(server.stderr(), /write-ahead log flush failed/, "runtime logged the failure");
        assert.match(server.stderr(), /exiting in \d+ ms; a restart recovers from disk/, "the default onFatal ran");
        assert.match(server.stderr(), /injected by the failpoint/);
        for (const index of outcomes.acked.values()) assert.ok(index < first, `index ${index} acknowledged from or after the failed batch ${first}..${last}`);

        const context = `EIO ${mode} the flush`;
        const after = await recoverAndCheck(dataDir, outcomes.acked, context);
        recovered = after.server;
        const logged = after.tasks;
        if (mode === "before") {
          for (const id of outcomes.refused) assert.ok(!logged.has(id), `${context}: ${id} answered 503 but applied`);
          assert.equal(logged.size, outcomes.acked.size, `${context}: exactly the acknowledged commands survive`);
        } else {
          // The failed batch is durable but was never acknowledged; nothing after it was written.
          const read = await getJson<{ index: number }>(after.url, "/state");
          assert.equal(read.index, last, `${context}: the log ends with the batch whose post-flush step failed`);
        }
        // The clients retry what was refused or unanswered: each is applied exactly once.
        let duplicates = 0;
        for (const id of [...outcomes.refused, ...outcomes.noAnswer]) {
          const answer = await post(after.url, submit(id, 100));
          assert.equal(answer.status, 200, `${context}: retry ${id}: ${answer.text}`);
          assert.equal(answer.body.duplicate === true, logged.has(id), `${context}: retry of ${id} (durable: ${logged.has(id)})`);
          if (answer.body.duplicate === true) duplicates++;
        }
        const stop = await stopServer(recovered);
        recovered = null;
        assert.equal(stop.code, 0);
        const final = await verifyCli(dataDir);
        assert.equal(final.status, 0, final.stdout);
        t.diagnostic(
          `${context}: batch ${first}..${last} failed; ${outcomes.acked.size} acknowledged, ${outcomes.refused.length} answered 503, ` +
            `${outcomes.noAnswer.length} without answer; after the restart all acknowledged present, ${duplicates} retries were duplicates`,
        );
      } finally {
        server.child.kill("SIGKILL");
        await server.exited;
        if (recovered !== null) {
          recovered.child.kill("SIGKILL");
          await recovered.exited;
        }
      }
    });
  }
});
