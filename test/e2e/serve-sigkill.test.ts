/**
 * The server as a child process, SIGKILLed under concurrent HTTP load (SPEC G1,
 * G3, G5): 32 writers post `task.submit` with idempotency ids and record every
 * command answered 200; at a seeded random moment the server is killed; then
 * `swoosh verify` must pass on the data dir, and a restarted server must hold
 * every acknowledged command exactly once:
 *
 *  - every acknowledged task is in GET /state, whose hash recomputes, and no
 *    task is there that was never sent;
 *  - resubmitting an acknowledged command (same id) answers `duplicate: true`
 *    with the index and HLC of the original acknowledgement;
 *  - every command in flight at the kill, resubmitted, is applied at most once
 *    (duplicate if it had become durable, applied now if not);
 *  - in the log the server still holds, no task is submitted twice.
 *
 * Seeded: the seed is printed and SWOOSH_SEED replays the same kill moments;
 * SWOOSH_E2E_KILL_ROUNDS sets the number of kills (default 4).
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { computeStateHash } from "../../src/core/hash.ts";
import { seededRandom } from "../../src/core/seeded-random.ts";
import { tempDir } from "../support/engine-fixtures.ts";
import { http, killAll, runCli, startServe, stopServe } from "./processes.ts";
import type { ServeProcess } from "./processes.ts";

const seed = Number(process.env.SWOOSH_SEED ?? Date.now() % 2 ** 31);
const rounds = Number(process.env.SWOOSH_E2E_KILL_ROUNDS ?? 4);
const WRITERS = 32;
/** Each writer stops after this many commands in a round, whatever the timing. */
const COMMANDS_PER_WRITER_MAX = 2_000;
/** Acknowledged commands resubmitted after each restart (all in-flight ones are, too). */
const RESUBMIT_SAMPLE = 128;
/** Small enough that the load crosses several snapshots (and WAL truncations) per round. */
const SNAPSHOT_EVERY = 150;

interface Ack {
  readonly index: number;
  readonly hlc: string;
}

interface CommandAnswer {
  index: number;
  hlc: string;
  duplicate?: boolean;
  result: { taskId: string; created: boolean };
}

function submitBody(id: string) {
  return { type: "task.submit", id, payload: { taskId: id, kind: "load", payload: { id } } };
}

after(killAll);

/** Ledger of what the test sent and what the server acknowledged, over all rounds. */
class Ledger {
  readonly acked = new Map<string, Ack>();
  /** Sent, but the connection died before an answer: durable or not, nobody knows. */
  readonly inFlight = new Set<string>();
  readonly unexpected: string[] = [];
}

/** 32 writers until the server dies (or each hits its bound); resolves when all have stopped. */
async function load(url: string, round: number, ledger: Ledger): Promise<number> {
  let acknowledged = 0;
  const writer = async (w: number) => {
    for (let n = 0; n < COMMANDS_PER_WRITER_MAX; n++) {
      const id = `r${round}-w${w}-${n}`;
      let answer;
      try {
        answer = await http(url, "POST", "/command", { body: submitBody(id) });
      } catch {
        ledger.inFlight.add(id);
        return;
      }
      if (answer.status !== 200) {
        ledger.unexpected.push(`${id}: HTTP ${answer.status} ${JSON.stringify(answer.body)}`);
        return;
      }
      const { index, hlc } = answer.body as CommandAnswer;
      ledger.acked.set(id, { index, hlc });
      acknowledged++;
    }
  };
  await Promise.all(Array.from({ length: WRITERS }, (_, w) => writer(w)));
  return acknowledged;
}

type WireEntry = { index: number; type: string; id?: string; payload: { taskId?: string } };

/** The log the server still holds (snapshots truncate older entries), page by page. */
async function heldLog(url: string, lastIndex: number): Promise<{ firstIndex: number; entries: WireEntry[] }> {
  const entries: WireEntry[] = [];
  let firstIndex = 0;
  let from: number | null = null;
  // Bounded: one page per 1000 entries of the log, plus one.
  for (let page = 0; page <= lastIndex / 1000 + 1; page++) {
    const { status, body } = await http(url, "GET", `/log?limit=1000${from === null ? "" : `&from=${from}`}`);
    assert.equal(status, 200, JSON.stringify(body));
    const answer = body as { firstIndex: number; entries: WireEntry[] };
    if (from === null) firstIndex = answer.firstIndex;
    entries.push(...answer.entries);
    const last = answer.entries.at(-1);
    if (last === undefined || last.index >= lastIndex) break;
    from = last.index + 1;
  }
  return { firstIndex, entries };
}

/** Everything the restarted server must show about the ledger (see the module comment). */
async function checkRecovered(server: ServeProcess, ledger: Ledger, random: () => number): Promise<void> {
  const context = `seed ${seed}`;
  const { body } = await http(server.url, "GET", "/state");
  const read = body as { index: number; stateHash: string; state: { tasks: Record<string, unknown> } };
  assert.equal(read.stateHash, computeStateHash(read.state), `${context}: GET /state hash does not recompute`);
  // An idle orchestrator logs nothing by itself (no leases, no ticks): nothing ran since recovery.
  assert.equal(read.index, server.recoveredIndex, `${context}: the state read is the recovered one`);
  const hasTask = (id: string) => Object.prototype.hasOwnProperty.call(read.state.tasks, id);
  for (const [id, ack] of ledger.acked) assert.ok(hasTask(id), `${context}: acknowledged ${id} (index ${ack.index}) was lost`);
  for (const id of Object.keys(read.state.tasks)) {
    assert.ok(ledger.acked.has(id) || ledger.inFlight.has(id), `${context}: task ${id} was never sent`);
  }

  // Read-only until here, so no snapshot can truncate the log while it is read.
  const { firstIndex, entries } = await heldLog(server.url, read.index);
  assert.equal(entries.length, read.index - firstIndex + 1, `${context}: the log from ${firstIndex} to ${read.index} has gaps`);
  const loggedAt = new Map<string, number>();
  for (const entry of entries) {
    assert.equal(entry.type, "task.submit", `${context}: only the load writes to this log`);
    const taskId = entry.payload.taskId as string;
    assert.equal(loggedAt.get(taskId), undefined, `${context}: ${taskId} logged at ${loggedAt.get(taskId)} and again at ${entry.index}`);
    assert.equal(entry.id, taskId, `${context}: entry ${entry.index} lost its idempotency id`);
    loggedAt.set(taskId, entry.index);
    const ack = ledger.acked.get(taskId);
    if (ack !== undefined) assert.equal(entry.index, ack.index, `${context}: ${taskId} acknowledged at ${ack.index}, logged at ${entry.index}`);
  }

  // In-flight commands: a resubmission is the client's retry; it must be applied at most once in all.
  for (const id of ledger.inFlight) {
    const answer = await http(server.url, "POST", "/command", { body: submitBody(id) });
    assert.equal(answer.status, 200, `${context}: resubmitting ${id}: ${JSON.stringify(answer.body)}`);
    const { index, hlc, duplicate } = answer.body as CommandAnswer;
    assert.equal(duplicate === true, hasTask(id), `${context}: ${id} was durable: ${hasTask(id)}, answered duplicate: ${duplicate}`);
    ledger.acked.set(id, { index, hlc });
  }
  ledger.inFlight.clear();

  const ids = [...ledger.acked.keys()];
  for (let i = 0; i < Math.min(RESUBMIT_SAMPLE, ids.length); i++) {
    const id = ids[Math.floor(random() * ids.length)] as string;
    const answer = await http(server.url, "POST", "/command", { body: submitBody(id) });
    assert.equal(answer.status, 200, `${context}: resubmitting ${id}`);
    const again = answer.body as CommandAnswer;
    assert.equal(again.duplicate, true, `${context}: acknowledged ${id} was applied a second time`);
    assert.deepEqual({ index: again.index, hlc: again.hlc }, ledger.acked.get(id), `${context}: ${id} answered with another outcome`);
  }
}

describe(`swoosh serve under SIGKILL (seed ${seed}, rounds ${rounds})`, () => {
  it("keeps every acknowledged command exactly once across kills, and the data dir verifies", { timeout: 180_000 }, async (t) => {
    t.diagnostic(`seed ${seed} (replay with SWOOSH_SEED=${seed})`);
    const random = seededRandom(seed);
    const { dir: dataDir, cleanup } = await tempDir("swoosh-e2e-kill-");
    t.after(cleanup);
    const ledger = new Ledger();
    const serveArgs = ["--data-dir", dataDir, "--snapshot-every", String(SNAPSHOT_EVERY)];

    for (let round = 0; round < rounds; round++) {
      const server = await startServe(serveArgs);
      if (round > 0) await checkRecovered(server, ledger, random);
      const killAfterMs = 200 + Math.floor(random() * 1000);
      const killer = setTimeout(() => server.child.kill("SIGKILL"), killAfterMs);
      const acknowledged = await load(server.url, round, ledger);
      clearTimeout(killer);
      server.child.kill("SIGKILL");
      const exit = await server.exited;
      assert.equal(exit.signal, "SIGKILL", `seed ${seed}: the server died on its own (${exit.code}): ${server.stderr()}`);
      assert.deepEqual(ledger.unexpected, [], `seed ${seed}: answers other than 200 before the kill`);
      t.diagnostic(`round ${round}: killed after ${killAfterMs} ms, ${acknowledged} acknowledged, ${ledger.inFlight.size} in flight`);

      const verify = await runCli(["verify", "--data-dir", dataDir]);
      assert.equal(verify.status, 0, `seed ${seed}: swoosh verify after kill ${round}:\n${verify.stdout}${verify.stderr}`);
    }

    const last = await startServe(serveArgs);
    try {
      await checkRecovered(last, ledger, random);
    } finally {
      assert.equal((await stopServe(last)).code, 0, last.stderr());
    }
    const verify = await runCli(["verify", "--data-dir", dataDir]);
    assert.equal(verify.status, 0, `seed ${seed}: swoosh verify at the end:\n${verify.stdout}${verify.stderr}`);
    assert.ok(ledger.acked.size > 0, "the load got commands acknowledged before the kills");
    t.diagnostic(`seed ${seed}: ${rounds} kills, ${ledger.acked.size} commands acknowledged, none lost or applied twice`);
  });
});
