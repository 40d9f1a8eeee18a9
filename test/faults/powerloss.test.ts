/**
 * Power loss (SPEC G1) with lossyfs, a FUSE passthrough that keeps every
 * unsynced write in memory and drops it at "power off" (lossyfs/POWERLOSS.md).
 * SIGKILL cannot show that an unflushed write is lost (the page cache
 * survives); this can.
 *
 * Each round mounts lossyfs over a backing directory, runs the engine (counter
 * machine, real LMDB WAL, snapshots every 150 commands, all inside the mount)
 * in a child process with 32 writers printing "ACK id index", powers the mount
 * off at a seeded random moment (dropping, tearing or reordering what was not
 * synced), SIGKILLs the child, unmounts, and reopens the data dir straight from
 * the backing directory: every command ever acknowledged must be there exactly
 * once, `verifyDataDir` must find no problem, and the recovered state hash must
 * equal the replay's.
 *
 * The negative control runs the same harness with LMDB's flush turned off: it
 * must survive a SIGKILL (so SIGKILL tests cannot see the bug) and must lose
 * acknowledged commands on a power off (so this harness can).
 *
 * SWOOSH_SEED replays a run (the seed is printed); SWOOSH_POWERLOSS_ROUNDS sets
 * the rounds (5 by default, e.g. 100 in long mode); SWOOSH_POWERLOSS_CONTROL_ROUNDS
 * caps the negative control's power-off rounds (3). Skipped, with the reason,
 * when fuse3/libfuse3-dev/pkg-config/gcc are missing or mounting fails.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { constants } from "node:fs";
import { mkdir, mkdtemp, open, readFile, readdir, rename, stat, truncate, unlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { seededRandom } from "../../src/core/seeded-random.ts";
import { openEngine } from "../../src/engine/open.ts";
import { verifyDataDir } from "../../src/engine/verify.ts";
import { counterMachine } from "../support/counter-machine.ts";
import type { CounterState } from "../support/counter-machine.ts";
import { counterGenesis } from "../support/engine-fixtures.ts";
import { LossyMount, buildLossyfs, probeMount, removeUnlessMounted } from "./lossyfs/lossyfs.ts";
import type { LossyStats, PowerOffEvent, PowerOffMode } from "./lossyfs/lossyfs.ts";

const fixture = fileURLToPath(new URL("./fixtures/powerloss-load.ts", import.meta.url));
const seed = Number(process.env.SWOOSH_SEED ?? Date.now() % 2 ** 31);
const rounds = Number(process.env.SWOOSH_POWERLOSS_ROUNDS ?? 5);
const controlRounds = Number(process.env.SWOOSH_POWERLOSS_CONTROL_ROUNDS ?? 3);
const WRITERS = 32;
const SNAPSHOT_EVERY = 150;
/** No round may take longer than this (the child is killed, the mount unmounted). */
const ROUND_TIMEOUT_MS = 60_000;
const GENESIS = counterGenesis("powerloss");

const prepared = await buildLossyfs();
const binary = "binary" in prepared ? prepared.binary : "";
const skip: string | false = "skip" in prepared ? prepared.skip : ((await probeMount(binary)) ?? false);

type Mode = "durable" | "nosync";

interface CrashPoint {
  /** When to pull the plug, in ms after READY (or after spawn, when `early`). */
  afterMs: number;
  early: boolean;
  /** null: SIGKILL only, then a clean unmount (the page cache "survives"). */
  powerOff: { mode: PowerOffMode; seed: number } | null;
  /** Power off at the `count`-th `event` after `afterMs` (inside a commit, a snapshot…) rather than at `afterMs`. */
  armed?: { event: PowerOffEvent; count: number };
}

/**
 * Rounds per data dir: then a fresh one. The counter machine copies its map on
 * every command, so a data dir that grows without end makes long runs slower
 * and slower; a fresh dir also puts crash points into initialization again.
 */
const ROUNDS_PER_DATA_DIR = 10;

/** How long an armed power off may wait for its event before the plug is pulled anyway. */
const ARMED_WAIT_MS = 3000;

interface RoundResult {
  acked: Map<string, number>;
  stats: LossyStats;
  exit: string;
  /** Whether an armed power off met its event (false: it timed out and the plug was pulled at once). */
  armedHit: boolean;
}

/** One round: mount, run the writer child, crash it at `crash`, unmount. Always unmounts and reaps the child. */
async function runRound(backing: string, mountpoint: string, round: number, mode: Mode, crash: CrashPoint): Promise<RoundResult> {
  const mount = await LossyMount.mount(binary, backing, mountpoint);
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  try {
    const acked = new Map<string, number>();
    let stderr = "";
    let pulled = false;
    let killedByUs = false;
    let timedOut = false;
    let armedHit = false;
    let exit = "";
    const spawned = spawn(process.execPath, ["--import", "tsx", fixture, path.join(mountpoint, "data"), String(round), String(WRITERS), String(SNAPSHOT_EVERY), mode], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    child = spawned;
    exited = new Promise((resolve) => spawned.on("close", () => resolve()));
    const timers: NodeJS.Timeout[] = [];
    const kill = (): void => {
      killedByUs = true;
      spawned.kill("SIGKILL");
    };
    const pull = (): void => {
      if (pulled) return;
      pulled = true;
      const powerOff = crash.powerOff;
      if (!powerOff) return kill();
      const pullPlug = async (): Promise<void> => {
        if (crash.armed) {
          await mount.arm(crash.armed.event, crash.armed.count, powerOff.mode, powerOff.seed);
          armedHit = await mount.waitPoweredOff(ARMED_WAIT_MS);
          if (armedHit) return;
        }
        await mount.powerOff(powerOff.mode, powerOff.seed);
      };
      pullPlug().then(kill, (error: Error) => {
        stderr += `\npower off failed: ${error.message}`;
        kill();
      });
    };
    await new Promise<void>((resolve, reject) => {
      timers.push(
        setTimeout(() => {
          timedOut = true;
          spawned.kill("SIGKILL");
        }, ROUND_TIMEOUT_MS),
      );
      if (crash.early) timers.push(setTimeout(pull, crash.afterMs));
      let partial = "";
      spawned.stdout.setEncoding("utf8");
      spawned.stdout.on("data", (chunk: string) => {
        const lines = (partial + chunk).split("\n");
        partial = lines.pop() ?? "";
        for (const line of lines) {
          const [tag, id, index] = line.split(" ");
          if (tag === "READY" && !crash.early) timers.push(setTimeout(pull, crash.afterMs));
          if (tag === "ACK" && id) acked.set(id, Number(index));
        }
      });
      spawned.stderr.on("data", (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
      spawned.on("error", reject);
      // "close", not "exit": every ACK line the child wrote has been read by then.
      spawned.on("close", (code, signal) => {
        for (const timer of timers) clearTimeout(timer);
        exit = signal ?? `exit ${String(code)}`;
        if (timedOut) return reject(new Error(`round ${round} did not finish within ${ROUND_TIMEOUT_MS} ms: ${stderr}`));
        if (killedByUs) return resolve();
        // After the power off the child may die on its own: EIO (exit 1) or SIGBUS (a mapped page).
        // Before it, any death is a failure.
        const early = new Error(`child died before the crash point (${exit}): ${stderr}`);
        if (!crash.powerOff) return reject(early);
        mount.stats().then((stats) => (stats.powered_off === 1 ? resolve() : reject(early)), reject);
      });
    });
    const stats = await mount.stats();
    assert.equal(stats.powered_off, crash.powerOff ? 1 : 0, `the power off did not happen: ${stderr}`);
    return { acked, stats, exit, armedHit };
  } finally {
    if (child && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await exited;
    await mount.unmount();
  }
}

interface Check {
  /** Acknowledged commands missing from the recovered state. */
  lost: string[];
  /** Everything else that is wrong, in words. */
  problems: string[];
  recoveredIndex: number;
}

/** Reopens the data dir from the backing directory, as a restart after the crash would. */
async function checkDataDir(dataDir: string, everAcked: ReadonlyMap<string, number>): Promise<Check> {
  const problems: string[] = [];
  let engine;
  try {
    engine = await openEngine<CounterState>({ dataDir, machine: counterMachine, genesis: GENESIS, snapshotEvery: 0, onFatal: () => undefined });
  } catch (error) {
    return { lost: [...everAcked.keys()], problems: [`recovery refused to start: ${(error as Error).message}`], recoveredIndex: -1 };
  }
  let liveHash: string;
  let index: number;
  const lost: string[] = [];
  try {
    const read = await engine.readState();
    index = read.index;
    const counter = read.state as CounterState;
    for (const [id, ackedIndex] of everAcked) {
      if (!Object.prototype.hasOwnProperty.call(counter.values, id)) lost.push(`${id}@${ackedIndex}`);
      else if (ackedIndex > index) problems.push(`${id} acknowledged at index ${ackedIndex}, beyond the recovered index ${index}`);
    }
    // Each command sets a distinct key and adds its index: both hold only if
    // every logged command was applied exactly once.
    if (Object.keys(counter.values).length !== index) problems.push(`${Object.keys(counter.values).length} keys for ${index} applied entries`);
    if (counter.indexSum !== (index * (index + 1)) / 2) problems.push(`index sum ${counter.indexSum}: an entry was applied twice or skipped`);
    liveHash = await engine.stateHash();
  } finally {
    await engine.close();
  }
  const report = await verifyDataDir({ dataDir, machine: counterMachine });
  for (const problem of report.problems) problems.push(`verify: ${JSON.stringify(problem)}`);
  if (report.finalStateHash !== liveHash) problems.push(`replay hash ${String(report.finalStateHash)} differs from the recovered ${liveHash}`);
  return { lost, problems, recoveredIndex: index };
}

/**
 * A seeded crash point. 20% during startup (genesis, recovery, WAL open), half
 * at a random time, half armed on its k-th write, fsync or directory fsync;
 * 20% at a random time under load; 60% armed on an operation under load: the
 * k-th write (data held, not synced), the k-th fsync (a commit's pages written,
 * its flush not done) or the k-th directory fsync (a snapshot renamed or an old
 * one removed, not yet durable). A random time mostly lands between two
 * commits; the armed ones land inside them.
 */
function crashPoint(random: () => number): CrashPoint {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const powerOff = { mode: pick<PowerOffMode>(["drop", "prefix", "subset"]), seed: Math.floor(random() * 2 ** 31) };
  const kind = random();
  if (kind < 0.1) return { early: true, afterMs: Math.floor(random() * 2500), powerOff };
  if (kind < 0.2) {
    const event = pick<PowerOffEvent>(["write", "fsync", "fsyncdir"]);
    const count = 1 + Math.floor(random() * (event === "write" ? 12 : event === "fsync" ? 6 : 8));
    return { early: true, afterMs: 0, powerOff, armed: { event, count } };
  }
  const afterMs = 50 + Math.floor(random() * 800);
  if (kind < 0.4) return { early: false, afterMs, powerOff };
  const event = pick<PowerOffEvent>(["write", "write", "fsync", "fsync", "fsync", "fsyncdir"]);
  const count = 1 + Math.floor(random() * (event === "write" ? 60 : event === "fsync" ? 30 : 3));
  return { early: false, afterMs, powerOff, armed: { event, count } };
}

function describeCrash(crash: CrashPoint): string {
  const off = crash.powerOff ? `power off (${crash.powerOff.mode} ${crash.powerOff.seed})` : "SIGKILL";
  const after = `${crash.afterMs} ms after ${crash.early ? "spawn" : "READY"}`;
  const at = crash.armed ? `at ${crash.armed.event} #${crash.armed.count} armed ${after}` : after;
  return `${off} ${at}`;
}

const sum = (stats: LossyStats[], name: string): number => stats.reduce((total, s) => total + (s[name] ?? 0), 0);

async function fsyncPath(target: string): Promise<void> {
  const handle = await open(target, constants.O_RDONLY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function writeSynced(file: string, content: string): Promise<void> {
  const handle = await open(file, "w");
  try {
    await handle.writeFile(content);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

describe("lossyfs", { skip }, () => {
  it("keeps what was fsynced and drops the rest at power off", async (t) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "swoosh-lossyfs-"));
    const backing = path.join(dir, "backing");
    const m = path.join(dir, "mnt");
    t.after(() => removeUnlessMounted(dir, [m]));
    const mount = await LossyMount.mount(binary, backing, m);
    try {
      // Durable setup: files whose content and directory entries were synced.
      for (const name of ["kept", "truncated", "replaced", "unlinked"]) await writeSynced(path.join(m, name), `old ${name}`);
      await mkdir(path.join(m, "durable-dir"));
      await fsyncPath(m);

      // 1. An unsynced append is visible, survives a close and reopen, and is lost.
      await writeFile(path.join(m, "kept"), " + unsynced", { flag: "a" });
      assert.equal(await readFile(path.join(m, "kept"), "utf8"), "old kept + unsynced");
      assert.equal((await stat(path.join(m, "kept"))).size, "old kept + unsynced".length);
      // 2. An unsynced truncate.
      await truncate(path.join(m, "truncated"), 2);
      // 3. A synced file renamed over a durable one, without the directory fsync.
      await writeSynced(path.join(m, "replaced.tmp"), "new content");
      await rename(path.join(m, "replaced.tmp"), path.join(m, "replaced"));
      // 4. An unlink without the directory fsync.
      await unlink(path.join(m, "unlinked"));
      // 5. A synced file in a synced, new directory whose own entry was never synced.
      await mkdir(path.join(m, "new-dir"));
      await writeSynced(path.join(m, "new-dir", "file"), "x");
      await fsyncPath(path.join(m, "new-dir"));
      // 6. A file created and synced in a durable directory that is then synced: survives.
      await writeSynced(path.join(m, "durable-dir", "file"), "durable");
      await fsyncPath(path.join(m, "durable-dir"));
      // 7. An O_DSYNC write is durable when it returns.
      const dsync = await open(path.join(m, "durable-dir", "file"), constants.O_WRONLY | constants.O_DSYNC);
      await dsync.write("DURABLE", 0);
      await dsync.close();
      assert.deepEqual((await readdir(m)).sort(), [".lossyfs-ctl", "durable-dir", "kept", "new-dir", "replaced", "truncated"]);

      await mount.powerOff("drop", 0);
      await assert.rejects(readFile(path.join(m, "kept")), { code: "EIO" });
      const stats = await mount.stats();
      assert.equal(stats.powered_off, 1);
      assert.equal(stats.undo_errors, 0);
      assert.equal(stats.discarded_bytes, " + unsynced".length);
    } finally {
      await mount.unmount();
    }
    const content = async (name: string): Promise<string> => readFile(path.join(backing, name), "utf8");
    assert.equal(await content("kept"), "old kept");
    assert.equal(await content("truncated"), "old truncated");
    assert.equal(await content("replaced"), "old replaced");
    assert.equal(await content("unlinked"), "old unlinked");
    assert.equal(await content("durable-dir/file"), "DURABLE");
    assert.deepEqual((await readdir(backing)).sort(), ["durable-dir", "kept", "replaced", "truncated", "unlinked"]);
  });

  it("tears: a seeded prefix or subset of the unsynced sectors survives", async (t) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "swoosh-lossyfs-"));
    const m = path.join(dir, "mnt");
    t.after(() => removeUnlessMounted(dir, [m]));
    const sectors = 64;
    for (const mode of ["prefix", "subset"] as const) {
      const backing = path.join(dir, `backing-${mode}`);
      const mount = await LossyMount.mount(binary, backing, m);
      try {
        await writeSynced(path.join(m, "f"), "");
        await fsyncPath(m);
        const handle = await open(path.join(m, "f"), "r+");
        // One 512-byte write per sector, each filled with its own letter, in order.
        for (let i = 0; i < sectors; i++) await handle.write(Buffer.alloc(512, 65 + (i % 26)), 0, 512, i * 512);
        await handle.close();
        await mount.powerOff(mode, 7);
      } finally {
        await mount.unmount();
      }
      const torn = await readFile(path.join(backing, "f"));
      const kept = Array.from({ length: sectors }, (_, i) => torn.length >= (i + 1) * 512 && torn[i * 512] === 65 + (i % 26));
      if (mode === "prefix") {
        const cut = kept.indexOf(false) === -1 ? sectors : kept.indexOf(false);
        assert.equal(torn.length, cut * 512, "a prefix, cut at a sector boundary");
        assert.ok(kept.slice(cut).every((k) => !k));
      } else {
        assert.ok(kept.some((k) => k) && kept.some((k, i) => !k && i < sectors - 1), `a subset with holes: ${kept.map(Number).join("")}`);
      }
    }
  });
});

describe(`engine under power loss (lossyfs; seed ${seed}, rounds ${rounds})`, { skip }, () => {
  it("recovers every acknowledged command exactly once after each power off", async (t) => {
    const random = seededRandom(seed);
    const dir = await mkdtemp(path.join(os.tmpdir(), "swoosh-powerloss-"));
    const mountpoint = path.join(dir, "mnt");
    t.after(() => removeUnlessMounted(dir, [mountpoint]));
    let backing = "";
    const everAcked = new Map<string, number>();
    let ackedTotal = 0;
    const allStats: LossyStats[] = [];
    const kinds: Record<string, number> = {};
    const count = (key: string): void => void (kinds[key] = (kinds[key] ?? 0) + 1);
    for (let round = 0; round < rounds; round++) {
      if (round % ROUNDS_PER_DATA_DIR === 0) {
        if (backing) await removeUnlessMounted(backing, [mountpoint]);
        backing = path.join(dir, `backing-${round / ROUNDS_PER_DATA_DIR}`);
        ackedTotal += everAcked.size;
        everAcked.clear();
      }
      const crash = crashPoint(random);
      const { acked, stats, armedHit } = await runRound(backing, mountpoint, round, "durable", crash);
      allStats.push(stats);
      count(crash.powerOff?.mode ?? "none");
      // Did the plug come out with a write pending (more than the LOCK file's few bytes)?
      if ((stats.discarded_bytes ?? 0) + (stats.torn_kept_bytes ?? 0) >= 512) count("with-unsynced-data");
      const phase = crash.early ? "startup" : "load";
      count(crash.armed ? (armedHit ? `${phase}-at-${crash.armed.event}` : `${phase}-armed-timeout`) : `${phase}-timer`);
      for (const [id, index] of acked) everAcked.set(id, index);
      const where = `seed ${seed}, round ${round} (${describeCrash(crash)}${crash.armed && !armedHit ? ", event not reached: pulled at once" : ""})`;
      assert.equal(stats.undo_errors, 0, `${where}: lossyfs could not undo a metadata op`);
      const check = await checkDataDir(path.join(backing, "data"), everAcked);
      assert.deepEqual(check.lost, [], `${where}: acknowledged commands lost`);
      assert.deepEqual(check.problems, [], `${where}: recovery problems`);
    }
    ackedTotal += everAcked.size;
    t.diagnostic(
      `seed ${seed}: ${rounds} power offs ${JSON.stringify(kinds)}, ${ackedTotal} acknowledged commands, 0 lost; ` +
        `lossyfs: ${sum(allStats, "fsyncs")} fsyncs, ${sum(allStats, "fsyncdirs")} dir fsyncs, ${sum(allStats, "synced_bytes")} bytes synced, ` +
        `${sum(allStats, "discarded_bytes")} discarded, ${sum(allStats, "torn_kept_bytes")} kept torn, ${sum(allStats, "meta_undone")} metadata ops undone`,
    );
    assert.ok(ackedTotal > 0, "the load acknowledged commands");
  });

  it("negative control: without LMDB's flush, SIGKILL loses nothing but a power off loses acknowledged commands", async (t) => {
    const random = seededRandom(seed ^ 0x5eed);
    const dir = await mkdtemp(path.join(os.tmpdir(), "swoosh-powerloss-control-"));
    const backing = path.join(dir, "backing");
    const mountpoint = path.join(dir, "mnt");
    t.after(() => removeUnlessMounted(dir, [mountpoint]));
    const everAcked = new Map<string, number>();

    // 1. SIGKILL only, then a clean unmount (what the page cache holds reaches the disk):
    //    the unflushed configuration passes, which is why a SIGKILL test cannot catch it.
    const killed = await runRound(backing, mountpoint, 0, "nosync", { early: false, afterMs: 300 + Math.floor(random() * 500), powerOff: null });
    for (const [id, index] of killed.acked) everAcked.set(id, index);
    const afterKill = await checkDataDir(path.join(backing, "data"), everAcked);
    assert.ok(killed.acked.size > 0, "the control acknowledged commands");
    assert.deepEqual(afterKill.lost, [], "SIGKILL alone does not lose what LMDB wrote without flushing");
    assert.deepEqual(afterKill.problems, []);

    // 2. Power off: acknowledged commands must go missing (or recovery must refuse to start).
    const outcomes: string[] = [];
    let caught = false;
    for (let round = 1; round <= controlRounds && !caught; round++) {
      const crash: CrashPoint = { early: false, afterMs: 300 + Math.floor(random() * 500), powerOff: { mode: "drop", seed: 0 } };
      const { acked } = await runRound(backing, mountpoint, round, "nosync", crash);
      for (const [id, index] of acked) everAcked.set(id, index);
      const check = await checkDataDir(path.join(backing, "data"), everAcked);
      caught = check.lost.length > 0 || check.problems.length > 0;
      outcomes.push(`round ${round}: ${acked.size} acknowledged, ${check.lost.length} of ${everAcked.size} lost, recovered index ${check.recoveredIndex}` + (check.problems.length ? `, problems: ${check.problems.join("; ").slice(0, 300)}` : ""));
    }
    t.diagnostic(`seed ${seed}: negative control: SIGKILL lost 0 of ${killed.acked.size}; power off: ${outcomes.join(" | ")}`);
    assert.ok(caught, `seed ${seed}: the harness did not catch the unflushed configuration in ${controlRounds} power offs: ${outcomes.join(" | ")}`);
  });
});
