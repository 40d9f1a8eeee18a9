/**
 * Shared fixtures for engine tests: temp data dirs, a controllable clock, the
 * counter machine's genesis, and a log wrapper whose next flush can be made to fail.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after } from "node:test";
import type { TestContext } from "node:test";
import type { Clock } from "../../src/core/hlc.ts";
import type { LogRecord } from "../../src/core/log-record.ts";
import { createGenesis } from "../../src/engine/genesis.ts";
import type { GenesisDocument } from "../../src/engine/genesis.ts";
import type { CommandLog } from "../../src/storage/types.ts";
import { counterGenesisState } from "./counter-machine.ts";

export async function tempDir(prefix = "swoosh-test-"): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * A maker of temp dirs, every one removed once the test file is done (for a
 * file whose tests close what they open themselves). Call at the top level.
 */
export function tempDirsRemovedAtEnd(prefix = "swoosh-test-"): () => Promise<string> {
  const cleanups: Array<() => Promise<void>> = [];
  after(async () => {
    for (const cleanup of cleanups) await cleanup();
  });
  return async () => {
    const { dir, cleanup } = await tempDir(prefix);
    cleanups.push(cleanup);
    return dir;
  };
}

/**
 * A temp dir removed after test `t`, once what was handed to `closeFirst`
 * (a server or engine living in it) has closed. node:test runs after hooks in
 * the order they were added, so a removal registered before the close would
 * run first, and a shutdown snapshot would then create the dir again.
 */
export async function tempDirClosedFirst(t: TestContext, prefix: string): Promise<{ dir: string; closeFirst(close: () => Promise<void>): void }> {
  const { dir, cleanup } = await tempDir(prefix);
  let close = async (): Promise<void> => undefined;
  t.after(async () => {
    try {
      await close();
    } finally {
      await cleanup();
    }
  });
  return { dir, closeFirst: (closeIt) => (close = closeIt) };
}

/** A wall clock the test sets by hand (backwards too). */
export class ManualClock implements Clock {
  constructor(public ms = 1_764_417_600_000) {}
  nowMs(): number {
    return this.ms;
  }
}

export function counterGenesis(clusterId = "test-cluster"): GenesisDocument {
  return createGenesis(clusterId, counterGenesisState(clusterId), "2026-11-29T12:00:00.000Z");
}

/**
 * Resolves at the first read of `log` from now on (its `read` is wrapped, and
 * goes on reading). A time travel reads the log only once it holds it from
 * its base on, so this says the hold is in place: a fixed wait raced it on a
 * loaded machine.
 */
export function nextRead(log: CommandLog): Promise<void> {
  return new Promise((resolve) => {
    const read = log.read.bind(log);
    log.read = (from, limit) => {
      resolve();
      return read(from, limit);
    };
  });
}

/**
 * Wraps a log: `failNextAppend(error)` makes the next append reject as a failed
 * flush would; `onAppended` sees every batch that became durable.
 */
export class FaultyLog implements CommandLog {
  private failure: Error | null = null;
  appendCalls = 0;

  constructor(
    readonly inner: CommandLog,
    private readonly onAppended?: (records: readonly LogRecord[]) => void,
  ) {}

  failNextAppend(error: Error): void {
    this.failure = error;
  }

  lastIndex(): number {
    return this.inner.lastIndex();
  }
  firstIndex(): number {
    return this.inner.firstIndex();
  }
  async append(records: readonly LogRecord[]): Promise<void> {
    this.appendCalls += 1;
    if (this.failure) throw this.failure;
    await this.inner.append(records);
    this.onAppended?.(records);
  }
  read(from: number, limit: number): Promise<LogRecord[]> {
    return this.inner.read(from, limit);
  }
  follow(from: number, signal?: AbortSignal): AsyncIterable<LogRecord> {
    return this.inner.follow(from, signal);
  }
  truncateBefore(before: number): Promise<void> {
    return this.inner.truncateBefore(before);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
