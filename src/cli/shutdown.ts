/**
 * Signal handling for long-running commands: the first SIGTERM, SIGINT or SIGHUP asks
 * for a clean shutdown, a second one exits at once with code 1 (an operator
 * who presses Ctrl-C twice means it). Handlers are installed before the server
 * starts, so a signal during startup is not lost to Node's default (die by
 * signal) but stops the startup; one that came while the modules loaded was
 * kept by bin/swoosh.js and is acted on when the handlers are installed.
 */
import { EXIT_RUNTIME_FAILURE } from "./exit-codes.ts";

/**
 * SIGHUP too: it is what a closed terminal (an ssh session ending) sends a
 * server started in the foreground, and by Node's default it died without
 * its final snapshot and left its LOCK behind.
 */
const SIGNALS = ["SIGTERM", "SIGINT", "SIGHUP"] as const;
export type ShutdownSignal = (typeof SIGNALS)[number];

export interface ShutdownWatch {
  /** Resolves with the first signal received. */
  readonly requested: Promise<ShutdownSignal>;
  /** Removes the handlers (the process then reacts to signals as Node does by default). */
  dispose(): void;
}

/** Where the handlers report: the first signal at info, a second one (exit 1 at once) at warn. */
export type ShutdownLog = (line: string, level: "info" | "warn") => void;

/** Signals bin/swoosh.js kept for `serve` while its modules loaded, before the handlers below existed. */
interface EarlySignals {
  readonly signals: readonly ShutdownSignal[];
  release(): void;
}

const EARLY_SIGNALS = Symbol.for("swoosh.earlySignals");

/** The signals kept before now (none when not started through bin/swoosh.js); their keeper is removed. */
function takeEarlySignals(): readonly ShutdownSignal[] {
  const holder = globalThis as { [EARLY_SIGNALS]?: EarlySignals };
  const early = holder[EARLY_SIGNALS];
  if (early === undefined) return [];
  delete holder[EARLY_SIGNALS];
  early.release();
  return early.signals;
}

export function watchShutdownSignals(log: ShutdownLog): ShutdownWatch {
  let received: ShutdownSignal | null = null;
  let resolveRequested: (signal: ShutdownSignal) => void = () => undefined;
  const requested = new Promise<ShutdownSignal>((resolve) => {
    resolveRequested = resolve;
  });
  const handlers = new Map<ShutdownSignal, () => void>();
  for (const signal of SIGNALS) {
    const handler = () => {
      if (received !== null) {
        log(`${signal} received again: exiting without waiting for the shutdown`, "warn");
        process.exit(EXIT_RUNTIME_FAILURE);
      }
      received = signal;
      log(`${signal} received: closing (send it again to exit at once)`, "info");
      resolveRequested(signal);
    };
    handlers.set(signal, handler);
    process.on(signal, handler);
  }
  // Acted on as if they came now: installed first, so none falls between the keeper and these.
  for (const signal of takeEarlySignals()) handlers.get(signal)?.();
  return {
    requested,
    dispose() {
      for (const [signal, handler] of handlers) process.off(signal, handler);
    },
  };
}
