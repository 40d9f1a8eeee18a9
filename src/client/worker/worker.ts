/**
 * The worker runtime behind `runWorker`: one agent that claims tasks, runs
 * their handlers concurrently up to its capacity, and reports the outcomes.
 *
 * One loop (`pump`) sends every command, one `POST /commands` batch at a time:
 *
 *     [agent.register]  [agent.heartbeat]  task.complete | task.fail …  [task.claim]
 *
 * — register only when (re)joining; a heartbeat when due (a third of the
 * sooner of the lease TTL and the heartbeat timeout, which every heartbeat
 * answer reveals: expiresAt and offlineAt − its HLC's wall time); the
 * outcomes of finished handlers; and the next claim for the free
 * capacity, so finishing a task and taking the next one is one round trip,
 * and the claim sees the capacity its completions freed. A batch that gets
 * no answer is sent again unchanged — same idempotency ids — until it is
 * answered, so a retry never applies a command twice and no outcome is lost.
 *
 * Wake-ups, not busy polling: a `GET /watch` stream reports every applied
 * command; a submit this agent could take, a completion (dependents unblock),
 * a tick (expired leases and ended backoffs), a removed agent, an active
 * phase mean work may be claimable — unless our own last claim came
 * after that entry in the log and so already saw it. While the stream is
 * down the loop tries a claim every `pollIntervalMs`, while it is up only
 * every `idlePollIntervalMs` as a safety net.
 *
 * Lease loss: each heartbeat answer says how many leases the agent holds; when
 * that differs from what the worker believes, it reads `GET
 * /tasks?agentId=…&status=leased` and aborts the signal of every handler whose
 * lease is gone (expired, task cancelled, agent taken offline) — and adopts
 * leases it did not know it had (a previous incarnation's, after a restart).
 * A lease whose expiry passes (in server time, estimated from answer HLCs)
 * without a heartbeat getting through is aborted too — by a timer of its own,
 * so a request hanging in the loop cannot delay it — and its outcome still
 * reported: a fail or complete the server refuses as `stale_lease` is harmless,
 * one it accepts releases a lease that would otherwise live on.
 *
 * Stop: no more claims; handlers finish (aborted after the grace period);
 * their outcomes are reported; `agent.remove` releases anything left.
 */
import { SwooshClient } from "../client.ts";
import type { BatchItemResult } from "../client.ts";
import { SwooshApiError } from "../errors.ts";
import { hlcWallMs } from "../hlc.ts";
import { backoffDelayMs, sleep } from "../retry.ts";
import type { AnyCommand, ClaimedLease, CommandResult, LogEntry, Task } from "../types.ts";
import { readEvent } from "./events.ts";
import { LeaseTable } from "./leases.ts";
import type { HeldLease, LeaseLossReason } from "./leases.ts";
import { WORKER_DEFAULTS, consoleLogger } from "./options.ts";
import type { TaskContext, TaskHandler, Worker, WorkerLogger, WorkerOptions, WorkerStats } from "./options.ts";
import { newId, outcomeCommand, shrinkReport } from "./outcomes.ts";
import type { HandlerOutcome, Report } from "./outcomes.ts";
import { Wakeup } from "./wakeup.ts";

/** Commands in one POST /commands (the server's BATCH_COMMANDS_MAX). */
const BATCH_STEPS_MAX = 1000;
/** `task.claim` limit bound (CLAIM_LIMIT_MAX). */
const CLAIM_LIMIT_MAX = 1000;
/** Page size of the reconciling read. */
const RECONCILE_PAGE_SIZE = 1000;

type Step =
  | { readonly kind: "register"; readonly command: AnyCommand }
  | { readonly kind: "heartbeat"; readonly command: AnyCommand; readonly expectedLeases: number }
  | { readonly kind: "report"; readonly command: AnyCommand; readonly report: Report }
  | { readonly kind: "claim"; readonly command: AnyCommand; readonly limit: number };

type Phase = "running" | "stopping" | "done";

/** The longest delay setTimeout honours (a longer one fires at once). */
const TIMER_DELAY_MS_MAX = 2 ** 31 - 1;

export class WorkerRuntime implements Worker {
  readonly agentId: string;
  readonly ready: Promise<void>;
  readonly stopped: Promise<void>;

  private readonly client: SwooshClient;
  private readonly log: WorkerLogger;
  private readonly labels: readonly string[];
  private readonly labelSet: ReadonlySet<string>;
  private readonly capacity: number;
  private readonly handlers: Readonly<Record<string, TaskHandler>>;
  private readonly table = new LeaseTable();
  private readonly wakeup = new Wakeup();
  private readonly watchController = new AbortController();
  private outbox: Report[] = [];
  private pending: Step[] | null = null;

  private phase: Phase = "running";
  private needsRegister = true;
  private everRegistered = false;
  private registerIndex = 0;
  private agentStatus: "ready" | "draining" | "offline" = "ready";
  private removing = false;

  private claimWanted = true;
  private lastClaimIndex = 0;
  private lastClaimAtMs = 0;
  private reconcileWanted = false;
  private watchLive = false;
  private onePerBatch = false;
  private failureStreak = 0;
  private itemTrouble = false;

  private leaseTtlMs: number | undefined;
  private heartbeatTimeoutMs: number | undefined;
  private lastHeartbeatSentAtMs = Number.NEGATIVE_INFINITY;
  /** Server wall ms minus local ms, from the last answer's HLC (undefined before one). */
  private serverOffsetMs: number | undefined;
  /** Fires at the earliest local moment a held lease expires (armExpiryTimer). */
  private expiryTimer: NodeJS.Timeout | null = null;

  private graceDeadlineMs = Number.POSITIVE_INFINITY;
  private networkDeadlineMs = Number.POSITIVE_INFINITY;
  /**
   * Aborted once stopping passed `networkDeadlineMs`: a request under way
   * then (its own timeout, and the client's retries, can run far longer) and
   * the pause after a failure end at the deadline, not after them.
   */
  private readonly networkGiveUp = new AbortController();
  private networkGiveUpTimer: NodeJS.Timeout | null = null;
  private networkGiveUpAtMs = Number.POSITIVE_INFINITY;
  private stopPromise: Promise<void> | null = null;
  private resolveReady!: () => void;
  private rejectReady!: (error: unknown) => void;
  private readonly signalHandler: ((signal: NodeJS.Signals) => void) | null = null;

  private readonly counters = { claimed: 0, succeeded: 0, failed: 0, lost: 0, batches: 0 };

  constructor(private readonly options: WorkerOptions) {
    if (typeof options.agentId !== "string") throw new TypeError("runWorker: agentId must be a string");
    const capacity = options.capacity ?? WORKER_DEFAULTS.capacity;
    if (!Number.isSafeInteger(capacity) || capacity < 1) throw new RangeError("runWorker: capacity must be an integer >= 1");
    if (typeof options.handlers !== "object" || options.handlers === null) throw new TypeError("runWorker: handlers must map task kinds to functions");
    for (const [kind, handler] of Object.entries(options.handlers)) {
      if (typeof handler !== "function") throw new TypeError(`runWorker: the handler of ${JSON.stringify(kind)} is not a function`);
    }
    this.agentId = options.agentId;
    this.capacity = capacity;
    this.handlers = options.handlers;
    this.labels = [...(options.labels ?? [])];
    this.labelSet = new Set(this.labels);
    this.log = options.logger ?? consoleLogger(options.agentId);
    this.client =
      options.client ??
      new SwooshClient({
        url: options.url,
        token: options.token,
        retry: { ...WORKER_DEFAULTS.retry, ...options.retry },
        onRetry: ({ method, path, error, retry, delayMs }) => this.log.debug?.(`${method} ${path} failed; retry ${retry} in ${delayMs} ms`, { error: String(error) }),
      });

    this.ready = new Promise<void>((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    // Awaiting `ready` is optional: an unobserved rejection must not crash the process.
    this.ready.catch(() => undefined);

    if (options.handleSignals === true) {
      this.signalHandler = (signal) => {
        this.log.info?.(`${signal}: stopping (a second ${signal} ends the process at once)`);
        void this.stop();
      };
      process.once("SIGTERM", this.signalHandler);
      process.once("SIGINT", this.signalHandler);
    }

    const pumpDone = this.pump()
      .catch((error: unknown) => this.log.error?.("worker loop failed (a bug)", { error: String(error) }))
      .finally(() => this.watchController.abort());
    const watchDone = this.watchLoop();
    this.stopped = Promise.all([pumpDone, watchDone]).then(() => this.cleanUp());
  }

  stop(options: { readonly graceMs?: number } = {}): Promise<void> {
    this.stopPromise ??= (async () => {
      if (this.phase === "running") {
        this.phase = "stopping";
        const graceMs = options.graceMs ?? this.options.shutdownGraceMs ?? WORKER_DEFAULTS.shutdownGraceMs;
        this.graceDeadlineMs = Date.now() + graceMs;
        // The network deadline counts from when no handler runs: now, or at the latest once the grace is over and
        // ignored aborts are abandoned. Armed here: the loop may be waiting on a request that hangs, and never get to.
        const handlersDoneInMs = this.table.running() === 0 ? 0 : graceMs + WORKER_DEFAULTS.abandonAfterAbortMs;
        this.armNetworkGiveUp(handlersDoneInMs + this.shutdownNetworkTimeoutMs());
        this.claimWanted = false;
        this.wakeup.wake();
      }
      await this.stopped;
    })();
    return this.stopPromise;
  }

  stats(): WorkerStats {
    return { running: this.table.running(), ...this.counters, watching: this.watchLive };
  }

  // ------------------------------------------------------------------ the loop

  private async pump(): Promise<void> {
    while (this.phase !== "done") {
      const nowMs = Date.now();
      this.checkExpiry(nowMs);
      if (this.phase === "stopping") {
        this.enforceGrace(nowMs);
        if (this.table.running() === 0 && this.networkDeadlineMs === Number.POSITIVE_INFINITY) {
          this.networkDeadlineMs = nowMs + this.shutdownNetworkTimeoutMs();
          this.armNetworkGiveUp(this.shutdownNetworkTimeoutMs() + 1);
        }
        if (nowMs > this.networkDeadlineMs || this.networkGiveUp.signal.aborted) {
          this.log.error?.("stopping: gave up reaching the server (shutdownNetworkTimeoutMs); leases still held expire on the server", {
            unreported: this.table.all().map((held) => held.lease.taskId),
          });
          break;
        }
      }
      if (this.reconcileWanted && this.pending === null && this.everRegistered && !this.needsRegister) {
        if (!(await this.reconcile())) {
          await this.pause();
          continue;
        }
      }
      const steps = this.pending ?? this.buildBatch(nowMs);
      if (steps === null) {
        if (this.phase === "stopping" && this.table.size === 0 && this.outbox.length === 0) {
          await this.deregister();
          break;
        }
        await this.wakeup.wait(this.nextDeadlineMs(nowMs) - Date.now());
        continue;
      }
      this.pending = steps;
      let results: BatchItemResult[];
      const sentAtMs = Date.now();
      try {
        results = await this.client.commands(
          steps.map((step) => step.command),
          { signal: this.networkGiveUp.signal },
        );
      } catch (error) {
        if (!this.everRegistered && error instanceof SwooshApiError && error.code === "unauthorized") {
          // The token is wrong from the start: `ready` rejects, as for a register refused as bad_request.
          this.log.error?.("cannot register; stopping", { error: error.message, code: error.code });
          this.rejectReady(error);
          this.phase = "done";
          break;
        }
        if (!this.batchRefused(steps, error)) await this.pause(error);
        continue;
      }
      this.pending = null;
      this.onePerBatch = false;
      this.counters.batches++;
      this.itemTrouble = false;
      steps.forEach((step, i) => this.handleResult(step, results[i] as BatchItemResult, sentAtMs));
      this.armExpiryTimer();
      // A refusal that asks for the same step again (register, an odd claim error) must not spin.
      if (this.itemTrouble) await this.pause();
      else this.failureStreak = 0;
    }
    this.phase = "done";
  }

  private buildBatch(nowMs: number): Step[] | null {
    const steps: Step[] = [];
    const running = this.phase === "running";
    const registering = this.needsRegister && running;
    if (registering) {
      steps.push({ kind: "register", command: { type: "agent.register", payload: { agentId: this.agentId, labels: [...this.labels], capacity: this.capacity }, id: newId() } });
    }
    if (registering || (!this.needsRegister && nowMs >= this.lastHeartbeatSentAtMs + this.heartbeatIntervalMs())) {
      this.lastHeartbeatSentAtMs = nowMs;
      steps.push({ kind: "heartbeat", command: { type: "agent.heartbeat", payload: { agentId: this.agentId }, id: newId() }, expectedLeases: this.table.liveCount() });
    }
    let reports = 0;
    let completes = 0;
    const kept: Report[] = [];
    for (const report of this.outbox) {
      if (report.notBeforeMs <= nowMs && steps.length < BATCH_STEPS_MAX - 1 && !(this.onePerBatch && reports > 0)) {
        steps.push({ kind: "report", command: report.command, report });
        reports++;
        if (report.command.type === "task.complete") completes++;
      } else {
        kept.push(report);
      }
    }
    this.outbox = kept;
    if (running && (registering || !this.needsRegister) && this.agentStatus === "ready") {
      const free = this.capacity - this.table.size + reports;
      const pollDue = nowMs >= this.lastClaimAtMs + this.pollIntervalMs();
      // A completion may unblock dependents: claim with it (complete-and-claim-next in one round trip).
      if (free > 0 && (this.claimWanted || completes > 0 || pollDue)) {
        const limit = Math.min(free, CLAIM_LIMIT_MAX);
        this.claimWanted = false;
        this.lastClaimAtMs = nowMs;
        steps.push({ kind: "claim", command: { type: "task.claim", payload: { agentId: this.agentId, limit }, id: newId() }, limit });
      }
    }
    return steps.length === 0 ? null : steps;
  }

  /**
   * The next moment the loop has something to do without being woken. Only
   * future moments count: what is due now was handled by `buildBatch`, or
   * cannot be (a claim while the agent is draining), and must not spin the loop.
   */
  private nextDeadlineMs(nowMs: number): number {
    const candidates: number[] = [];
    if (!this.needsRegister) candidates.push(this.lastHeartbeatSentAtMs + this.heartbeatIntervalMs());
    if (this.phase === "running" && !this.needsRegister && this.agentStatus === "ready" && this.table.size < this.capacity) candidates.push(this.lastClaimAtMs + this.pollIntervalMs());
    for (const report of this.outbox) candidates.push(report.notBeforeMs);
    if (this.serverOffsetMs !== undefined) {
      for (const held of this.table.all()) if (!held.gone && !held.handlerSettled && held.lossReason === undefined) candidates.push(held.expiresAt - this.serverOffsetMs + 1);
    }
    if (this.phase === "stopping") candidates.push(this.graceDeadlineMs, this.graceDeadlineMs + WORKER_DEFAULTS.abandonAfterAbortMs, this.networkDeadlineMs + 1);
    let next = nowMs + 60_000;
    for (const candidate of candidates) if (candidate > nowMs && candidate < next) next = candidate;
    return next;
  }

  private heartbeatIntervalMs(): number {
    if (this.options.heartbeatIntervalMs !== undefined) return this.options.heartbeatIntervalMs;
    if (this.leaseTtlMs === undefined) return WORKER_DEFAULTS.heartbeatIntervalMs;
    const boundMs = Math.min(this.leaseTtlMs, this.heartbeatTimeoutMs ?? Number.POSITIVE_INFINITY);
    return Math.max(WORKER_DEFAULTS.heartbeatIntervalMinMs, Math.floor(boundMs / 3));
  }

  private pollIntervalMs(): number {
    return this.watchLive
      ? (this.options.idlePollIntervalMs ?? WORKER_DEFAULTS.idlePollIntervalMs)
      : (this.options.pollIntervalMs ?? WORKER_DEFAULTS.pollIntervalMs);
  }

  private shutdownNetworkTimeoutMs(): number {
    return this.options.shutdownNetworkTimeoutMs ?? WORKER_DEFAULTS.shutdownNetworkTimeoutMs;
  }

  /** Gives up on the network `delayMs` from now (or sooner, if already armed sooner): the request under way is aborted, the loop ends. */
  private armNetworkGiveUp(delayMs: number): void {
    // setTimeout fires at once past 2^31-1 ms (~24.8 days): such a deadline is as good as none.
    if (delayMs > TIMER_DELAY_MS_MAX) return;
    const atMs = Date.now() + delayMs;
    if (atMs >= this.networkGiveUpAtMs) return;
    this.networkGiveUpAtMs = atMs;
    if (this.networkGiveUpTimer !== null) clearTimeout(this.networkGiveUpTimer);
    this.networkGiveUpTimer = setTimeout(() => {
      this.networkDeadlineMs = Math.min(this.networkDeadlineMs, Date.now());
      this.networkGiveUp.abort(new Error("shutdownNetworkTimeoutMs passed"));
    }, delayMs);
  }

  /** Waits after a failed request, longer after each failure in a row. */
  private async pause(error?: unknown): Promise<void> {
    this.failureStreak++;
    if (error !== undefined) {
      const fields = { error: String(error), failures: this.failureStreak };
      if (error instanceof SwooshApiError && !error.retryable) this.log.error?.("request refused; will try again", fields);
      else if (this.failureStreak === 1) this.log.warn?.("server unreachable; retrying with backoff", fields);
      else this.log.debug?.("still retrying", fields);
    }
    await sleep(backoffDelayMs(this.failureStreak, { baseDelayMs: 200, maxDelayMs: WORKER_DEFAULTS.failurePauseMaxMs }), this.networkGiveUp.signal).catch(() => undefined);
  }

  /**
   * A whole batch refused as too large or malformed (413, or 400 for a result
   * nested too deep): nothing in it was applied. Split it (one outcome per
   * batch) or, for a single outcome, cut that outcome down. True when handled.
   */
  private batchRefused(steps: Step[], error: unknown): boolean {
    if (!(error instanceof SwooshApiError) || (error.code !== "payload_too_large" && error.code !== "bad_request")) return false;
    const reports = steps.filter((step): step is Extract<Step, { kind: "report" }> => step.kind === "report").map((step) => step.report);
    if (reports.length === 0) return false;
    this.pending = null;
    for (const step of steps) {
      if (step.kind === "heartbeat") this.lastHeartbeatSentAtMs = Number.NEGATIVE_INFINITY;
      if (step.kind === "claim") this.claimWanted = true;
    }
    if (reports.length > 1) {
      this.onePerBatch = true;
      this.outbox.unshift(...reports);
      return true;
    }
    const report = reports[0] as Report;
    if (report.shrunk) {
      this.log.error?.("the server refuses even the shortened outcome; giving it up (the lease will expire)", { taskId: report.taskId, error: error.message });
      this.table.delete(report.token);
      return true;
    }
    shrinkReport(report, `outcome refused by the server (${error.code}): ${error.message}`);
    this.outbox.unshift(report);
    return true;
  }

  // ------------------------------------------------------------------ answers

  private handleResult(step: Step, result: BatchItemResult, sentAtMs: number): void {
    this.observeServerTime(result, sentAtMs);
    switch (step.kind) {
      case "register":
        this.onRegister(result);
        break;
      case "heartbeat":
        this.onHeartbeat(step.expectedLeases, result);
        break;
      case "report":
        this.onReport(step.report, result);
        break;
      case "claim":
        this.onClaim(step.limit, result);
        break;
    }
  }

  /**
   * The server's clock less this one's, from an answer's HLC wall time, taken
   * against when the request was sent rather than when the answer came: the
   * command was applied in between, so the server time estimated from it is
   * never behind the server's own, and a lease is given up here no later than
   * the server may hand it to another agent (at most one round trip early;
   * a request the client retried counts from its first try, earlier still).
   * Against the answer's arrival, a slow answer made a handler run on after
   * its task had gone to another agent.
   */
  private observeServerTime(result: BatchItemResult, sentAtMs: number): void {
    // A duplicate carries the HLC of the first answer, which may be long past (a batch resent after an outage): not now.
    if (result.ok && result.duplicate !== true) this.serverOffsetMs = hlcWallMs(result.hlc) - sentAtMs;
  }

  private onRegister(result: BatchItemResult): void {
    if (result.ok) {
      this.needsRegister = false;
      this.everRegistered = true;
      this.registerIndex = result.index;
      this.agentStatus = "ready";
      this.log.info?.("registered", { labels: this.labels, capacity: this.capacity });
      this.resolveReady();
      return;
    }
    const { error } = result;
    if (!this.everRegistered && (error.code === "bad_request" || error.code === "unauthorized")) {
      this.log.error?.("cannot register; stopping", { error: error.message, code: error.code });
      this.rejectReady(error);
      this.phase = "done";
      return;
    }
    this.itemTrouble = true;
    this.log.warn?.("register refused; will try again", { error: error.message, code: error.code });
  }

  private onHeartbeat(expectedLeases: number, result: BatchItemResult): void {
    if (!result.ok) {
      if (result.error.code === "unknown_agent") this.agentGone();
      // invalid_transition: the orchestrator is halted (nothing expires then either).
      else if (result.error.code === "invalid_transition") this.log.debug?.("heartbeat refused", { error: result.error.message });
      else this.log.warn?.("heartbeat refused", { error: result.error.message, code: result.error.code });
      return;
    }
    const answer = result.result as CommandResult<"agent.heartbeat">;
    this.leaseTtlMs = Math.max(1, answer.expiresAt - hlcWallMs(result.hlc));
    // A cluster's heartbeat timeout may be far shorter than its lease TTL (and set in its genesis, which no event shows).
    if (typeof answer.offlineAt === "number") this.heartbeatTimeoutMs = Math.max(1, answer.offlineAt - hlcWallMs(result.hlc));
    this.agentStatus = answer.status;
    for (const held of this.table.all()) if (!held.gone && held.claimIndex < result.index) held.expiresAt = answer.expiresAt;
    if (answer.leases !== expectedLeases) {
      this.log.debug?.("heartbeat: lease count differs; reconciling", { server: answer.leases, expected: expectedLeases });
      this.reconcileWanted = true;
    }
    if (this.heartbeatIntervalMs() * 2 > this.leaseTtlMs) this.log.warn?.("heartbeat interval is more than half the lease TTL", { heartbeatIntervalMs: this.heartbeatIntervalMs(), leaseTtlMs: this.leaseTtlMs });
  }

  private onReport(report: Report, result: BatchItemResult): void {
    const held = this.table.get(report.token);
    if (result.ok) {
      if (report.command.type === "task.complete") this.counters.succeeded++;
      else this.counters.failed++;
      this.table.delete(report.token);
      this.wakeup.wake();
      return;
    }
    const { error } = result;
    switch (error.code) {
      case "stale_lease":
      case "unknown_task":
        // Expired, released or cancelled before the outcome arrived: another attempt (if any) redoes the work.
        if (held !== undefined && !held.gone) this.counters.lost++;
        if (held?.lossReason === undefined) this.log.warn?.("lease lost before the outcome was reported", { taskId: report.taskId, token: report.token, code: error.code });
        this.table.delete(report.token);
        this.wakeup.wake();
        return;
      case "bad_request":
        if (!report.shrunk) {
          shrinkReport(report, `outcome refused by the server: ${error.message}`);
          this.outbox.push(report);
          return;
        }
        break;
      case "invalid_transition":
      case "unavailable":
        // Halted orchestrator, or the server stopping mid-batch: the same command (same id) later.
        report.retries++;
        report.notBeforeMs = Date.now() + backoffDelayMs(report.retries, { baseDelayMs: 200, maxDelayMs: WORKER_DEFAULTS.failurePauseMaxMs });
        this.outbox.push(report);
        return;
      default:
        break;
    }
    this.log.error?.("outcome refused; giving it up (the lease will expire)", { taskId: report.taskId, code: error.code, error: error.message });
    this.table.delete(report.token);
  }

  private onClaim(limit: number, result: BatchItemResult): void {
    if (!result.ok) {
      const { error } = result;
      if (error.code === "unknown_agent") {
        this.agentGone();
      } else if (error.code === "invalid_transition") {
        // Not active, or the agent not ready: an event (setPhase, register) or a heartbeat brings it back.
        const status = (error.details as { status?: unknown } | undefined)?.status;
        if (status === "offline") {
          this.agentStatus = "offline";
          this.lastHeartbeatSentAtMs = Number.NEGATIVE_INFINITY;
          this.claimWanted = true;
        } else if (status === "draining") {
          this.agentStatus = "draining";
        }
        this.log.debug?.("claim refused", { error: error.message });
      } else {
        this.claimWanted = true;
        this.itemTrouble = true;
        this.log.warn?.("claim refused", { code: error.code, error: error.message });
      }
      return;
    }
    this.lastClaimIndex = Math.max(this.lastClaimIndex, result.index);
    const { leases } = result.result as CommandResult<"task.claim">;
    for (const lease of leases) this.startLease(lease, result.index);
    if (leases.length >= limit) this.claimWanted = true;
  }

  /** The server no longer knows this agent (removed by someone, or a fresh data dir): every lease is gone. */
  private agentGone(): void {
    if (this.removing) return;
    this.log.warn?.("the agent is no longer registered; its leases are gone", { leases: this.table.liveCount() });
    for (const held of this.table.all()) this.markGone(held, "agent_removed");
    this.needsRegister = true;
    this.wakeup.wake();
  }

  // ------------------------------------------------------------------ handlers

  private startLease(lease: ClaimedLease, claimIndex: number): void {
    if (this.table.has(lease.token)) return;
    const held = this.table.add(lease, claimIndex);
    this.counters.claimed++;
    if (this.serverOffsetMs !== undefined && Date.now() + this.serverOffsetMs > lease.expiresAt) {
      // The claim's answer came after its lease expired (resent after an outage, answered as a duplicate):
      // another agent may hold the task by now, so its handler does not start.
      this.log.warn?.("a claimed lease had expired when its answer arrived; not running it", { taskId: lease.taskId, token: lease.token });
      held.handlerSettled = true;
      this.markGone(held, "expired");
      return;
    }
    const handler = Object.prototype.hasOwnProperty.call(this.handlers, lease.kind) ? this.handlers[lease.kind] : undefined;
    if (handler === undefined) {
      this.settle(held, { ok: false, error: new Error(`agent ${JSON.stringify(this.agentId)} has no handler for kind ${JSON.stringify(lease.kind)}`) });
      return;
    }
    const ctx: TaskContext = {
      taskId: lease.taskId,
      kind: lease.kind,
      attempt: lease.attempt,
      token: lease.token,
      agentId: this.agentId,
      signal: held.controller.signal,
      client: this.client,
      logger: this.log,
    };
    let running: Promise<unknown>;
    try {
      running = Promise.resolve(handler(lease.payload, ctx));
    } catch (error) {
      running = Promise.reject(error as Error);
    }
    running.then(
      (value) => this.settle(held, { ok: true, value }),
      (error: unknown) => this.settle(held, { ok: false, error }),
    );
  }

  private settle(held: HeldLease, outcome: HandlerOutcome): void {
    held.handlerSettled = true;
    // Abandoned at shutdown, or replaced: nothing to report any more.
    if (this.table.get(held.lease.token) !== held) return;
    this.wakeup.wake();
    if (held.gone) {
      this.table.delete(held.lease.token);
      return;
    }
    if (!outcome.ok) this.log.debug?.("handler failed", { taskId: held.lease.taskId, attempt: held.lease.attempt, error: String(outcome.error) });
    const { taskId, token } = held.lease;
    this.outbox.push({ token, taskId, command: outcomeCommand(held.lease, outcome), notBeforeMs: 0, retries: 0, shrunk: false });
  }

  /**
   * Arms one timer for the earliest expiry among running handlers' leases, so
   * a handler is aborted when its lease expires even while the loop waits on a
   * request that hangs (another agent may be running the task by then).
   */
  private armExpiryTimer(): void {
    if (this.expiryTimer !== null) clearTimeout(this.expiryTimer);
    this.expiryTimer = null;
    if (this.serverOffsetMs === undefined || this.phase === "done") return;
    let earliest = Number.POSITIVE_INFINITY;
    for (const held of this.table.all()) {
      if (!held.gone && !held.handlerSettled && held.lossReason === undefined) earliest = Math.min(earliest, held.expiresAt);
    }
    if (earliest === Number.POSITIVE_INFINITY) return;
    const delayMs = Math.max(0, earliest - this.serverOffsetMs + 1 - Date.now());
    this.expiryTimer = setTimeout(() => {
      this.expiryTimer = null;
      this.checkExpiry(Date.now());
      this.armExpiryTimer();
    }, delayMs);
    this.expiryTimer.unref();
  }

  /** Aborts handlers whose lease passed its expiry (in estimated server time) without a heartbeat getting through. */
  private checkExpiry(nowMs: number): void {
    if (this.serverOffsetMs === undefined) return;
    const serverNowMs = nowMs + this.serverOffsetMs;
    for (const held of this.table.all()) {
      if (held.gone || held.handlerSettled || held.lossReason !== undefined || serverNowMs <= held.expiresAt) continue;
      this.log.warn?.("lease expired without a heartbeat getting through; aborting the handler", { taskId: held.lease.taskId, token: held.lease.token });
      this.table.abort(held, "expired");
      this.reconcileWanted = true;
    }
  }

  private markGone(held: HeldLease, reason: LeaseLossReason): void {
    if (held.gone) return;
    held.gone = true;
    this.counters.lost++;
    this.table.abort(held, reason);
    this.outbox = this.outbox.filter((report) => report.token !== held.lease.token);
    if (held.handlerSettled) this.table.delete(held.lease.token);
    this.wakeup.wake();
  }

  /** Compares the leases the server shows for this agent with the table: aborts the gone, adopts the unknown. */
  private async reconcile(): Promise<boolean> {
    const seen = new Map<number, Task>();
    let readIndex = Number.POSITIVE_INFINITY;
    try {
      for (let cursor: string | undefined, first = true; first || cursor !== undefined; first = false) {
        const page = await this.client.listTasks({ agentId: this.agentId, status: "leased", limit: RECONCILE_PAGE_SIZE, cursor }, { signal: this.networkGiveUp.signal });
        readIndex = Math.min(readIndex, page.index);
        for (const task of page.tasks) if (task.lease?.agentId === this.agentId) seen.set(task.lease.token, task);
        cursor = page.nextCursor ?? undefined;
      }
    } catch (error) {
      this.log.debug?.("reconciling read failed", { error: String(error) });
      return false;
    }
    this.reconcileWanted = false;
    for (const held of this.table.all()) {
      if (held.gone || held.claimIndex > readIndex || seen.has(held.lease.token)) continue;
      this.log.warn?.("lease lost; aborting the handler", { taskId: held.lease.taskId, token: held.lease.token });
      this.markGone(held, "released");
    }
    for (const [token, task] of seen) {
      if (this.table.has(token) || task.lease === undefined) continue;
      if (this.phase !== "running") continue; // agent.remove releases it
      this.log.info?.("adopting a lease this agent held before (a previous run?)", { taskId: task.id, token });
      this.startLease({ taskId: task.id, kind: task.kind, payload: task.payload, token, expiresAt: task.lease.expiresAt, attempt: task.attempts + 1 }, readIndex);
    }
    this.armExpiryTimer();
    return true;
  }

  // ------------------------------------------------------------------ wake-ups

  private async watchLoop(): Promise<void> {
    const signal = this.watchController.signal;
    while (!signal.aborted && this.phase !== "done") {
      try {
        const events = this.client.watch({
          signal,
          onOpen: () => {
            this.watchLive = true;
            // Anything may have happened while it was down.
            this.claimWanted = true;
            this.wakeup.wake();
          },
          onDisconnect: (error) => {
            this.watchLive = false;
            this.log.debug?.("watch disconnected; reconnecting", { error: String(error) });
          },
        });
        for await (const entry of events) this.onEvent(entry);
      } catch (error) {
        this.watchLive = false;
        this.log.warn?.("watch ended; reopening", { error: String(error) });
        await sleep(this.options.pollIntervalMs ?? WORKER_DEFAULTS.pollIntervalMs, signal).catch(() => undefined);
      }
    }
    this.watchLive = false;
  }

  private onEvent(entry: LogEntry): void {
    const meaning = readEvent(entry, this.agentId, this.labelSet);
    // Entries about this agent up to its (re-)registration are history.
    const fresh = entry.index > this.registerIndex;
    switch (meaning.kind) {
      case "work":
        this.wakeForClaim(entry.index);
        break;
      case "agent-removed":
        if (fresh) this.agentGone();
        break;
      case "agent-drained":
        if (fresh) this.agentStatus = "draining";
        break;
      case "agent-registered":
        if (fresh) {
          this.agentStatus = "ready";
          this.wakeForClaim(entry.index);
        }
        break;
      case "config":
        if (meaning.leaseTtlMs !== undefined) {
          // Leases held now expire under the TTL they were granted or renewed with: a longer one stretches the
          // heartbeat interval past them, so a heartbeat goes now and renews them all under the new TTL.
          if (meaning.leaseTtlMs !== this.leaseTtlMs && this.table.liveCount() > 0) this.lastHeartbeatSentAtMs = Number.NEGATIVE_INFINITY;
          this.leaseTtlMs = meaning.leaseTtlMs;
        }
        if (meaning.heartbeatTimeoutMs !== undefined) this.heartbeatTimeoutMs = meaning.heartbeatTimeoutMs;
        this.wakeup.wake();
        break;
      case "task-cancelled":
        if (this.table.all().some((held) => held.lease.taskId === meaning.taskId && !held.gone)) {
          this.reconcileWanted = true;
          this.wakeup.wake();
        }
        break;
      case "none":
        break;
    }
  }

  /** Work may be claimable because of the entry at `index` — unless our last claim came after it and so saw it. */
  private wakeForClaim(index: number): void {
    if (index <= this.lastClaimIndex || this.phase !== "running") return;
    this.claimWanted = true;
    this.wakeup.wake();
  }

  // ------------------------------------------------------------------ stopping

  /** After the grace period, aborts running handlers; a while later, stops waiting for those that ignore it. */
  private enforceGrace(nowMs: number): void {
    if (nowMs < this.graceDeadlineMs) return;
    for (const held of this.table.all()) if (!held.handlerSettled) this.table.abort(held, "stopping");
    if (nowMs < this.graceDeadlineMs + WORKER_DEFAULTS.abandonAfterAbortMs) return;
    for (const held of this.table.all()) {
      if (held.handlerSettled) continue;
      this.log.error?.("a handler ignored its aborted signal; leaving its lease to agent.remove", { taskId: held.lease.taskId });
      this.table.delete(held.lease.token);
    }
  }

  private async deregister(): Promise<void> {
    if (!this.everRegistered || this.needsRegister) return;
    this.removing = true;
    const remainingMs = Math.max(0, this.networkDeadlineMs - Date.now());
    try {
      await this.client.removeAgent(
        { agentId: this.agentId },
        { signal: this.networkGiveUp.signal, retry: { attemptsMax: Number.POSITIVE_INFINITY, maxDelayMs: WORKER_DEFAULTS.failurePauseMaxMs, elapsedMaxMs: Number.isFinite(remainingMs) ? remainingMs : 30_000 } },
      );
      this.log.info?.("stopped and deregistered");
    } catch (error) {
      if (error instanceof SwooshApiError && error.code === "unknown_agent") return;
      this.log.error?.("could not deregister (agent.remove)", { error: String(error) });
    }
  }

  private cleanUp(): void {
    this.phase = "done";
    if (this.expiryTimer !== null) clearTimeout(this.expiryTimer);
    if (this.networkGiveUpTimer !== null) clearTimeout(this.networkGiveUpTimer);
    this.watchController.abort();
    this.rejectReady(new Error("the worker stopped before it registered"));
    if (this.signalHandler !== null) {
      process.off("SIGTERM", this.signalHandler);
      process.off("SIGINT", this.signalHandler);
    }
  }
}
