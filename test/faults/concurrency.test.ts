/**
 * Concurrency over HTTP (SPEC §6 leases, fencing tokens): 64 agents claim and
 * complete at once against `swoosh serve` (a child process) in a cluster with
 * short leases (leaseTtlMs 300, heartbeatTimeoutMs 1200), so leases expire
 * all the time: agents sometimes stall past their lease or go silent until
 * they are taken offline, heartbeat to extend, fail tasks for a retry, and
 * send completions with tokens they know are stale.
 *
 * Checked while it runs (a poller reads GET /state, one consistent index per
 * read): a fencing token is only ever on one task; a task's token never goes
 * back; a leased task has exactly one lease, held by a live agent within its
 * capacity; a terminal task never changes again.
 *
 * Checked at the end, from the answers and the whole log:
 *  - every deliberately stale completion was refused 409 stale_lease;
 *  - claim tokens strictly increase over the log, and per task;
 *  - an accepted completion carried the newest token granted for its task
 *    (from the claim answers: an independent record);
 *  - replaying the log locally, every accepted completion and failure matched
 *    the task's live lease at that point, each task became terminal exactly
 *    once and never left it, and the replay's state hash is the server's;
 *  - every task ended (succeeded, or failed with its attempts used up);
 *  - `swoosh verify` agrees after a clean stop.
 *
 * SWOOSH_CONCURRENCY_TASKS sets the tasks (400 by default); SWOOSH_SEED replays
 * the agents' choices (timing still varies).
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { computeStateHash } from "../../src/core/hash.ts";
import { hlcWallMs } from "../../src/core/hlc.ts";
import type { JsonObject } from "../../src/core/json.ts";
import { seededRandom } from "../../src/core/seeded-random.ts";
import { orchestratorMachine } from "../../src/domain/index.ts";
import type { Task } from "../../src/domain/index.ts";
import type { OrchestratorModel } from "../../src/domain/index.ts";
import type { Engine } from "../../src/engine/engine.ts";
import { initializeDataDir } from "../../src/engine/open.ts";
import { defaultGenesis, openSwoosh } from "../../src/index.ts";
import { startServer as startInProcess } from "../../src/server/index.ts";
import { LmdbCommandLog } from "../../src/storage/lmdb-log.ts";
import { NodeFileSystem } from "../../src/storage/node-fs.ts";
import type { LogRecord } from "../../src/core/log-record.ts";
import { FaultyLog, tempDir, tempDirClosedFirst } from "../support/engine-fixtures.ts";
import { NoAnswer, getJson, request, killChildren, scaled, post, readLog, seedFromEnv, sleep, spawnServer, stopServer, verifyCli, writeGenesis } from "./harness.ts";
import type { Answer } from "./harness.ts";

const seed = seedFromEnv();
const TASKS = scaled("SWOOSH_CONCURRENCY_TASKS", 400, 4000);
const AGENTS = 64;
const LEASE_TTL_MS = 300;
const HEARTBEAT_TIMEOUT_MS = 1200;
const MAX_ATTEMPTS = 20;
/**
 * The whole run may take this long at most (then the test fails with what it
 * saw). 400 tasks take 30–60 s in CI; on a machine loaded ~5× past its 2 cores
 * one run took past 100 s, so the bound leaves room for that.
 */
const RUN_BOUND_MS = 60_000 + TASKS * 250;

after(killChildren);

/** A log whose appends wait `delayMs` first: keeps commands in flight on purpose. */
class DelayedLog extends FaultyLog {
  delayMs = 0;
  override async append(records: readonly LogRecord[]): Promise<void> {
    if (this.delayMs > 0) await sleep(this.delayMs);
    return super.append(records);
  }
}

interface StateRead {
  index: number;
  stateHash: string;
  state: { agents: Record<string, { status: string; capacity: number }>; tasks: Record<string, Task> };
}

describe(`faults: 64 agents claiming and completing with expiring leases (seed ${seed}, ${TASKS} tasks)`, () => {
  it("never two live leases on a task, stale completions refused, every task ends exactly once", { timeout: RUN_BOUND_MS + 120_000 }, async (t) => {
    const random = seededRandom(seed);
    const { dir, cleanup } = await tempDir("swoosh-concurrency-");
    t.after(cleanup);
    const { file: genesisFile, genesis } = await writeGenesis(dir, "concurrency", {
      leaseTtlMs: LEASE_TTL_MS,
      heartbeatTimeoutMs: HEARTBEAT_TIMEOUT_MS,
      maxAttempts: MAX_ATTEMPTS,
      backoffBaseMs: 5,
      backoffMaxMs: 50,
    });
    const dataDir = `${dir}/data`;
    const server = spawnServer(["--data-dir", dataDir, "--genesis", genesisFile, "--snapshot-every", "0"]);
    try {
      const { url } = await server.ready;
      const problems: string[] = [];
      const problem = (what: string) => {
        if (problems.length < 30) problems.push(what);
      };
      const deadline = Date.now() + RUN_BOUND_MS;

      /** POST with the refusals this test expects; anything else is a problem. */
      const send = async (command: Record<string, unknown>, allowed: readonly string[] = []): Promise<Answer | null> => {
        let answer: Answer;
        try {
          answer = await post(url, command, 30_000);
        } catch (error) {
          if (error instanceof NoAnswer) problem(`${String(command.type)}: no answer: ${error.message}`);
          else throw error;
          return null;
        }
        if (answer.status !== 200 && !allowed.includes(answer.body?.error?.code)) problem(`${String(command.type)} ${JSON.stringify(command.payload)}: HTTP ${answer.status} ${answer.text.slice(0, 200)}`);
        return answer;
      };

      // Tasks, some with priorities and dependencies (a dependency must exist first).
      for (let from = 0; from < TASKS; from += 50) {
        await Promise.all(
          Array.from({ length: Math.min(50, TASKS - from) }, (_, k) => {
            const n = from + k;
            const dependsOn = n >= 50 && n % 10 === 0 ? [`task-${n - 50}`] : [];
            return send({ type: "task.submit", id: `submit-${n}`, payload: { taskId: `task-${n}`, kind: "work", priority: n % 3, dependsOn } });
          }),
        );
      }

      // What the agents saw.
      const claims: Array<{ index: number; leases: Array<{ taskId: string; token: number }> }> = [];
      const completions: Array<{ index: number; taskId: string; token: number }> = [];
      const stale = { sent: 0, refused: 0, acceptedWrongly: [] as string[] };
      const counts = { claims: 0, leases: 0, completes: 0, completeRefused: 0, fails: 0, stalls: 0, silences: 0, heartbeats: 0, reRegistered: 0 };
      let finished = false;

      const agent = async (a: number): Promise<void> => {
        const agentId = `agent-${a}`;
        const capacity = 1 + (a % 2);
        await send({ type: "agent.register", payload: { agentId, capacity } });
        while (!finished && Date.now() < deadline) {
          const claim = await send({ type: "task.claim", payload: { agentId, limit: capacity } }, ["invalid_transition"]);
          if (claim === null) return;
          if (claim.status === 409) {
            // Taken offline while silent: come back.
            counts.reRegistered++;
            await send({ type: "agent.register", payload: { agentId, capacity } });
            continue;
          }
          counts.claims++;
          const leases = claim.body.result.leases as Array<{ taskId: string; token: number }>;
          claims.push({ index: claim.body.index as number, leases });
          if (leases.length === 0) {
            await sleep(20 + random() * 60);
            continue;
          }
          counts.leases += leases.length;
          const r = random();
          if (r < 0.12) {
            // Stall past the lease (it expires), sometimes past the heartbeat timeout (offline).
            counts.stalls++;
            if (r < 0.03) counts.silences++;
            await sleep(r < 0.03 ? HEARTBEAT_TIMEOUT_MS + 300 : LEASE_TTL_MS + 150 + random() * 200);
          } else {
            // Work, heartbeating to keep the lease.
            await sleep(random() * 120);
            if (random() < 0.5) {
              counts.heartbeats++;
              await send({ type: "agent.heartbeat", payload: { agentId } });
            }
            await sleep(random() * 120);
          }
          for (const lease of leases) {
            if (random() < 0.1) {
              // A token this agent knows is not the live one.
              stale.sent++;
              // Older than this lease (never live again: tokens only grow), or one no claim has handed out.
              const wrong = random() < 0.5 || lease.token <= 1 ? lease.token + 1_000_000 : lease.token - 1;
              const answer = await send({ type: "task.complete", payload: { taskId: lease.taskId, token: wrong } }, ["stale_lease"]);
              if (answer?.status === 409) stale.refused++;
              else if (answer !== null) stale.acceptedWrongly.push(`${lease.taskId} token ${wrong} (live ${lease.token}): HTTP ${answer.status}`);
            }
            if (random() < 0.08) {
              const failed = await send({ type: "task.fail", payload: { taskId: lease.taskId, token: lease.token, error: { code: "flaky" }, retryable: true } }, ["stale_lease"]);
              if (failed?.status === 200) counts.fails++;
              continue;
            }
            const done = await send({ type: "task.complete", payload: { taskId: lease.taskId, token: lease.token, result: { by: agentId } } }, ["stale_lease"]);
            if (done?.status === 200) {
              counts.completes++;
              completions.push({ index: done.body.index as number, taskId: lease.taskId, token: lease.token });
            } else if (done?.status === 409) counts.completeRefused++;
          }
        }
      };

      // The poller: consistent snapshots of the state, checked one after another.
      const tokenOwner = new Map<number, string>();
      const lastToken = new Map<string, number>();
      const terminalAs = new Map<string, string>();
      let polls = 0;
      const check = (read: StateRead): void => {
        if (computeStateHash(read.state) !== read.stateHash) problem(`@${read.index}: GET /state's stateHash does not recompute from its state`);
        const leasedTo = new Map<string, number>();
        for (const [id, task] of Object.entries(read.state.tasks)) {
          const lease = task.lease;
          if ((task.status === "leased") !== (lease !== undefined)) problem(`@${read.index} ${id}: status ${task.status} with lease ${JSON.stringify(lease)}`);
          const ended = terminalAs.get(id);
          if (ended !== undefined && ended !== task.status) problem(`@${read.index} ${id}: was ${ended}, now ${task.status}`);
          if (task.status === "succeeded" || task.status === "failed" || task.status === "cancelled") terminalAs.set(id, task.status);
          if (lease === undefined) continue;
          const owner = tokenOwner.get(lease.token);
          if (owner !== undefined && owner !== id) problem(`@${read.index} token ${lease.token} on ${id} and on ${owner}`);
          tokenOwner.set(lease.token, id);
          const previous = lastToken.get(id) ?? 0;
          if (lease.token < previous) problem(`@${read.index} ${id}: token went back from ${previous} to ${lease.token}`);
          lastToken.set(id, lease.token);
          const holder = read.state.agents[lease.agentId];
          if (holder === undefined || holder.status === "offline") problem(`@${read.index} ${id}: leased to ${lease.agentId}, which is ${holder?.status ?? "unknown"}`);
          leasedTo.set(lease.agentId, (leasedTo.get(lease.agentId) ?? 0) + 1);
        }
        for (const [agentId, n] of leasedTo) {
          const capacity = read.state.agents[agentId]?.capacity ?? 0;
          if (n > capacity) problem(`@${read.index} ${agentId} holds ${n} leases, capacity ${capacity}`);
        }
      };
      let lastRead: StateRead | null = null;
      const poller = (async () => {
        while (!finished && Date.now() < deadline) {
          lastRead = await getJson<StateRead>(url, "/state");
          polls++;
          check(lastRead);
          const tasks = Object.values(lastRead.state.tasks);
          if (tasks.length === TASKS && tasks.every((task) => task.status === "succeeded" || task.status === "failed" || task.status === "cancelled")) finished = true;
          await sleep(40);
        }
        finished = true;
      })();

      const started = Date.now();
      await Promise.all([poller, ...Array.from({ length: AGENTS }, (_, a) => agent(a))]);
      const runMs = Date.now() - started;
      assert.deepEqual(problems, [], `seed ${seed}: problems while running`);
      assert.deepEqual(stale.acceptedWrongly, [], `seed ${seed}: stale completions accepted`);
      assert.equal(stale.refused, stale.sent, "every stale completion refused with 409 stale_lease");

      // Every task ended. Halted, the server stops ticking (agents going silent now), so the read below is the last state.
      await send({ type: "orchestrator.setPhase", payload: { phase: "halted" } });
      const final = await getJson<StateRead>(url, "/state");
      check(final);
      const statuses = new Map<string, number>();
      for (const task of Object.values(final.state.tasks)) statuses.set(task.status, (statuses.get(task.status) ?? 0) + 1);
      for (const [id, task] of Object.entries(final.state.tasks)) {
        assert.ok(task.status === "succeeded" || task.status === "failed" || task.status === "cancelled", `seed ${seed}: ${id} did not end (${task.status}) within ${RUN_BOUND_MS} ms`);
        if (task.status === "failed") assert.equal(task.attempts, MAX_ATTEMPTS, `${id} failed with attempts left`);
        // Nobody cancels here: only the cascade from a failed dependency can.
        if (task.status === "cancelled") assert.ok(task.dependsOn.some((dep) => final.state.tasks[dep]?.status !== "succeeded"), `${id} cancelled with its dependencies succeeded`);
      }

      // Claims (from the answers): tokens strictly increase in log order, and per task.
      claims.sort((x, y) => x.index - y.index);
      let previousToken = 0;
      const granted = new Map<string, Array<{ index: number; token: number }>>();
      for (const claim of claims) {
        for (const lease of claim.leases) {
          assert.ok(lease.token > previousToken, `token ${lease.token} at ${claim.index} after ${previousToken}`);
          previousToken = lease.token;
          const list = granted.get(lease.taskId) ?? [];
          list.push({ index: claim.index, token: lease.token });
          granted.set(lease.taskId, list);
        }
      }
      // An accepted completion carried the newest token granted for its task before it.
      const completedBy = new Map<string, number>();
      for (const completion of completions) {
        const before = (granted.get(completion.taskId) ?? []).filter((g) => g.index < completion.index);
        assert.equal(completion.token, before.at(-1)?.token, `${completion.taskId}: completed at ${completion.index} with token ${completion.token}, newest granted ${before.at(-1)?.token}`);
        assert.equal(completedBy.get(completion.taskId), undefined, `${completion.taskId} completed twice`);
        completedBy.set(completion.taskId, completion.index);
      }
      for (const [id, task] of Object.entries(final.state.tasks)) assert.equal(completedBy.has(id), task.status === "succeeded", `${id}: ${task.status}, completion accepted: ${completedBy.has(id)}`);

      // The whole log, replayed locally: completions and failures met the live lease; each task ended once.
      const { entries } = await readLog(url, 1);
      assert.equal(entries.at(-1)?.index, final.index);
      const model = orchestratorMachine.restore(JSON.parse(JSON.stringify(genesis.state)) as JsonObject);
      const tasksOf = () => (orchestratorMachine.state(model) as unknown as { tasks: Record<string, Task> }).tasks;
      // A task ends (becomes terminal) only through these; only they are scanned, over the tasks still open.
      const ENDING = new Set(["task.complete", "task.fail", "task.cancel", "system.tick", "agent.remove"]);
      const terminal = (status: string | undefined) => status === "succeeded" || status === "failed" || status === "cancelled";
      const endedAt = new Map<string, number>();
      /** The record each task ended with: records are replaced, never mutated (reducer rule 2), so any later change shows as another object. */
      const endedAs = new Map<string, Task>();
      const open = new Set<string>();
      let ticks = 0;
      for (const entry of entries) {
        if (entry.type === "task.complete" || entry.type === "task.fail") {
          const live = tasksOf()[entry.payload.taskId as string];
          assert.equal(live?.status, "leased", `entry ${entry.index}: ${entry.type} of a task that is ${live?.status}`);
          assert.equal(live?.lease?.token, entry.payload.token, `entry ${entry.index}: ${entry.type} with token ${entry.payload.token}, live ${live?.lease?.token}`);
        }
        if (entry.type === "system.tick") ticks++;
        const outcome = orchestratorMachine.apply(model, { type: entry.type, payload: entry.payload }, { hlc: entry.hlc, index: entry.index, nowMs: hlcWallMs(entry.hlc) });
        assert.ok(outcome.ok, `entry ${entry.index} replays`);
        const tasks = tasksOf();
        if (entry.type === "task.submit" && !endedAt.has(entry.payload.taskId as string)) open.add(entry.payload.taskId as string);
        if (!ENDING.has(entry.type) && entry.type !== "task.submit") continue;
        for (const id of open) {
          const task = tasks[id] as Task;
          if (!terminal(task.status)) continue;
          assert.equal(endedAt.get(id), undefined, `${id} ended twice`);
          endedAt.set(id, entry.index);
          endedAs.set(id, task);
          open.delete(id);
        }
      }
      for (const [id, record] of endedAs) assert.equal(tasksOf()[id], record, `${id} changed after it ended at ${endedAt.get(id)}`);
      assert.equal(endedAt.size, TASKS, "every task ended exactly once");
      assert.equal(computeStateHash(orchestratorMachine.state(model)), final.stateHash, "the local replay's state hash is the server's");

      const stop = await stopServer(server);
      assert.equal(stop.code, 0, server.stderr());
      const verify = await verifyCli(dataDir);
      assert.equal(verify.status, 0, verify.stdout);
      assert.equal(verify.report?.finalStateHash, final.stateHash);
      t.diagnostic(
        `${TASKS} tasks by ${AGENTS} agents in ${runMs} ms: ${JSON.stringify(Object.fromEntries(statuses))}; ${counts.claims} claims leased ${counts.leases}, ` +
          `${counts.completes} completions accepted, ${counts.completeRefused} refused as stale (lease lost), ${stale.sent} deliberately stale refused, ` +
          `${counts.fails} retryable failures, ${counts.stalls} stalls (${counts.silences} past the heartbeat timeout), ${counts.reRegistered} re-registrations, ` +
          `${ticks} ticks; ${polls} state snapshots checked; ${entries.length} log entries replayed`,
      );
    } finally {
      server.child.kill("SIGKILL");
      await server.exited;
    }
  });

  it("a read answered while writes are in flight shows only durable state", { timeout: 60_000 }, async (t) => {
    const { dir, closeFirst } = await tempDirClosedFirst(t, "swoosh-read-durable-");
    // The server in this process, its WAL behind a log whose flushes take FLUSH_MS: commands stay in flight on purpose.
    const FLUSH_MS = 300;
    let log: DelayedLog | null = null;
    let engine: Engine<OrchestratorModel> | null = null;
    const server = await startInProcess({
      dataDir: dir,
      port: 0,
      logger: false,
      onFatal: () => undefined,
      async openEngine(options) {
        const genesis = defaultGenesis("read-durable");
        await initializeDataDir(new NodeFileSystem(), options.dataDir, genesis);
        log = new DelayedLog(await LmdbCommandLog.open(`${options.dataDir}/wal`));
        engine = await openSwoosh({ ...options, genesis, log });
        return engine;
      },
    });
    closeFirst(() => server.close());
    const durable = () => (engine as unknown as Engine<OrchestratorModel>).stats().durableIndex;
    assert.equal((await post(server.url, { type: "agent.register", payload: { agentId: "a" } })).status, 200);
    (log as unknown as DelayedLog).delayMs = FLUSH_MS;
    const seen: Array<{ what: string; index: number; durable: number }> = [];
    const atAnswers: number[] = [];
    // A: in flight. A read waits for it. B arrives while A flushes (applied, not durable).
    const a = post(server.url, { type: "task.submit", payload: { taskId: "A", kind: "k" } });
    await sleep(20);
    const reads = [
      getJson<{ index: number }>(server.url, "/state").then((r) => seen.push({ what: "GET /state", index: r.index, durable: durable() })),
      request(server.url, "GET", "/tasks/B").then((r) => seen.push({ what: `GET /tasks/B (${r.status})`, index: r.status === 200 ? Number.POSITIVE_INFINITY : 0, durable: durable() })),
      // Time travel to the index that is durable when the read runs: exactly that index, not the live one.
      getJson<{ index: number }>(server.url, "/state?at=2").then((r) => atAnswers.push(r.index)),
    ];
    await sleep(FLUSH_MS / 3);
    const b = post(server.url, { type: "task.submit", payload: { taskId: "B", kind: "k" } });
    await Promise.all(reads);
    await Promise.all([a, b]);
    for (const read of seen) assert.ok(read.index <= read.durable, `${read.what} answered with index ${read.index} while only ${read.durable} was durable`);
    assert.deepEqual(atAnswers, [2], "GET /state?at=2 answers the state at index 2");
  });
});
