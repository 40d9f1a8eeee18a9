/**
 * The server's own `system.tick` (SPEC §6): time passes in the log only when
 * someone logs it, so the server does — and so does a library caller who
 * embeds the engine and wants leases to expire (`startTicker`).
 *
 * Policy: ask the model when the next deadline is (`nextDeadlineMs`: a lease
 * expiring, an agent going silent, a backoff ending) and tick as soon as it has
 * passed; look again at least every `checkIntervalMaxMs` (1 s), sooner when the
 * deadline is sooner, and at once when an applied command sets a deadline
 * before the next look (a retry's short backoff, a lease under a short TTL,
 * a new configuration): otherwise a retry due in 1 ms waited up to a second.
 * Nothing pending, or the phase halted (the reducer refuses ticks then), means
 * no tick: an idle orchestrator writes nothing to its log.
 *
 * A tick that fails is logged and the loop goes on; `unavailable` (engine
 * closing or failed) ends the loop quietly. Nothing here can crash the process.
 */
import { SwooshError } from "../core/errors.ts";
import type { AppliedEvent, Engine } from "./engine.ts";
import { nextDeadlineMs } from "../domain/index.ts";
import type { OrchestratorModel } from "../domain/index.ts";

export interface TickerSettings {
  /** Longest wait between two looks at the next deadline. */
  readonly checkIntervalMaxMs: number;
  /** Shortest wait, so a deadline a tick cannot clear never turns into a busy loop. */
  readonly checkIntervalMinMs: number;
}

export const DEFAULT_TICKER_SETTINGS: TickerSettings = { checkIntervalMaxMs: 1000, checkIntervalMinMs: 10 };

/** Where a failed tick is reported (pino's shape; the server passes its logger). */
export interface TickerLog {
  warn(fields: object, message: string): void;
}

const stderrLog: TickerLog = {
  warn: (fields, message) => process.stderr.write(`swoosh: ${message} ${JSON.stringify(fields, (key, value: unknown) => (value instanceof Error ? value.message : value))}\n`),
};

export class Ticker {
  private running = false;
  private timer: NodeJS.Timeout | null = null;
  private wake: (() => void) | null = null;
  private loop: Promise<void> | null = null;
  /** When the loop's current wait ends (clock ms); a deadline set before it wakes the loop. */
  private wakeAtMs = Number.POSITIVE_INFINITY;
  private unsubscribe: (() => void) | null = null;

  constructor(
    private readonly engine: Engine<OrchestratorModel>,
    private readonly log: TickerLog = stderrLog,
    private readonly settings: TickerSettings = DEFAULT_TICKER_SETTINGS,
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.unsubscribe = this.engine.subscribe((event) => this.onApplied(event), { readOnly: true });
    this.loop = this.run();
  }

  /** Stops the loop and waits for a tick in flight to settle. */
  async stop(): Promise<void> {
    this.running = false;
    this.unsubscribe?.();
    this.unsubscribe = null;
    // Ends the current sleep, its timer too.
    this.wake?.();
    await this.loop;
  }

  private async run(): Promise<void> {
    const clock = this.engine.settings.clock;
    let lastDeadlineMs: number | undefined;
    while (this.running) {
      let waitMs = this.settings.checkIntervalMaxMs;
      try {
        const deadlineMs = await this.engine.read(({ model }) => (model.state.phase === "halted" ? undefined : nextDeadlineMs(model)));
        const nowMs = clock.nowMs();
        if (deadlineMs !== undefined && deadlineMs <= nowMs && this.running) {
          await this.engine.submit({ type: "system.tick", payload: {} });
          // The same passed deadline twice in a row means a tick could not clear it: fall back to once a second.
          waitMs = deadlineMs === lastDeadlineMs ? this.settings.checkIntervalMaxMs : this.settings.checkIntervalMinMs;
          lastDeadlineMs = deadlineMs;
        } else {
          lastDeadlineMs = undefined;
          if (deadlineMs !== undefined) waitMs = Math.min(this.settings.checkIntervalMaxMs, Math.max(this.settings.checkIntervalMinMs, deadlineMs - nowMs));
        }
      } catch (error) {
        if (error instanceof SwooshError && error.code === "unavailable") return;
        this.log.warn({ err: error }, "system.tick failed; will retry");
      }
      await this.sleep(waitMs);
    }
  }

  /** Runs inside the engine's flush completion: reads the event, never throws. */
  private onApplied(event: AppliedEvent): void {
    if (this.wake === null) return;
    const deadlineMs = deadlineSetBy(event);
    if (deadlineMs < this.wakeAtMs) this.wake();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (!this.running) {
        resolve();
        return;
      }
      this.wakeAtMs = this.engine.settings.clock.nowMs() + ms;
      this.wake = () => {
        this.wake = null;
        this.wakeAtMs = Number.POSITIVE_INFINITY;
        // Woken early: this sleep's timer must not end a later one.
        if (this.timer !== null) clearTimeout(this.timer);
        this.timer = null;
        resolve();
      };
      this.timer = setTimeout(() => this.wake?.(), ms);
      this.timer.unref();
    });
  }
}

/**
 * The earliest deadline an applied command set (clock ms): a retry's
 * `notBefore`, the expiry of leases it granted; minus infinity for a change
 * of configuration or phase (deadlines move); infinity for anything else.
 */
function deadlineSetBy(event: AppliedEvent): number {
  const result = event.result as { notBefore?: unknown; leases?: unknown } | null;
  switch (event.type) {
    case "task.fail":
      return typeof result?.notBefore === "number" ? result.notBefore : Number.POSITIVE_INFINITY;
    case "task.claim": {
      let earliest = Number.POSITIVE_INFINITY;
      if (Array.isArray(result?.leases)) {
        for (const lease of result.leases as Array<{ expiresAt?: unknown }>) if (typeof lease.expiresAt === "number") earliest = Math.min(earliest, lease.expiresAt);
      }
      return earliest;
    }
    case "orchestrator.configure":
    case "orchestrator.setPhase":
      return Number.NEGATIVE_INFINITY;
    default:
      return Number.POSITIVE_INFINITY;
  }
}

/**
 * Starts issuing `system.tick` for an engine a library caller embeds, as
 * `swoosh serve` does (leases then expire and silent agents go offline without
 * a server); `stop()` before `engine.close()`.
 */
export function startTicker(engine: Engine<OrchestratorModel>, options: { settings?: TickerSettings; log?: TickerLog } = {}): { stop(): Promise<void> } {
  const ticker = new Ticker(engine, options.log ?? stderrLog, options.settings ?? DEFAULT_TICKER_SETTINGS);
  ticker.start();
  return { stop: () => ticker.stop() };
}
