/**
 * Reads a WAL's LMDB file in a throwaway child process before this process
 * maps it.
 *
 * LMDB trusts its file: a damaged meta page makes `mdb_env_open` fail, and
 * lmdb-js (3.5.6) then crashes the process with SIGSEGV while cleaning up; a
 * damaged B-tree page makes a read fault (SIGBUS or SIGSEGV). Neither can be
 * caught in JavaScript, so a data dir whose WAL file was damaged on disk would
 * take `swoosh serve` and `swoosh verify` down with a signal instead of the
 * report G3 promises. The child opens the environment with the log's own
 * settings and reads every record (every page recovery could touch); if it
 * dies or fails, the file is reported as damaged and this process never maps
 * it. The child is plain JavaScript (`node -e`) importing lmdb by URL, so it
 * starts in tens of milliseconds from the sources and from `dist/` alike.
 */
import { spawn } from "node:child_process";
import { statSync } from "node:fs";
import { join } from "node:path";

/**
 * The child: opens the env and reads every record's bytes; a clean exit means
 * all of them read back (~0.8 µs per record: 300,000 records of ~400 bytes in
 * ~230 ms, plus ~70 ms to start).
 */
const PROBE_SOURCE = `
const [lmdbUrl, dir, envOptions, dbOptions] = process.argv.slice(1);
const { open } = await import(lmdbUrl);
const env = open({ path: dir, ...JSON.parse(envOptions) });
const db = env.openDB({ ...JSON.parse(dbOptions), encoding: "binary" });
// Each key, then its value's bytes copied out (a shared buffer: no allocation per record).
for (const key of db.getKeys({})) {
  if (db.getBinaryFast(key) === undefined) throw new Error("record " + key + " is listed but does not read back");
}
await env.close();
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
 * Null when the LMDB environment in `dir` opens and every record in the log
 * database reads back in a child process (or there is no data file yet);
 * otherwise what went wrong, in words. The child is started before this
 * returns, so the caller can do other work (read a snapshot) while it runs.
 */
export function probeLmdbEnvironment(dir: string, settings: LmdbProbeSettings): Promise<string | null> {
  // No file, or an empty one: LMDB initializes a new environment (nothing to damage), unless it opens read-only.
  if (dataFileSize(join(dir, "data.mdb")) === 0 && settings.readOnly !== true) return Promise.resolve(null);
  const args = ["--input-type=module", "-e", PROBE_SOURCE, import.meta.resolve("lmdb"), dir, JSON.stringify(settings.envOptions), JSON.stringify(settings.dbOptions)];
  return new Promise<ChildOutcome>((resolve) => {
    const child = spawn(process.execPath, args, { stdio: ["ignore", "ignore", "pipe"], env: {} });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr = (stderr + chunk).slice(-4000)));
    const guard = setTimeout(() => child.kill("SIGKILL"), PROBE_TIMEOUT_MS);
    child.on("error", (error) => {
      clearTimeout(guard);
      resolve({ code: null, signal: null, stderr, error });
    });
    child.on("close", (code, signal) => {
      clearTimeout(guard);
      resolve({ code, signal, stderr });
    });
  }).then(describeOutcome);
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

/** Null for a clean exit; the damage in words for a signal or a failure; a child that never started throws. */
function describeOutcome(outcome: ChildOutcome): string | null {
  if (outcome.error !== undefined) throw outcome.error;
  if (outcome.code === 0) return null;
  if (outcome.signal !== null) return `reading it crashed LMDB (${outcome.signal}): the file is damaged`;
  return `LMDB cannot read it: ${lastErrorLine(outcome.stderr)}`;
}

/** The `Error: …` line of a child's uncaught exception, or its last line. */
function lastErrorLine(stderr: string): string {
  const lines = stderr.split("\n").map((line) => line.trim()).filter((line) => line.length > 0);
  return lines.find((line) => /^\w*Error\b/.test(line)) ?? lines[lines.length - 1] ?? "no message";
}
