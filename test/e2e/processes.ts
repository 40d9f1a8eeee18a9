/**
 * Test support for the e2e suites: the `swoosh` CLI as a child process, a
 * running `swoosh serve` whose URL is read from its startup block (it listens
 * on --port 0, so only it knows the port), and a small JSON-over-HTTP helper.
 *
 * Children inherit the environment minus every SWOOSH_* variable, so a
 * developer's shell (SWOOSH_TOKEN, SWOOSH_URL, …) cannot change a test. Every
 * child is tracked; `killAll()` (call it in an `after` hook) SIGKILLs the ones
 * still running.
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

export const bin = fileURLToPath(new URL("../../bin/swoosh.js", import.meta.url));

const running = new Set<ChildProcess>();

export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith("SWOOSH_")) env[key] = value;
  return { ...env, ...extra };
}

/** SIGKILLs every child started through this module (or handed to `trackChild`) that is still running. */
export function killAll(): void {
  for (const child of running) child.kill("SIGKILL");
  running.clear();
}

/** Counts `child` among those `killAll` stops; resolves with its exit once it has closed. */
export function trackChild(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  running.add(child);
  return new Promise((resolve) => {
    child.on("close", (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
    });
  });
}

export interface CliRun {
  readonly status: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `swoosh ARGS` to completion (at most `timeoutMs`) without blocking the event loop. */
export function runCli(args: readonly string[], options: { env?: Record<string, string>; input?: string; timeoutMs?: number } = {}): Promise<CliRun> {
  return runProcess(process.execPath, [bin, ...args], options);
}

/** Runs any program to completion (SIGKILLed after `timeoutMs`, 60 s by default), its environment cleaned as the CLI's is. */
export function runProcess(
  command: string,
  args: readonly string[],
  options: { cwd?: string; env?: Record<string, string>; input?: string; timeoutMs?: number } = {},
): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: cleanEnv(options.env), stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    const guard = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 60_000);
    child.on("error", reject);
    void trackChild(child).then(({ code: status, signal }) => {
      clearTimeout(guard);
      resolve({ status, signal, stdout, stderr });
    });
    // A child that exits before reading its input makes this write fail with EPIPE: no failure of the run (its
    // exit status says how it went), and it must not surface as an uncaught error in whichever test runs next.
    child.stdin.on("error", () => undefined);
    child.stdin.end(options.input ?? "");
  });
}

export interface ServeProcess {
  readonly child: ChildProcess;
  readonly url: string;
  readonly dataDir: string;
  readonly genesisHash: string;
  readonly recoveredIndex: number;
  readonly startupBlock: string;
  /** Everything written to stderr so far. */
  stderr(): string;
  /** Resolves when the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Fields of the startup block, `  key: value` per line. */
export function blockFields(block: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of block.split("\n")) {
    const match = /^\s+([a-z ]+):\s+(.*)$/.exec(line);
    if (match) fields.set(match[1] as string, match[2] as string);
  }
  return fields;
}

/**
 * Starts `swoosh serve --port 0 ARGS` and resolves once its startup block is
 * complete; rejects (with its stderr) if it exits first or takes longer than
 * `timeoutMs`.
 */
export function startServe(args: readonly string[], options: { cwd?: string; env?: Record<string, string>; timeoutMs?: number } = {}): Promise<ServeProcess> {
  const child = spawn(process.execPath, [bin, "serve", "--port", "0", "--log-level", "warn", ...args], {
    cwd: options.cwd,
    env: cleanEnv(options.env),
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = trackChild(child);
  let stdout = "";
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  return new Promise((resolve, reject) => {
    const guard = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`swoosh serve printed no startup block within ${options.timeoutMs ?? 30_000} ms; stderr:\n${stderr}`));
    }, options.timeoutMs ?? 30_000);
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
      const fields = blockFields(stdout);
      if (!fields.has("auth")) return;
      clearTimeout(guard);
      resolve({
        child,
        url: fields.get("url") ?? "",
        dataDir: fields.get("data dir") ?? "",
        genesisHash: fields.get("genesis hash") ?? "",
        recoveredIndex: Number(fields.get("recovered index")),
        startupBlock: stdout,
        stderr: () => stderr,
        exited,
      });
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(guard);
      reject(new Error(`swoosh serve exited (code ${code}, signal ${signal}) before it was ready; stderr:\n${stderr}`));
    });
  });
}

/** SIGTERM, then the exit code; SIGKILL if it has not exited within `timeoutMs`. */
export async function stopServe(
  server: Pick<ServeProcess, "child" | "exited">,
  timeoutMs = 15_000,
): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  server.child.kill("SIGTERM");
  const guard = setTimeout(() => server.child.kill("SIGKILL"), timeoutMs);
  try {
    return await server.exited;
  } finally {
    clearTimeout(guard);
  }
}

export interface HttpAnswer {
  readonly status: number;
  readonly headers: Headers;
  readonly body: unknown;
}

/** One JSON request; a body that is not JSON comes back as text. */
export async function http(url: string, method: string, path: string, options: { body?: unknown; token?: string; headers?: Record<string, string> } = {}): Promise<HttpAnswer> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.body !== undefined) headers["content-type"] = "application/json";
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  const response = await fetch(`${url}${path}`, {
    method,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Prometheus text, SSE and empty 304 bodies stay text.
  }
  return { status: response.status, headers: response.headers, body };
}
