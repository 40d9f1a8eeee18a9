/**
 * What a benchmarked system looks like to the harness, so that a side-by-side
 * suite runs every peer (Swoosh, etcd, a do-nothing server, and later SQLite,
 * BullMQ…) through the same lifecycle and the same load generators:
 *
 *   start() → check(tag) → operation(tag) under load → stop()
 *
 * A peer starts fresh (own process, own temporary data directory) each time,
 * so runs do not inherit each other's state. `withPeer` guarantees `stop()`.
 */
import type { Operation } from "./load.ts";

export interface Peer {
  /** Short name used in tables and JSON (e.g. "swoosh", "etcd"). */
  readonly name: string;
  /** What it is, for the report (version, settings). */
  readonly description: string;
  start(): Promise<StartedPeer>;
}

export interface StartedPeer {
  /** The peer's server processes, for CPU accounting. */
  readonly pids: readonly number[];
  /** One round trip that must succeed, with its effect checked; throws otherwise. */
  check(tag: string): Promise<void>;
  /** The operation to drive; `tag` keeps ids distinct between measurements. */
  operation(tag: string): Operation;
  /**
   * The peer's own view, read before and after a measurement (e.g. its
   * /metrics); `diagnose(before, after)` turns the two into figures.
   */
  readonly diagnostics?: {
    read(): Promise<unknown>;
    diagnose(before: unknown, after: unknown): Record<string, number>;
  };
  stop(): Promise<void>;
}

export async function withPeer<T>(peer: Peer, run: (started: StartedPeer) => Promise<T>): Promise<T> {
  const started = await peer.start();
  try {
    return await run(started);
  } finally {
    await started.stop();
  }
}
