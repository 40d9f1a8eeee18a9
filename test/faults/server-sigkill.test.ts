/**
 * SIGKILL against the real server (SPEC G1, G3, G4, G5): `swoosh serve` runs as
 * a child process; 32 HTTP writers post a mix of commands, each with an
 * idempotency id (agent.register, agent.heartbeat, task.submit, task.claim, and
 * task.complete with the tokens their claims got); the server is SIGKILLed at a
 * seeded random moment — under load, or while it is still starting and
 * recovering — and restarted on the same data dir. A writer records every
 * command answered 200, and retries the command that got no answer (a
 * connection error or 503) with the same id after the restart, as a client
 * would. A follower reads GET /log while the load runs, so the test holds the
 * whole history even though snapshots truncate the WAL.
 *
 * After every kill:
 *  - `swoosh verify --data-dir D` exits 0;
 *  - the restarted server's recovered index is the WAL's last index, and GET
 *    /state's hash equals verify's offline replay (`finalStateHash`);
 *  - the log is one hash chain from genesis (prevHash links, across restarts);
 *  - every id appears in the log once (no command applied twice), every
 *    acknowledged command is in the log at the index it was acknowledged with,
 *    acknowledged tasks exist and acknowledged completions left them succeeded;
 *  - a retried command is answered `duplicate: true` with its logged index iff it
 *    had become durable before the kill, and is applied now otherwise;
 *  - no reader was shown an index the kill took back (a poller reads GET /tasks
 *    during the load: reads show durable state only).
 *
 * SWOOSH_KILL_ROUNDS sets the kills (3 by default, 200 in `npm run test:faults`);
 * the seed is printed and SWOOSH_SEED replays the kill moments and the mix.
 */
import assert from "node:assert/strict";
import { mkdir, readdir } from "node:fs/promises";
import path from "node:path";
import { after, describe, it } from "node:test";
import { computeStateHash } from "../../src/core/hash.ts";
import { seededRandom } from "../../src/core/seeded-random.ts";
import { DURATION_MS_MAX } from "../../src/domain/limits.ts";
import { tempDir } from "../support/engine-fixtures.ts";
import { NoAnswer, getJson, intEnv, killChildren, post, request, seedFromEnv, sleep, spawnServer, stopServer, verifyCli, writeGenesis } from "./harness.ts";
import type { Answer, ServerChild, ServerInfo, WireEntry } from "./harness.ts";

const seed = seedFromEnv();
const rounds = intEnv("SWOOSH_KILL_ROUNDS", 3);
const WRITERS = 32;
/** A fresh data dir every this many rounds, so long runs do not slow down as the state grows. */
const ROUNDS_PER_DATA_DIR = 10;
/**
 * Snapshots every 300 commands in every other data dir, so kills land in
 * snapshot writes and WAL truncations too; none in the others, whose whole
 * log stays readable for the exactly-once check.
 */
const SNAPSHOT_EVERY = [300, 0] as const;
/** Each writer stops after this many commands per round, whatever the timing. */
const COMMANDS_PER_WRITER_MAX = 400;
/** One round (start, load, kill, checks) may take this long at most. */
const ROUND_TIMEOUT_MS = 120_000;

after(killChildren);

type Command = { type: string; id: string; payload: Record<string, unknown> };

interface Ack {
  readonly command: Command;
  readonly index: number;
  readonly duplicate: boolean;
}

/** One writer's client state; it survives the server's restarts. */
class Writer {
  /** Sent, no answer yet (connection died, or 503): retried first, same id, same body. */
  pending: Command | null = null;
  /** Leases this writer's agent holds (from acknowledged claims), to complete. */
  readonly held: Array<{ taskId: string; token: number }> = [];
  registered = false;
  sequence = 0;
  constructor(readonly w: number) {}

  get agentId(): string {
    return `agent-${this.w}`;
  }

  next(random: () => number): Command {
    if (this.pending) return this.pending;
    const id = `w${this.w}-${this.sequence++}`;
    if (!this.registered) return { type: "agent.register", id, payload: { agentId: this.agentId, capacity: 4, labels: ["load"] } };
    const lease = this.held[0];
    const r = random();
    if (lease !== undefined && r < 0.3) return { type: "task.complete", id, payload: { taskId: lease.taskId, token: lease.token, result: { by: this.w } } };
    if (r < 0.7) return { type: "task.submit", id, payload: { taskId: `t-${id}`, kind: "load", payload: { writer: this.w }, priority: Math.floor(random() * 3) } };
    if (r < 0.9) return { type: "task.claim", id, payload: { agentId: this.agentId, limit: 2 } };
    return { type: "agent.heartbeat", id, payload: { agentId: this.agentId } };
  }

  /** Applies an acknowledged answer to the writer's view. */
  acknowledged(command: Command, body: { result: any }): void { // eslint-disable-line @typescript-eslint/no-explicit-any
    if (command.type === "agent.register") this.registered = true;
    if (command.type === "task.claim") for (const lease of body.result.leases as Array<{ taskId: string; token: number }>) this.held.push(lease);
    if (command.type === "task.complete") {
      const at = this.held.findIndex((lease) => lease.taskId === command.payload.taskId);
      if (at >= 0) this.held.splice(at, 1);
    }
  }
}

/** What the test knows, over all rounds of one data dir. */
class Ledger {
  readonly acks = new Map<string, Ack>();
  /** The log as the follower and the checks read it, in index order (gaps where a truncation outran the follower). */
  readonly log: WireEntry[] = [];
  /** Index ranges a snapshot's WAL truncation removed before the follower read them. */
  readonly gaps: Array<{ from: number; to: number }> = [];
  /** Commands resent after a restart: id → whether it was in the log before the resend. */
  readonly retried: Array<{ command: Command; wasLoggedAt: number | undefined; answer: Ack }> = [];
  readonly unexpected: string[] = [];
  readonly writers = Array.from({ length: WRITERS }, (_, w) => new Writer(w));
  genesisHash = "";
  /** Last index read, and its hash (null right after a gap). */
  lastIndex = 0;
  private lastHash: string | null = null;
  /** The highest index a reader was shown (G1: reads show durable state only, so it survives any kill). */
  readIndexMax = 0;
  acknowledged = 0;
  retries = 0;

  get nextIndex(): number {
    return this.lastIndex + 1;
  }

  get unseen(): number {
    return this.gaps.reduce((sum, gap) => sum + gap.to - gap.from + 1, 0);
  }

  inGap(index: number): boolean {
    return this.gaps.some((gap) => index >= gap.from && index <= gap.to);
  }

  /** Appends entries read from /log, checking that they continue the chain. */
  extend(entries: readonly WireEntry[], context: string): void {
    for (const entry of entries) {
      if (entry.index < this.nextIndex) continue;
      assert.equal(entry.index, this.nextIndex, `${context}: the log jumps from ${this.lastIndex} to ${entry.index}`);
      const prev = this.lastIndex === 0 ? this.genesisHash : this.lastHash;
      if (prev !== null) assert.equal(entry.prevHash, prev, `${context}: entry ${entry.index} does not continue the chain`);
      this.log.push(entry);
      this.lastIndex = entry.index;
      this.lastHash = entry.hash;
    }
  }

  /** The WAL now starts at `firstIndex`: what lay before it and was not read is a gap. */
  skipTo(firstIndex: number): void {
    if (firstIndex <= this.nextIndex) return;
    this.gaps.push({ from: this.nextIndex, to: firstIndex - 1 });
    this.lastIndex = firstIndex - 1;
    this.lastHash = null;
  }

  /** Reads /log from nextIndex to the end; a 410 (truncated past us) becomes a gap. */
  async catchUp(url: string, context: string): Promise<void> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const answer = await request(url, "GET", `/log?from=${this.nextIndex}&limit=1000`);
      if (answer.status === 410) {
        this.skipTo(answer.body.error.details.firstIndex as number);
        continue;
      }
      if (answer.status !== 200) throw new Error(`${context}: GET /log: HTTP ${answer.status} ${answer.text.slice(0, 300)}`);
      this.extend(answer.body.entries as WireEntry[], context);
      if ((answer.body.entries as WireEntry[]).length === 0 || this.lastIndex >= (answer.body.lastIndex as number)) return;
      attempt = -1;
    }
  }

  loggedIndexOf(id: string): number | undefined {
    return this.idIndex.get(id);
  }

  private idIndex = new Map<string, number>();
  private indexed = 0;

  /** Each id once in the log read; acknowledged ones at their acknowledged index (unless it fell in a gap). */
  checkLog(context: string): void {
    for (; this.indexed < this.log.length; this.indexed++) {
      const entry = this.log[this.indexed] as WireEntry;
      if (entry.id === undefined) continue;
      const seen = this.idIndex.get(entry.id);
      assert.equal(seen, undefined, `${context}: id ${entry.id} applied twice, at ${seen} and at ${entry.index}`);
      this.idIndex.set(entry.id, entry.index);
    }
    for (const [id, ack] of this.acks) {
      if (this.inGap(ack.index)) continue;
      const at = this.idIndex.get(id);
      assert.equal(at, ack.index, `${context}: ${id} (${ack.command.type}) acknowledged at ${ack.index}, logged at ${at}`);
    }
  }
}

/**
 * Reads /log every few ms while the load runs. A snapshot truncates the WAL
 * below the oldest kept snapshot; right after the first one that is just below
 * the head, so a follower that lags by a few entries can miss them: they are
 * recorded as a gap (only with snapshots on; without, the whole log is read).
 */
function follow(url: string, ledger: Ledger, context: string): { stop: () => Promise<void> } {
  let running = true;
  const loop = (async () => {
    while (running) {
      const before = ledger.lastIndex;
      try {
        await ledger.catchUp(url, context);
      } catch (error) {
        if (error instanceof NoAnswer) return;
        if (running) ledger.unexpected.push(`${context}: log follower: ${(error as Error).message}`);
        return;
      }
      if (ledger.lastIndex === before) await sleep(10);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
    },
  };
}

/**
 * Reads the state's index (GET /tasks?limit=1, one engine read) while the load
 * runs: whatever a reader was shown must survive the kill.
 */
function watchReads(url: string): { stop: () => Promise<number> } {
  let running = true;
  let maxIndex = 0;
  const loop = (async () => {
    while (running) {
      try {
        const answer = await getJson<{ index: number }>(url, "/tasks?limit=1");
        maxIndex = Math.max(maxIndex, answer.index);
      } catch {
        return;
      }
      await sleep(15);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return maxIndex;
    },
  };
}

/** 32 writers until the server stops answering (or each hits its bound). */
async function load(url: string, ledger: Ledger, random: () => number, round: number): Promise<void> {
  const writer = async (state: Writer): Promise<void> => {
    for (let n = 0; n < COMMANDS_PER_WRITER_MAX; n++) {
      const command = state.next(random);
      const retry = state.pending !== null;
      const wasLoggedAt = retry ? ledger.loggedIndexOf(command.id) : undefined;
      let answer: Answer;
      try {
        answer = await post(url, command, 30_000);
      } catch (error) {
        if (!(error instanceof NoAnswer)) throw error;
        state.pending = command;
        return;
      }
      if (answer.status === 503) {
        state.pending = command;
        return;
      }
      if (answer.status !== 200) {
        ledger.unexpected.push(`round ${round}: ${command.type} ${command.id}: HTTP ${answer.status} ${answer.text.slice(0, 300)}`);
        state.pending = null;
        return;
      }
      state.pending = null;
      const ack: Ack = { command, index: answer.body.index as number, duplicate: answer.body.duplicate === true };
      if (retry) {
        ledger.retries++;
        ledger.retried.push({ command, wasLoggedAt, answer: ack });
      }
      const first = ledger.acks.get(command.id);
      if (first === undefined) {
        ledger.acks.set(command.id, ack);
        ledger.acknowledged++;
      } else if (first.index !== ack.index) {
        ledger.unexpected.push(`${command.id} acknowledged at ${first.index} and again at ${ack.index}`);
      }
      state.acknowledged(command, answer.body);
    }
  };
  await Promise.all(ledger.writers.map((state) => writer(state)));
}

/** Everything that must hold right after a restart (see the module comment). */
async function checkRecovered(server: ServerInfo, ledger: Ledger, expected: { lastIndex: number; stateHash: string }, context: string): Promise<void> {
  assert.equal(server.recoveredIndex, expected.lastIndex, `${context}: recovered index vs the WAL's last index`);
  assert.ok(server.recoveredIndex >= ledger.readIndexMax, `${context}: a reader was shown index ${ledger.readIndexMax}, the kill left ${server.recoveredIndex}`);
  const read = await getJson<{ index: number; stateHash: string; state: { tasks: Record<string, { status: string }> } }>(server.url, "/state");
  // No leases expire and no agent goes silent in this cluster (30-day TTLs): the server writes nothing by itself.
  assert.equal(read.index, expected.lastIndex, `${context}: GET /state is the recovered state`);
  assert.equal(read.stateHash, expected.stateHash, `${context}: recovered state hash vs the offline replay`);
  assert.equal(computeStateHash(read.state), read.stateHash, `${context}: GET /state's hash does not recompute`);

  await ledger.catchUp(server.url, context);
  assert.equal(ledger.lastIndex, read.index, `${context}: the followed log ends at the recovered index`);
  ledger.checkLog(context);

  const has = (id: string) => Object.prototype.hasOwnProperty.call(read.state.tasks, id);
  for (const [id, ack] of ledger.acks) {
    const { type, payload } = ack.command;
    if (type === "task.submit") assert.ok(has(payload.taskId as string), `${context}: acknowledged task ${String(payload.taskId)} (${id}) lost`);
    if (type === "task.complete") assert.equal(read.state.tasks[payload.taskId as string]?.status, "succeeded", `${context}: acknowledged completion ${id} lost`);
  }
}

/** After the retries of a round: each was a duplicate iff it had been logged before the resend. */
function checkRetries(ledger: Ledger, context: string): void {
  for (const { command, wasLoggedAt, answer } of ledger.retried) {
    if (wasLoggedAt !== undefined) {
      assert.ok(answer.duplicate, `${context}: retry of ${command.id}, durable at ${wasLoggedAt} before the kill, was applied again at ${answer.index}`);
      assert.equal(answer.index, wasLoggedAt, `${context}: retry of ${command.id} answered with another index`);
    } else if (answer.duplicate) {
      // Durable, but in a stretch of log the follower could not read: the original index must be there.
      assert.ok(ledger.inGap(answer.index), `${context}: retry of ${command.id} claims to be a duplicate of ${answer.index}, which does not hold it`);
    }
  }
  ledger.retried.length = 0;
}

/** Temp files in the snapshot dir (a snapshot write in progress, or one a kill interrupted). */
async function snapshotTemps(dataDir: string): Promise<string[]> {
  return (await readdir(path.join(dataDir, "snapshots")).catch(() => [] as string[])).filter((name) => name.includes(".tmp-"));
}

describe(`swoosh serve under SIGKILL with retrying HTTP writers (seed ${seed}, rounds ${rounds})`, () => {
  it("keeps every acknowledged command, applies each id once, and recovers the replay's state hash", { timeout: Math.max(600_000, rounds * ROUND_TIMEOUT_MS) }, async (t) => {
    t.diagnostic(`seed ${seed} (replay with SWOOSH_SEED=${seed} SWOOSH_KILL_ROUNDS=${rounds})`);
    const random = seededRandom(seed);
    const { dir: root, cleanup } = await tempDir("swoosh-server-kill-");
    t.after(cleanup);
    const { file: genesisFile, genesis } = await writeGenesis(root, "sigkill", { leaseTtlMs: DURATION_MS_MAX, heartbeatTimeoutMs: DURATION_MS_MAX });
    const totals = { kills: 0, startupKills: 0, acknowledged: 0, retries: 0, commandsLogged: 0, unseen: 0, dataDirs: 0, tempsLeft: 0 };
    let startupMs = 1500;

    let ledger = new Ledger();
    let dataDir = "";
    let snapshotEvery: number = SNAPSHOT_EVERY[0];
    let used = false;
    const finishDataDir = async (context: string): Promise<void> => {
      // The last restart of a data dir: recover, retry what is pending, then a clean stop and verify.
      const verify = await verifyCli(dataDir);
      assert.equal(verify.status, 0, `${context}: swoosh verify:\n${verify.stdout}${verify.stderr}`);
      const server = spawnServer(["--data-dir", dataDir, "--genesis", genesisFile, "--snapshot-every", String(snapshotEvery)]);
      try {
        const info = await server.ready;
        await checkRecovered(info, ledger, { lastIndex: verify.report?.walLastIndex ?? -1, stateHash: verify.report?.finalStateHash ?? "" }, context);
        for (const writer of ledger.writers) {
          if (!writer.pending) continue;
          const command = writer.pending;
          const wasLoggedAt = ledger.loggedIndexOf(command.id);
          const answer = await post(info.url, command);
          assert.equal(answer.status, 200, `${context}: final retry of ${command.id}: ${answer.text}`);
          writer.pending = null;
          const ack: Ack = { command, index: answer.body.index as number, duplicate: answer.body.duplicate === true };
          ledger.retried.push({ command, wasLoggedAt, answer: ack });
          ledger.retries++;
          if (!ledger.acks.has(command.id)) {
            ledger.acks.set(command.id, ack);
            ledger.acknowledged++;
          }
        }
        await ledger.catchUp(info.url, context);
        ledger.checkLog(context);
        checkRetries(ledger, context);
      } finally {
        const exit = await stopServer(server);
        assert.equal(exit.code, 0, `${context}: clean stop: ${server.stderr()}`);
      }
      const final = await verifyCli(dataDir);
      assert.equal(final.status, 0, `${context}: swoosh verify after the clean stop:\n${final.stdout}${final.stderr}`);
      assert.deepEqual(ledger.unexpected, [], `${context}: unexpected answers`);
      // Every command carries an id and is retried until answered, and this cluster never ticks: each logged entry is
      // one distinct acknowledged command. (This count also covers entries that fell into a gap.)
      assert.equal(ledger.lastIndex, ledger.acknowledged, `${context}: log entries vs distinct acknowledged commands`);
      totals.acknowledged += ledger.acknowledged;
      totals.retries += ledger.retries;
      totals.commandsLogged += ledger.log.length;
      totals.unseen += ledger.unseen;
    };

    for (let round = 0; round < rounds; round++) {
      const context = `seed ${seed}, round ${round}`;
      if (round % ROUNDS_PER_DATA_DIR === 0) {
        if (used) await finishDataDir(`${context} (closing the previous data dir)`);
        dataDir = path.join(root, `data-${round}`);
        snapshotEvery = SNAPSHOT_EVERY[totals.dataDirs % SNAPSHOT_EVERY.length] as number;
        await mkdir(dataDir);
        ledger = new Ledger();
        ledger.genesisHash = genesis.stateHash;
        used = false;
        totals.dataDirs++;
      }
      // 1 in 8 kills lands while the server starts: loading, recovery, replay, the first snapshot.
      const duringStartup = used && random() < 0.125;
      let expected: { lastIndex: number; stateHash: string } | null = null;
      if (used) {
        // A kill during a snapshot write leaves its temp file; the next server removes it.
        totals.tempsLeft += (await snapshotTemps(dataDir)).length;
        const verify = await verifyCli(dataDir);
        assert.equal(verify.status, 0, `${context}: swoosh verify after the kill:\n${verify.stdout}${verify.stderr}`);
        expected = { lastIndex: verify.report?.walLastIndex ?? -1, stateHash: verify.report?.finalStateHash ?? "" };
      }
      used = true;
      const server: ServerChild = spawnServer(["--data-dir", dataDir, "--genesis", genesisFile, "--snapshot-every", String(snapshotEvery)]);
      const guard = setTimeout(() => server.child.kill("SIGKILL"), ROUND_TIMEOUT_MS);
      try {
        if (duringStartup) {
          // Around the time the last start took: loading the code, recovery, the listen.
          const killAfterMs = Math.floor(startupMs * (0.6 + random() * 0.6));
          await sleep(killAfterMs);
          server.child.kill("SIGKILL");
          const exit = await server.exited;
          totals.kills++;
          totals.startupKills++;
          t.diagnostic(`round ${round}: killed ${killAfterMs} ms after spawn, during startup (${exit.signal ?? `exit ${exit.code}`})`);
          continue;
        }
        const info = await server.ready;
        startupMs = info.startupMs;
        const stale = (await snapshotTemps(dataDir)).filter((name) => !name.includes(`.tmp-${server.child.pid}-`));
        assert.deepEqual(stale, [], `${context}: temp files of killed snapshot writes were left`);
        if (expected !== null) await checkRecovered(info, ledger, expected, context);
        const killAfterMs = 100 + Math.floor(random() * 1400);
        const follower = follow(info.url, ledger, context);
        const reader = watchReads(info.url);
        const ackedBefore = ledger.acknowledged;
        const killer = setTimeout(() => server.child.kill("SIGKILL"), killAfterMs);
        await load(info.url, ledger, random, round);
        clearTimeout(killer);
        server.child.kill("SIGKILL");
        const exit = await server.exited;
        await follower.stop();
        ledger.readIndexMax = Math.max(ledger.readIndexMax, await reader.stop());
        assert.equal(exit.signal, "SIGKILL", `${context}: the server died on its own (exit ${exit.code}): ${server.stderr()}`);
        // The log itself is checked after the restart: the follower may not have read the last entries before the kill.
        checkRetries(ledger, context);
        assert.deepEqual(ledger.unexpected, [], `${context}: unexpected answers`);
        totals.kills++;
        const pending = ledger.writers.filter((w) => w.pending !== null).length;
        t.diagnostic(`round ${round}: killed ${killAfterMs} ms after ready, ${ledger.acknowledged - ackedBefore} acknowledged, ${pending} to retry`);
      } finally {
        clearTimeout(guard);
        server.child.kill("SIGKILL");
        await server.exited;
      }
    }
    if (used) await finishDataDir(`seed ${seed}, end`);
    t.diagnostic(
      `seed ${seed}: ${totals.kills} kills (${totals.startupKills} during startup) over ${totals.dataDirs} data dirs, ` +
        `${totals.acknowledged} commands acknowledged, ${totals.retries} retried, ${totals.commandsLogged} log entries read and checked ` +
        `(${totals.unseen} truncated before the follower read them, covered by the count), 0 lost, 0 applied twice; ` +
        `${totals.tempsLeft} temp files of killed snapshot writes removed at restart`,
    );
    assert.ok(totals.acknowledged > 0, "the load got commands acknowledged");
  });
});
