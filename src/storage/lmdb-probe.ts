/**
 * Reads a WAL's LMDB file in a throwaway child process before this process
 * touches the same pages.
 *
 * LMDB trusts its file: a damaged meta page makes `mdb_env_open` fail, and
 * lmdb-js (3.5.6) then crashes the process with SIGSEGV while cleaning up; a
 * damaged B-tree page makes a read fault (SIGBUS or SIGSEGV). Neither can be
 * caught in JavaScript, so a data dir whose WAL file was damaged on disk would
 * take `swoosh serve` and `swoosh verify` down with a signal instead of the
 * report G3 promises. The child opens the environment with the log's own
 * settings (read-only) and reads every record (every page recovery could
 * touch); if it dies or fails, the file is reported as damaged.
 *
 * The child reports as it goes, so that this process need not wait for the
 * whole file: first that the environment opened and that the records at both
 * ends read back (this process may then map the file and find the log's
 * bounds), then every PROGRESS_EVERY records how far it has read in key
 * order. Between the two the child holds nothing open: it closes the
 * environment before its first report and opens it again only once told the
 * log has opened it, found its bounds and run its first write transaction,
 * as when the child read the whole file first (a log opened while the child
 * held the environment open failed that transaction now and then with
 * EINVAL). The log reads a range only once the child has read one record past
 * it (lmdb-js moves its cursor one entry beyond the last it returns), so a
 * replay runs alongside the probe instead of after it; appends and
 * truncation wait for the whole probe. The child checks the hash chain as it
 * goes, on the other core, so that a replay need not hash those records again
 * (`LmdbCommandLog.chainCheckedThrough`).
 *
 * The child is plain CommonJS (`node -e`) requiring lmdb's CommonJS build by
 * path, with an empty environment: ~100 ms until it has opened the file
 * (node, then lmdb and msgpackr; the ESM build took ~30 ms more), then
 * ~2.5–4 µs per record read and hashed.
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { statSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { RECORD_HASH_CHARS } from "./log-batch.ts";

/** Records the child reads between two progress lines. */
const PROGRESS_EVERY = 512;

/**
 * The child. Its stdout: "mappable" (both ends read, the environment closed
 * again; it then waits for "go" on stdin, `LmdbProbe.proceed`), then lines
 * "K C": every record up to key K read back, and for every record after the
 * first up to key C, its stored hash is SHA-256 of the record before's stored
 * hash and its body (the WAL's chain, log-record.ts; C stays where a link
 * fails, and a replay checks on from there itself). Then "finished" before a
 * clean exit. Keys are numbers; one that is not, or a gap, stops the lines
 * (not the reading).
 */
const PROBE_SOURCE = `
const [lmdbPath, dir, envOptions, dbOptions, every] = process.argv.slice(1);
const { hash } = require("node:crypto");
const { open } = require(lmdbPath);
// Read-only whatever the log's mode: the probe never takes LMDB's writer lock, so it never waits for the log's
// writes, and killing it (the log closes first) leaves no lock owner dead.
const envSettings = { path: dir, ...JSON.parse(envOptions), readOnly: true };
// As the log reads it: a string, the record's hash in its first ${RECORD_HASH_CHARS} characters, then its body.
const dbSettings = { ...JSON.parse(dbOptions), encoding: "string" };
let env = open(envSettings);
let db = env.openDB(dbSettings);
const read = (key) => {
  const value = db.get(key);
  if (value === undefined) throw new Error("record " + key + " is listed but does not read back");
  return value;
};
// The two records at each end: where finding the log's bounds moves a cursor.
for (const key of db.getKeys({ limit: 2 })) read(key);
for (const key of db.getKeys({ reverse: true, limit: 2 })) read(key);
// Closed before saying so, and opened again only once the log has opened the file and found its bounds ("go" on
// stdin): no other process holds the environment while the log opens it and runs its first write transaction.
env.close().then(() => {
  process.stdout.write("mappable\\n");
  let told = "";
  process.stdin.setEncoding("utf8");
  process.stdin.on("data", (chunk) => {
    told += chunk;
    if (!told.includes("\\n")) return;
    process.stdin.removeAllListeners();
    process.stdin.destroy();
    if (told.startsWith("go\\n")) readOn();
    else process.exit(3);
  });
  // The log went away without a word: nothing to read for.
  process.stdin.on("end", () => process.exit(3));
});
function readOn() {
  env = open(envSettings);
  db = env.openDB(dbSettings);
  let count = 0;
  let ordered = true;
  let previousKey = 0;
  let previousHash = null;
  let chained = 0;
  let chaining = true;
  const report = () => process.stdout.write(previousKey + " " + chained + "\\n");
  for (const key of db.getKeys({})) {
    const value = read(key);
    // Past a key that is not the next index, the records are read on without more lines.
    if (!ordered) continue;
    if (typeof key !== "number" || (previousKey !== 0 && key !== previousKey + 1)) {
      ordered = false;
      continue;
    }
    const stored = value.slice(0, ${RECORD_HASH_CHARS});
    if (chaining && previousHash !== null) {
      chaining = hash("sha256", previousHash + value.slice(${RECORD_HASH_CHARS}), "hex") === stored;
      if (chaining) chained = key;
    }
    previousKey = key;
    previousHash = stored;
    if (++count % Number(every) === 0) report();
  }
  if (ordered && count > 0) report();
  process.stdout.write("finished\\n");
  env.close().then(() => process.exit(0));
}
`;

/** How long the probe may take before it counts as hung (a damaged file can make LMDB loop). */
const PROBE_TIMEOUT_MS = 120_000;

export interface LmdbProbeSettings {
  /** The environment options the log opens with. */
  readonly envOptions: object;
  /** The log database's options (its encoding is replaced: the probe reads raw bytes). */
  readonly dbOptions: object;
  /** The log opens read-only (`envOptions` says so too): an empty data file is probed, since LMDB cannot initialize it then. */
  readonly readOnly?: boolean;
}

/**
 * Null: the file reads back (so far). Otherwise the file is damaged (what
 * went wrong, in words), the child could not be started at all (not the
 * file's fault), or the probe was stopped (the log closes).
 */
export type ProbeVerdict = null | { readonly damage: string } | { readonly startError: Error } | { readonly stopped: true };

/** A read waiting for the child to get past `key`. */
interface Waiter {
  readonly key: number;
  readonly resolve: (verdict: ProbeVerdict) => void;
}

/**
 * A probe under way. Start it with `startLmdbProbe` before awaiting anything
 * else, so the caller works meanwhile (opening a data dir reads a snapshot).
 */
export class LmdbProbe {
  /** Every key up to this read back in the child; Infinity once all of them did. */
  private through = 0;
  /** Every record after the first up to this key chains onto the one before (checked in the child). */
  private chained = 0;
  private verdict: ProbeVerdict | undefined;
  private waiters: Waiter[] = [];
  private mappableResolve: ((verdict: ProbeVerdict) => void) | undefined;
  private finishedResolve: ((verdict: ProbeVerdict) => void) | undefined;
  private stopped = false;
  /** Null once the child opened the environment, read the records at both ends and closed it again: the file may be mapped now. */
  readonly mappable: Promise<ProbeVerdict>;
  /** Null once every record read back; otherwise why not. */
  readonly finished: Promise<ProbeVerdict>;

  constructor(private readonly child: ChildProcess | null) {
    this.mappable = new Promise((resolve) => (this.mappableResolve = resolve));
    this.finished = new Promise((resolve) => (this.finishedResolve = resolve));
    if (child === null) this.finish(null);
  }

  /** True when every key up to `key` has read back in the child (`Infinity`: every key, the probe is over). */
  covers(key: number): boolean {
    return this.through >= key;
  }

  /** Every record after the file's first up to this index is SHA-256 of the one before's hash and its body; 0 when none is known to. */
  chainedThrough(): number {
    return this.chained;
  }

  /** Null once every key up to `key` read back; the damage if the child failed first. */
  reach(key: number): Promise<ProbeVerdict> {
    if (this.through >= key) return Promise.resolve(null);
    if (this.verdict !== undefined) return Promise.resolve(this.verdict);
    return new Promise((resolve) => this.waiters.push({ key, resolve }));
  }

  /**
   * Tells the child, waiting since "mappable" with the file closed, that this
   * process has opened the file and found the log's bounds: it opens the
   * file again and reads on.
   */
  proceed(): void {
    if (this.verdict === undefined) this.child?.stdin?.end("go\n");
  }

  /** Kills the child (the log closes): waiters get a verdict that is not null. */
  stop(): void {
    if (this.verdict !== undefined) return;
    this.stopped = true;
    this.child?.kill("SIGKILL");
  }

  /** A line from the child's stdout. */
  heard(line: string): void {
    if (line === "mappable") {
      this.mappableResolve?.(null);
      return;
    }
    const [through, chained] = line.split(" ").map(Number);
    if (!Number.isSafeInteger(through) || !Number.isSafeInteger(chained) || (through as number) <= this.through) return;
    this.through = through as number;
    this.chained = chained as number;
    const still: Waiter[] = [];
    for (const waiter of this.waiters) {
      if (waiter.key <= this.through) waiter.resolve(null);
      else still.push(waiter);
    }
    this.waiters = still;
  }

  /** The child ended: a clean exit means every record read back. */
  ended(outcome: ChildOutcome): void {
    this.finish(this.stopped ? { stopped: true } : describeOutcome(outcome));
  }

  private finish(verdict: ProbeVerdict): void {
    if (this.verdict !== undefined) return;
    this.verdict = verdict;
    if (verdict === null) this.through = Number.POSITIVE_INFINITY;
    // A child that ends cleanly without saying "mappable" (it cannot) or one that failed: either way the answer is final.
    this.mappableResolve?.(verdict);
    this.finishedResolve?.(verdict);
    for (const waiter of this.waiters) waiter.resolve(verdict);
    this.waiters = [];
  }
}

/**
 * Starts reading the LMDB environment in `dir` in a child process. With no
 * data file yet (or an empty one, unless read-only) there is nothing to
 * damage, and the probe is finished at once.
 */
export function startLmdbProbe(dir: string, settings: LmdbProbeSettings): LmdbProbe {
  if (dataFileSize(join(dir, "data.mdb")) === 0 && settings.readOnly !== true) return new LmdbProbe(null);
  const lmdbPath = createRequire(import.meta.url).resolve("lmdb");
  const args = ["-e", PROBE_SOURCE, lmdbPath, dir, JSON.stringify(settings.envOptions), JSON.stringify(settings.dbOptions), String(PROGRESS_EVERY)];
  // No environment: NODE_OPTIONS (a loader) and NODE_EXTRA_CA_CERTS would slow the start.
  const child = spawn(process.execPath, args, { stdio: ["pipe", "pipe", "pipe"], env: {} });
  const probe = new LmdbProbe(child);
  // A child that died before reading "go" fails the write; its exit says what happened.
  child.stdin?.on("error", () => undefined);
  let stderr = "";
  let partial = "";
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => (stderr = (stderr + chunk).slice(-4000)));
  child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
    const lines = (partial + chunk).split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) probe.heard(line);
  });
  const guard = setTimeout(() => child.kill("SIGKILL"), PROBE_TIMEOUT_MS);
  child.on("error", (error) => {
    clearTimeout(guard);
    probe.ended({ code: null, signal: null, stderr, error });
  });
  child.on("close", (code, signal) => {
    clearTimeout(guard);
    probe.ended({ code, signal, stderr });
  });
  return probe;
}

/** The data file's size, 0 when there is none (a directory not made yet included). */
function dataFileSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

interface ChildOutcome {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stderr: string;
  /** The child could not be started at all. */
  readonly error?: Error;
}

/** Null for a clean exit; the damage in words for a signal or a failure. */
function describeOutcome(outcome: ChildOutcome): ProbeVerdict {
  if (outcome.error !== undefined) return { startError: outcome.error };
  if (outcome.code === 0) return null;
  if (outcome.signal !== null) return { damage: `reading it crashed LMDB (${outcome.signal}): the file is damaged` };
  return { damage: `LMDB cannot read it: ${lastErrorLine(outcome.stderr)}` };
}

/** The `Error: …` line of a child's uncaught exception, or its last line. */
function lastErrorLine(stderr: string): string {
  const lines = stderr.split("\n").map((line) => line.trim()).filter((line) => line.length > 0);
  return lines.find((line) => /^\w*Error\b/.test(line)) ?? lines[lines.length - 1] ?? "no message";
}
