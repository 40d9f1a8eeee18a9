/**
 * Shared support for the server-level fault tests (server-sigkill, disk-full,
 * corruption, hostile-input, concurrency): the server as a child process
 * (`swoosh serve`, or a fixture calling startServer with a fault seam) whose
 * URL is read from its startup block, a bounded JSON-over-HTTP client that
 * tells "no answer" from an answer, the whole WAL read back over GET /log,
 * `swoosh verify --json`, RSS sampling, and tmpfs mounts.
 *
 * Every child is tracked; `killChildren()` (call it in an `after` hook)
 * SIGKILLs the ones still running, by pid. Scale knobs come from the
 * environment (`intEnv`), seeds from SWOOSH_SEED (`seedFromEnv`).
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { createGenesisState } from "../../src/domain/index.ts";
import { createGenesis } from "../../src/engine/genesis.ts";
import type { GenesisDocument } from "../../src/engine/genesis.ts";
import { bin, blockFields, cleanEnv, killAll, runCli, stopServe, trackChild } from "../e2e/processes.ts";
import { jsonOrUndefined } from "../support/json-text.ts";

export { runCli };

/** A non-negative integer from the environment, or `fallback`. */
export function intEnv(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === "") return fallback;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`${name} must be a non-negative integer, got ${JSON.stringify(text)}`);
  return value;
}

/**
 * Long mode: `npm run test:faults` (it sets SWOOSH_KILL_ROUNDS, 200 by
 * default; 50 or more counts as long), or SWOOSH_FAULTS_LONG=1.
 */
export function longMode(): boolean {
  return process.env.SWOOSH_FAULTS_LONG === "1" || intEnv("SWOOSH_KILL_ROUNDS", 0) >= 50;
}

/** The scale knob `name` from the environment, else `fast` (npm test) or `long` (long mode). */
export function scaled(name: string, fast: number, long: number): number {
  return intEnv(name, longMode() ? long : fast);
}

/** SWOOSH_SEED, or a fresh seed (printed by each test so it can be replayed). */
export function seedFromEnv(): number {
  return intEnv("SWOOSH_SEED", Date.now() % 2 ** 31);
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** SIGKILLs every child this module started that is still running. */
export const killChildren = killAll;

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface ServerChild {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Resolves with the startup block's fields; rejects if the process exits (or `timeoutMs` passes) first. */
  readonly ready: Promise<ServerInfo>;
  readonly exited: Promise<Exit>;
  stderr(): string;
  stdout(): string;
}

export interface ServerInfo {
  readonly url: string;
  readonly recoveredIndex: number;
  readonly genesisHash: string;
  /** ms from spawn to the startup block. */
  readonly startupMs: number;
}

export interface SpawnOptions {
  /** A fixture script (run with tsx) printing the same startup block; default: `bin/swoosh.js serve --port 0`. */
  readonly fixture?: string;
  readonly env?: Record<string, string>;
  readonly timeoutMs?: number;
  readonly logLevel?: string;
}

/** Starts `swoosh serve --port 0 ARGS` (or a fixture with ARGS) without waiting for it. */
export function spawnServer(args: readonly string[], options: SpawnOptions = {}): ServerChild {
  const argv =
    options.fixture === undefined
      ? [bin, "serve", "--port", "0", "--log-level", options.logLevel ?? "warn", ...args]
      : ["--import", "tsx", options.fixture, ...args];
  const startedAt = Date.now();
  const child = spawn(process.execPath, argv, { env: cleanEnv(options.env), stdio: ["ignore", "pipe", "pipe"] });
  const exited: Promise<Exit> = trackChild(child);
  let stdout = "";
  let stderr = "";
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    // Bounded: a chatty child must not grow the test's memory without end.
    stderr = (stderr + chunk).slice(-200_000);
  });
  const ready = new Promise<ServerInfo>((resolve, reject) => {
    const timeoutMs = options.timeoutMs ?? 60_000;
    const guard = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`the server printed no startup block within ${timeoutMs} ms; stderr:\n${stderr}`));
    }, timeoutMs);
    child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
      const fields = blockFields(stdout);
      if (!fields.has("auth")) return;
      clearTimeout(guard);
      resolve({
        url: fields.get("url") ?? "",
        recoveredIndex: Number(fields.get("recovered index")),
        genesisHash: fields.get("genesis hash") ?? "",
        startupMs: Date.now() - startedAt,
      });
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(guard);
      reject(new Error(`the server exited (code ${code}, signal ${signal}) before it was ready; stderr:\n${stderr}`));
    });
  });
  // A caller that kills the child before it is ready need not handle this.
  ready.catch(() => undefined);
  return { child, pid: child.pid ?? -1, ready, exited, stderr: () => stderr, stdout: () => stdout };
}

/** Spawns and waits for the startup block. */
export async function startServer(args: readonly string[], options: SpawnOptions = {}): Promise<ServerChild & ServerInfo> {
  const server = spawnServer(args, options);
  const info = await server.ready;
  return { ...server, ...info };
}

/** SIGTERM, then the exit; SIGKILL if it has not exited within `timeoutMs`. */
export const stopServer: (server: ServerChild, timeoutMs?: number) => Promise<Exit> = stopServe;

/** SIGKILL and wait for the exit. */
export async function killServer(server: ServerChild): Promise<Exit> {
  server.child.kill("SIGKILL");
  return server.exited;
}

export interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  /** Parsed JSON, or undefined when the body is not JSON. */
  readonly body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** An HTTP exchange that produced no answer: refused, reset, or timed out. */
export class NoAnswer extends Error {
  constructor(cause: unknown) {
    super(`no answer: ${describeError(cause)}`, { cause });
    this.name = "NoAnswer";
  }

  /** The request timed out (the server accepted it and never answered) rather than failing to connect or being reset. */
  get timedOut(): boolean {
    return (this.cause as { name?: string } | null)?.name === "TimeoutError";
  }
}

export function describeError(error: unknown): string {
  const e = error as { message?: string; cause?: { code?: string; message?: string } } | null;
  return [e?.message, e?.cause?.code ?? e?.cause?.message].filter(Boolean).join(": ") || String(error);
}

export interface RequestOptions {
  readonly body?: unknown;
  /** Sent as is (string or bytes) instead of JSON.stringify(body). */
  readonly raw?: string | Uint8Array;
  readonly headers?: Record<string, string>;
  readonly timeoutMs?: number;
}

/** One request, bounded in time; throws NoAnswer when the server gave none. */
export async function request(url: string, method: string, pathAndQuery: string, options: RequestOptions = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...options.headers };
  let body: string | Uint8Array | undefined;
  if (options.raw !== undefined) body = options.raw;
  else if (options.body !== undefined) body = JSON.stringify(options.body);
  if (body !== undefined) headers["content-type"] ??= "application/json";
  let response: Response;
  let text: string;
  try {
    response = await fetch(url + pathAndQuery, { method, headers, body, signal: AbortSignal.timeout(options.timeoutMs ?? 15_000) });
    text = await response.text();
  } catch (error) {
    throw new NoAnswer(error);
  }
  return { status: response.status, headers: response.headers, text, body: jsonOrUndefined(text) };
}

export const post = (url: string, command: unknown, timeoutMs?: number): Promise<Answer> => request(url, "POST", "/command", { body: command, timeoutMs });

/** GET that must answer 200 with JSON. */
export async function getJson<T>(url: string, pathAndQuery: string): Promise<T> {
  const answer = await request(url, "GET", pathAndQuery);
  if (answer.status !== 200) throw new Error(`GET ${pathAndQuery}: HTTP ${answer.status} ${answer.text.slice(0, 500)}`);
  return answer.body as T;
}

export interface WireEntry {
  readonly index: number;
  readonly hlc: string;
  readonly type: string;
  readonly payload: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  readonly id?: string;
  readonly prevHash: string;
  readonly hash: string;
}

/**
 * Entries from `from` (or from the oldest entry the WAL still holds) to the
 * durable end, page by page (bounded by `maxEntries`).
 */
export async function readLog(url: string, from: number | "oldest", maxEntries = 10_000_000): Promise<{ firstIndex: number; lastIndex: number; entries: WireEntry[] }> {
  const entries: WireEntry[] = [];
  let next: number | null = from === "oldest" ? null : from;
  let firstIndex = 0;
  let lastIndex = 0;
  for (let page = 0; page <= maxEntries / 1000 + 1; page++) {
    const query = next === null ? "/log?limit=1000" : `/log?from=${next}&limit=1000`;
    const answer = await request(url, "GET", query);
    if (answer.status !== 200) throw new Error(`GET ${query}: HTTP ${answer.status} ${answer.text.slice(0, 300)}`);
    const body = answer.body as { firstIndex: number; lastIndex: number; entries: WireEntry[] };
    firstIndex = body.firstIndex;
    lastIndex = body.lastIndex;
    entries.push(...body.entries);
    const last = body.entries.at(-1);
    if (last === undefined || last.index >= body.lastIndex) break;
    next = last.index + 1;
  }
  return { firstIndex, lastIndex, entries };
}

export interface VerifyJson {
  readonly ok: boolean;
  readonly problems: Array<{ file: string; index?: number; detail: string }>;
  readonly walFirstIndex: number | null;
  readonly walLastIndex: number | null;
  readonly snapshotsChecked: number;
  readonly finalStateHash: string | null;
}

/** `swoosh verify --data-dir D --json`: the exit status and the report. */
export async function verifyCli(dataDir: string): Promise<{ status: number | null; report: VerifyJson | null; stdout: string; stderr: string }> {
  const run = await runCli(["verify", "--data-dir", dataDir, "--json"], { timeoutMs: 300_000 });
  let report: VerifyJson | null;
  try {
    report = JSON.parse(run.stdout) as VerifyJson;
  } catch {
    report = null;
  }
  return { status: run.status, report, stdout: run.stdout, stderr: run.stderr };
}

/** Resident set size of a process in bytes (Linux /proc), or null when it is gone. */
export async function rssBytes(pid: number): Promise<number | null> {
  try {
    const status = await readFile(`/proc/${pid}/status`, "utf8");
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return match ? Number(match[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** A genesis file for a test cluster with config overrides; returns its path and document. */
export async function writeGenesis(dir: string, clusterId: string, config: Record<string, number> = {}): Promise<{ file: string; genesis: GenesisDocument }> {
  const genesis = createGenesis(clusterId, createGenesisState({ clusterId, config }), "2026-01-01T00:00:00.000Z");
  const file = path.join(dir, `genesis-${clusterId}.json`);
  await writeFile(file, JSON.stringify(genesis));
  return { file, genesis };
}
