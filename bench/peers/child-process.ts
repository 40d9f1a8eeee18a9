/**
 * Starting and stopping the processes a benchmark drives, with no leftovers.
 *
 * `spawnPeer` starts a process and waits (bounded) until it is ready: either it
 * prints a JSON line `{"ready": true, ...}` on stdout (our own child entries), or
 * a caller-supplied probe succeeds (third-party servers such as etcd). `stop()`
 * sends SIGTERM, then SIGKILL after a grace period. Every live child is also
 * SIGKILLed when this process exits or is interrupted, so a crashed or ^C'd
 * benchmark leaves nothing running. stderr is kept (last 64 KiB) for error
 * messages; stdout after the ready line is discarded.
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";

const live = new Set<ChildProcess>();
let hooksInstalled = false;

function killAllNow(): void {
  for (const child of live) child.kill("SIGKILL");
}

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on("exit", killAllNow);
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(signal, () => {
      killAllNow();
      process.exit(128 + (signal === "SIGINT" ? 2 : signal === "SIGTERM" ? 15 : 1));
    });
  }
}

export interface PeerProcess {
  readonly pid: number;
  /** The ready line's fields (empty when readiness came from a probe). */
  readonly ready: Record<string, unknown>;
  /** stderr so far (tail). */
  stderr(): string;
  /** SIGTERM, then SIGKILL after `graceMs` (default 5 s); resolves once the process is gone. */
  stop(graceMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface SpawnPeerOptions {
  readonly command: string;
  readonly args: readonly string[];
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** How long to wait for readiness; default 20 s. */
  readonly readyTimeoutMs?: number;
  /** Readiness by probing instead of a ready line: resolve true when ready. */
  readonly probe?: () => Promise<boolean>;
  /** A label for messages. */
  readonly name: string;
}

const STDERR_KEEP_BYTES = 64 * 1024;

export async function spawnPeer(options: SpawnPeerOptions): Promise<PeerProcess> {
  installExitHooks();
  const child = spawn(options.command, options.args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    // stdin stays an open pipe: our child entries exit when it closes (the parent died).
    stdio: ["pipe", "pipe", "pipe"],
  });
  live.add(child);
  let stderrText = "";
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    stderrText = (stderrText + chunk).slice(-STDERR_KEEP_BYTES);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once("exit", (code, signal) => {
      live.delete(child);
      resolve({ code, signal });
    });
  });
  const spawned = new Promise<void>((resolve, reject) => {
    child.once("spawn", resolve);
    child.once("error", reject);
  });

  const stop = async (graceMs = 5000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const timer = new AbortController();
      const killed = sleep(graceMs, undefined, { signal: timer.signal }).then(
        () => child.kill("SIGKILL"),
        () => undefined,
      );
      const result = await exited;
      timer.abort();
      await killed;
      return result;
    }
    return exited;
  };

  try {
    await spawned;
    const ready = await waitReady(child, options, exited, () => stderrText);
    return { pid: child.pid as number, ready, stderr: () => stderrText, stop };
  } catch (error) {
    await stop(1000);
    throw error;
  }
}

async function waitReady(
  child: ChildProcess,
  options: SpawnPeerOptions,
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>,
  stderr: () => string,
): Promise<Record<string, unknown>> {
  const timeoutMs = options.readyTimeoutMs ?? 20_000;
  const deadline = performance.now() + timeoutMs;
  const failure = (why: string): Error => new Error(`${options.name} ${why}; stderr tail:\n${stderr().slice(-2000)}`);
  const died = exited.then(({ code, signal }) => {
    throw failure(`exited before it was ready (code ${code}, signal ${signal})`);
  });
  died.catch(() => undefined);

  if (options.probe) {
    child.stdout?.resume();
    while (performance.now() < deadline) {
      const ok = await Promise.race([options.probe().catch(() => false), died]);
      if (ok) return {};
      await Promise.race([sleep(100), died]);
    }
    throw failure(`was not ready within ${timeoutMs} ms`);
  }

  const readyLine = new Promise<Record<string, unknown>>((resolve) => {
    let buffered = "";
    const onData = (chunk: string): void => {
      buffered += chunk;
      let newline: number;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        try {
          const parsed = JSON.parse(line) as Record<string, unknown>;
          if (parsed && parsed.ready === true) {
            child.stdout?.off("data", onData);
            child.stdout?.resume(); // keep draining whatever it prints later
            resolve(parsed);
            return;
          }
        } catch {
          // not our line: ignore
        }
      }
    };
    child.stdout?.setEncoding("utf8").on("data", onData);
  });
  const timer = new AbortController();
  const timedOut = sleep(timeoutMs, undefined, { signal: timer.signal }).then(() => {
    throw failure(`printed no ready line within ${timeoutMs} ms`);
  });
  timedOut.catch(() => undefined);
  try {
    return await Promise.race([readyLine, died, timedOut]);
  } finally {
    timer.abort();
  }
}
