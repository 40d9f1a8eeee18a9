/**
 * `npm run bench:http`: Swoosh's HTTP API under load, beside etcd and a
 * do-nothing HTTP server, all measured in the same run with the same Node
 * client (an undici Pool of 64 keep-alive connections; etcd through the etcd3
 * client with 64 puts in flight). Each server runs in its own process, none
 * shares the client's event loop. Ratios are what to quote: shared machines
 * are noisy, and every peer sees the same noise within a run.
 *
 *  1. Swoosh `POST /command` task.submit throughput at 64 in flight, p50/p99;
 *  2. etcd puts of the same bytes at 64 in flight — Swoosh/etcd target ≥ 2.5×;
 *  3. the do-nothing HTTP server — Swoosh/do-nothing target ≥ 0.6×;
 *     beside it the durable do-nothing server (the same, plus an LMDB put of
 *     the body with the WAL's settings, answered after the commit): the
 *     ceiling of any server that makes each command durable on this storage,
 *     measured against the do-nothing server and Swoosh alike;
 *  4. Swoosh p99 at an offered 2,000 commands/s (open loop, latency from the
 *     scheduled send time) — target ≤ 10 ms; the do-nothing server at the same
 *     rate shows the harness's own floor, the durable do-nothing server the
 *     floor of any server that answers after an LMDB commit. The rate phase
 *     has its own, longer warm-up (--rate-warmup-seconds, 4 s): a fresh
 *     server's first second at 2,000/s builds a backlog (JIT, new
 *     connections) that Swoosh drains by ~2.75 s and the durable do-nothing
 *     server by ~1.25 s; measured from 2 s, Swoosh's p99 was partly that
 *     start-up tail, not the steady rate the target is about. The window still
 *     holds Swoosh's snapshots (every 10,000 commands: at ~5 s and ~12 s).
 *     Each rate peer is measured in --rate-windows (3) windows, interleaved
 *     with the other peers', and the figure is the median of their p99s: on
 *     this shared disk one fdatasync takes 50–250 ms now and then, and at
 *     2,000/s a single such stall decides a window's p99, whichever server
 *     it falls on. Beside each window, a probe (disk-stall-probe.ts) counts
 *     the disk's own fdatasync stalls (> 10 ms) during it.
 *
 * Decisions: Swoosh's server and the do-nothing server both run as child
 * processes (`node --import tsx`), etcd is its own process, and the load
 * generator is this process alone; on a 2-core machine client and server each
 * get about a core. Every peer starts fresh (own process, own temp data dir
 * under os.tmpdir()) for each run, and the order of peers rotates between
 * runs. The open-loop figures are taken first (the tail latency is what a busy
 * machine spoils most). A peer that is not there (etcd not installed — or not
 * at $ETCD_BIN —, src/server not written yet) is skipped with a line saying why.
 *
 * What bounds each figure is reported beside it: cores busy in the client and
 * in the server over the measured window, CPU µs per operation (steadier than
 * throughput on a shared machine), Swoosh's own /metrics (WAL flushes, mean
 * flush time and batch size, event-loop lag), and the machine's load average
 * and 4 KiB fdatasync latency before and after.
 *
 * Flags: --seconds 10 --warmup-seconds 2 --runs 3 --connections 64
 *        --rate 2000 --rate-seconds 10 --rate-warmup-seconds 4 --rate-windows 3 --peers swoosh,etcd,do-nothing,durable-nothing
 *        (also: etcd-gateway — etcd through its HTTP/JSON gateway and the undici
 *        pool, to separate etcd's own cost from its Node gRPC client's)
 *        --json FILE (default: bench/results/http.json, the committed results, but
 *        only for a full run: every default peer, no --profile-dir or
 *        --snapshot-every; a partial or diagnostic run writes no file unless told)
 *        --profile-dir DIR (Swoosh under --cpu-prof)
 *        --snapshot-every N (Swoosh; default: the server's own default — for diagnosis only)
 *        --quiet-below LOAD [--quiet-wait-seconds 300]: first wait until the
 *        1-minute load average is below LOAD (on a shared machine)
 */
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import { probeFdatasync } from "./peers/disk-probe.ts";
import { startDiskStallProbe } from "./peers/disk-stall-probe.ts";
import type { DiskStallProbe, DiskStalls } from "./peers/disk-stall-probe.ts";
import { doNothingPeer, durableNothingPeer } from "./peers/do-nothing-peer.ts";
import { ETCD_INSTALL_HINT, findEtcd } from "./peers/etcd.ts";
import { etcdGatewayPeer } from "./peers/etcd-gateway-peer.ts";
import { etcdPeer } from "./peers/etcd-peer.ts";
import { closedLoop, openLoop } from "./peers/load.ts";
import type { LoadResult, OpenLoopResult } from "./peers/load.ts";
import { machineState, waitForQuiet } from "./peers/machine.ts";
import { withPeer } from "./peers/peer.ts";
import type { Peer } from "./peers/peer.ts";
import { startCpuMeter } from "./peers/process-cpu.ts";
import type { CpuMeter } from "./peers/process-cpu.ts";
import { median, round } from "./peers/stats.ts";
import { swooshPeer } from "./peers/swoosh-peer.ts";
import { SWOOSH_SERVER_MODULE, swooshServerAvailable } from "./peers/swoosh-server.ts";

const DEFAULT_PEERS = "swoosh,etcd,do-nothing,durable-nothing";
const COMMITTED_RESULTS = "bench/results/http.json";
const { values: flags } = parseArgs({
  options: {
    seconds: { type: "string", default: "10" },
    "warmup-seconds": { type: "string", default: "2" },
    runs: { type: "string", default: "3" },
    connections: { type: "string", default: "64" },
    rate: { type: "string", default: "2000" },
    "rate-seconds": { type: "string", default: "10" },
    "rate-warmup-seconds": { type: "string", default: "4" },
    "rate-windows": { type: "string", default: "3" },
    peers: { type: "string", default: DEFAULT_PEERS },
    json: { type: "string" },
    "profile-dir": { type: "string" },
    "snapshot-every": { type: "string" },
    "quiet-below": { type: "string" },
    "quiet-wait-seconds": { type: "string", default: "300" },
  },
});
const durationMs = Number(flags.seconds) * 1000;
const warmupMs = Number(flags["warmup-seconds"]) * 1000;
const runs = Number(flags.runs);
const connections = Number(flags.connections);
const ratePerSec = Number(flags.rate);
const rateDurationMs = Number(flags["rate-seconds"]) * 1000;
const rateWarmupMs = Number(flags["rate-warmup-seconds"]) * 1000;
const rateWindows = Number(flags["rate-windows"]);
const wanted = new Set(flags.peers.split(",").map((name) => name.trim()));
/**
 * Where the summary goes. The committed results are replaced only by a run
 * that measured what they hold (every default peer, no diagnostic flag): a
 * one-peer profiling run once overwrote them by default.
 */
const fullRun = DEFAULT_PEERS.split(",").every((name) => wanted.has(name)) && flags["profile-dir"] === undefined && flags["snapshot-every"] === undefined;
const jsonPath = flags.json ?? (fullRun ? COMMITTED_RESULTS : undefined);

const TARGETS = { swooshOverEtcd: 2.5, swooshOverDoNothing: 0.6, p99AtRateMs: 10 } as const;
/** The whole run is bounded: past this, children are killed and the process exits non-zero (15 s per peer start/stop/drain). */
const watchdogMs = (peerCount: number): number => runs * peerCount * (warmupMs + durationMs + 15_000) + rateWindows * 3 * (rateWarmupMs + rateDurationMs + 15_000) + 30_000;

interface Row {
  run: number;
  peer: string;
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  errors: number;
  /** Cores busy during the window: the load generator (this process) and the peer's server. */
  clientCores: number | null;
  serverCores: number | null;
  /** CPU microseconds per operation: less sensitive to a busy machine than throughput. */
  clientCpuUsPerOp: number | null;
  serverCpuUsPerOp: number | null;
  /** The server's own figures (Swoosh: WAL flushes, mean flush ms and batch size, event-loop lag). */
  server?: Record<string, number>;
}

type CpuUse = { clientCores: number; peerCores: number | undefined };
/** A load result with the CPU it took and the peer's own diagnostics (see Peer.diagnostics). */
type Measured<T> = T & { cpu: CpuUse | undefined; server: Record<string, number> | undefined };
/** An open-loop window, with the disk's own fdatasync stalls during it. */
type RateWindow = Measured<OpenLoopResult> & { disk: DiskStalls };

/** Window hooks that meter CPU over exactly the measured window. */
function cpuWindow(pids: readonly number[]): { window: { onStart(): void; onEnd(): void }; use(): CpuUse | undefined } {
  let meter: CpuMeter | undefined;
  let use: CpuUse | undefined;
  return {
    window: {
      onStart: () => (meter = startCpuMeter(pids)),
      onEnd: () => (use = meter?.stop()),
    },
    use: () => use,
  };
}

function rowOf(run: number, peer: string, result: Measured<LoadResult>): Row {
  return {
    run,
    peer,
    opsPerSec: Math.round(result.opsPerSec),
    p50Ms: round(result.latency.p50Ms, 2),
    p99Ms: round(result.latency.p99Ms, 2),
    maxMs: round(result.latency.maxMs, 1),
    errors: result.errors,
    clientCores: result.cpu ? round(result.cpu.clientCores, 2) : null,
    serverCores: result.cpu?.peerCores === undefined ? null : round(result.cpu.peerCores, 2),
    clientCpuUsPerOp: result.cpu && result.opsPerSec ? Math.round((result.cpu.clientCores / result.opsPerSec) * 1e6) : null,
    serverCpuUsPerOp: result.cpu?.peerCores !== undefined && result.opsPerSec ? Math.round((result.cpu.peerCores / result.opsPerSec) * 1e6) : null,
    ...(result.server ? { server: result.server } : {}),
  };
}

function describeServer(server: Record<string, number> | undefined): string {
  return server ? `; server says: ${Object.entries(server).map(([name, value]) => `${name} ${value}`).join(", ")}` : "";
}

async function measureThroughput(peer: Peer, tag: string): Promise<Measured<LoadResult>> {
  return withPeer(peer, async (started) => {
    await started.check(`${tag}-check`);
    const cpu = cpuWindow(started.pids);
    const before = await started.diagnostics?.read();
    const result = await closedLoop({ op: started.operation(tag), concurrency: connections, warmupMs, durationMs, window: cpu.window });
    const after = await started.diagnostics?.read();
    return { ...result, cpu: cpu.use(), server: started.diagnostics?.diagnose(before, after) };
  });
}

async function measureAtRate(peer: Peer, tag: string): Promise<RateWindow> {
  return withPeer(peer, async (started) => {
    await started.check(`${tag}-check`);
    const cpu = cpuWindow(started.pids);
    const before = await started.diagnostics?.read();
    // The probe watches the measured window only (not the warm-up).
    let probe: Promise<DiskStallProbe> | undefined;
    const window = {
      onStart: () => {
        cpu.window.onStart();
        probe = startDiskStallProbe();
      },
      onEnd: () => cpu.window.onEnd(),
    };
    let result: OpenLoopResult;
    let disk: DiskStalls | undefined;
    try {
      result = await openLoop({ op: started.operation(tag), ratePerSec, warmupMs: rateWarmupMs, durationMs: rateDurationMs, window });
    } finally {
      disk = await (await probe)?.stop();
    }
    const after = await started.diagnostics?.read();
    return { ...result, cpu: cpu.use(), server: started.diagnostics?.diagnose(before, after), disk: disk ?? { syncs: 0, stalls: 0, stallMs: 0, maxMs: 0 } };
  });
}

/** The window whose p99 is the median of the peer's windows (the lower middle one of an even count). */
function medianWindow(windows: readonly RateWindow[]): RateWindow {
  const sorted = [...windows].sort((a, b) => a.latency.p99Ms - b.latency.p99Ms);
  return sorted[Math.floor((sorted.length - 1) / 2)] as RateWindow;
}

/** `numerator`'s rate over `denominator`'s in each run both were measured in, in run order. */
function perRunRatios(rows: readonly Row[], numerator: string, denominator: string): number[] {
  const ratios: number[] = [];
  for (const row of rows) {
    if (row.peer !== numerator) continue;
    const other = rows.find((candidate) => candidate.run === row.run && candidate.peer === denominator);
    const value = ratio(row.opsPerSec, other?.opsPerSec);
    if (value !== null) ratios.push(value);
  }
  return ratios;
}

function ratio(numerator: number | undefined, denominator: number | undefined): number | null {
  return numerator && denominator ? round(numerator / denominator, 3) : null;
}

const times = (value: number | null): string => (value === null ? "n/a" : `${value}×`);
const perSec = (value: number | undefined): string => (value === undefined || Number.isNaN(value) ? "n/a" : `${value}/s`);

function verdict(value: number | null, target: number, atLeast: boolean): string {
  if (value === null) return "not measured";
  return (atLeast ? value >= target : value <= target) ? "meets target" : "BELOW TARGET";
}

async function main(): Promise<void> {
  if (flags["quiet-below"] !== undefined) {
    const calm = await waitForQuiet(Number(flags["quiet-below"]), Number(flags["quiet-wait-seconds"]) * 1000);
    console.log(
      `${calm.quiet ? "machine quiet" : "machine still busy; measuring anyway"}: load average ${round(calm.loadAverage1m, 2)} after waiting ${Math.round(calm.waitedMs / 1000)} s`,
    );
  }
  const machineBefore = machineState();
  const diskBefore = await probeFdatasync();
  const peers: Peer[] = [];
  const skipped: Record<string, string> = {};
  if (wanted.has("swoosh")) {
    if (swooshServerAvailable()) {
      peers.push(
        swooshPeer({
          connections,
          ...(flags["profile-dir"] ? { cpuProfileDir: path.resolve(flags["profile-dir"]) } : {}),
          ...(flags["snapshot-every"] === undefined ? {} : { snapshotEvery: Number(flags["snapshot-every"]) }),
        }),
      );
    }
    else skipped.swoosh = `${path.relative(process.cwd(), SWOOSH_SERVER_MODULE)} does not exist yet`;
  }
  if (wanted.has("etcd") || wanted.has("etcd-gateway")) {
    const etcd = await findEtcd();
    for (const name of ["etcd", "etcd-gateway"].filter((n) => wanted.has(n))) {
      if (!etcd) skipped[name] = `etcd is not installed: ${ETCD_INSTALL_HINT}`;
      else peers.push(name === "etcd" ? etcdPeer(etcd) : etcdGatewayPeer(etcd, { connections }));
    }
  }
  if (wanted.has("do-nothing")) peers.push(doNothingPeer({ connections }));
  if (wanted.has("durable-nothing")) peers.push(durableNothingPeer({ connections }));
  for (const [name, why] of Object.entries(skipped)) console.log(`skipping ${name}: ${why}`);
  if (flags["profile-dir"]) await mkdir(flags["profile-dir"], { recursive: true });
  const boundMs = watchdogMs(peers.length);
  const watchdog = setTimeout(() => {
    console.error(`bench:http exceeded its ${boundMs} ms bound; stopping`);
    process.exit(2);
  }, boundMs);
  watchdog.unref();

  console.log(
    `closed loop: ${connections} in flight, ${warmupMs / 1000} s warm-up + ${durationMs / 1000} s measured, ${runs} runs; ` +
      `open loop: ${ratePerSec}/s, ${rateWarmupMs / 1000} s warm-up + ${rateDurationMs / 1000} s measured; load average ${machineBefore.loadAverage1m} on ${machineBefore.cpus} cpus`,
  );
  // The latency figure first: it is the one a busy machine spoils most, and the start is when the machine was checked.
  // The durable do-nothing server at the same rate is the floor under Swoosh's figure: one LMDB commit per answer and nothing else.
  // Windows interleaved between peers (rotated like the runs below): a spell of disk stalls falls on several peers, not on all of one's windows.
  const ratePeers = peers.filter((p) => p.name === "swoosh" || p.name === "do-nothing" || p.name === "durable-nothing");
  const rateWindowsOf: Record<string, RateWindow[]> = {};
  for (let w = 0; w < rateWindows; w++) {
    for (const peer of ratePeers.map((_, i) => ratePeers[(i + w) % ratePeers.length] as Peer)) {
      const result = await measureAtRate(peer, `rate${w}-${peer.name}`);
      (rateWindowsOf[peer.name] ??= []).push(result);
      console.log(
        `  window ${w + 1} ${peer.name} at ${ratePerSec}/s offered: achieved ${Math.round(result.opsPerSec)}/s, p50 ${round(result.latency.p50Ms, 2)} ms, ` +
          `send lag p99 ${round(result.sendLag.p99Ms, 2)} ms, ` +
          `p99 ${round(result.latency.p99Ms, 2)} ms, max ${round(result.latency.maxMs, 1)} ms, skipped ${result.skipped}, unfinished ${result.unfinished}, errors ${result.errors}, ` +
          `server cores ${result.cpu?.peerCores === undefined ? "?" : round(result.cpu.peerCores, 2)}; ` +
          `disk: ${result.disk.stalls} of ${result.disk.syncs} probe fdatasyncs over ${result.disk.stallMs} ms, slowest ${round(result.disk.maxMs, 1)} ms${describeServer(result.server)}`,
      );
    }
  }
  const atRate = Object.fromEntries(Object.entries(rateWindowsOf).map(([name, windows]) => [name, medianWindow(windows)]));

  const rows: Row[] = [];
  for (let run = 0; run < runs; run++) {
    const order = peers.map((_, i) => peers[(i + run) % peers.length] as Peer);
    for (const peer of order) {
      const result = await measureThroughput(peer, `r${run}-${peer.name}`);
      const row = rowOf(run + 1, peer.name, result);
      rows.push(row);
      console.log(
        `  run ${row.run} ${peer.name}: ${row.opsPerSec}/s, p50 ${row.p50Ms} ms, p99 ${row.p99Ms} ms, errors ${row.errors}, ` +
          `cores busy: client ${row.clientCores ?? "?"}, server ${row.serverCores ?? "?"} (${row.serverCpuUsPerOp ?? "?"} µs/op)${describeServer(row.server)}`,
      );
    }
  }
  const machineAfter = machineState();
  const diskAfter = await probeFdatasync();
  clearTimeout(watchdog);

  console.table(rows.map(({ server: _server, ...row }) => row));
  const medians = Object.fromEntries(
    peers.map(({ name }) => {
      const mine = rows.filter((row) => row.peer === name);
      const of = (pick: (row: Row) => number | null): number => median(mine.map(pick).filter((value): value is number => value !== null));
      return [
        name,
        {
          opsPerSec: Math.round(of((row) => row.opsPerSec)),
          p50Ms: round(of((row) => row.p50Ms), 2),
          p99Ms: round(of((row) => row.p99Ms), 2),
          serverCpuUsPerOp: Math.round(of((row) => row.serverCpuUsPerOp)),
          clientCpuUsPerOp: Math.round(of((row) => row.clientCpuUsPerOp)),
        },
      ];
    }),
  );
  const swooshRate = medians.swoosh?.opsPerSec;
  const ratios = {
    swooshOverEtcd: ratio(swooshRate, medians.etcd?.opsPerSec),
    swooshOverDoNothing: ratio(swooshRate, medians["do-nothing"]?.opsPerSec),
    swooshOverDurableNothing: ratio(swooshRate, medians["durable-nothing"]?.opsPerSec),
    /** How much of the do-nothing server's rate survives making each command durable at all: the ceiling of swooshOverDoNothing. */
    durableNothingOverDoNothing: ratio(medians["durable-nothing"]?.opsPerSec, medians["do-nothing"]?.opsPerSec),
  };
  // Within each run the two were measured minutes apart at most: shown beside the ratio of medians (which the target is held to), they show the spread.
  const swooshOverEtcdPerRun = perRunRatios(rows, "swoosh", "etcd");
  const swooshP99AtRateMs = atRate.swoosh ? round(atRate.swoosh.latency.p99Ms, 2) : null;
  const p99AtRateOf = (name: string): string => (atRate[name] ? String(round(atRate[name].latency.p99Ms, 2)) : "n/a");
  /** Every window's p99, and the disk stalls in it: `12.3 (0 stalls), 48.1 (2 stalls, slowest 180 ms)`. */
  const windowsOf = (name: string): string =>
    (rateWindowsOf[name] ?? [])
      .map((w) => `${round(w.latency.p99Ms, 2)} (${w.disk.stalls} disk stall${w.disk.stalls === 1 ? "" : "s"}${w.disk.stalls > 0 ? `, slowest ${Math.round(w.disk.maxMs)} ms` : ""})`)
      .join(", ");
  const summary = {
    config: {
      connections,
      warmupMs,
      durationMs,
      runs,
      ratePerSec,
      rateWarmupMs,
      rateDurationMs,
      rateWindows,
      swooshSnapshotEvery: flags["snapshot-every"] === undefined ? "server default" : Number(flags["snapshot-every"]),
      peerOrder: "rotated each run; each peer fresh per run",
    },
    peers: Object.fromEntries(peers.map((peer) => [peer.name, peer.description])),
    skipped,
    machineBefore,
    machineAfter,
    fdatasync4KiBMs: {
      before: { p50: round(diskBefore.p50Ms, 3), p99: round(diskBefore.p99Ms, 3), max: round(diskBefore.maxMs, 3) },
      after: { p50: round(diskAfter.p50Ms, 3), p99: round(diskAfter.p99Ms, 3), max: round(diskAfter.maxMs, 3) },
    },
    runs: rows,
    medians,
    ratios,
    swooshOverEtcdPerRun,
    atRate: Object.fromEntries(
      Object.entries(atRate).map(([name, result]) => [
        name,
        {
          targetPerSec: result.targetPerSec,
          achievedPerSec: Math.round(result.opsPerSec),
          p50Ms: round(result.latency.p50Ms, 2),
          p90Ms: round(result.latency.p90Ms, 2),
          p99Ms: round(result.latency.p99Ms, 2),
          p999Ms: round(result.latency.p999Ms, 2),
          maxMs: round(result.latency.maxMs, 2),
          skipped: result.skipped,
          unfinished: result.unfinished,
          errors: result.errors,
          maxInFlightSeen: result.maxInFlightSeen,
          sendLagP99Ms: round(result.sendLag.p99Ms, 2),
          ...(result.server ? { server: result.server } : {}),
          clientCores: result.cpu ? round(result.cpu.clientCores, 2) : null,
          serverCores: result.cpu?.peerCores === undefined ? null : round(result.cpu.peerCores, 2),
          /** The figures above are this peer's median window (by p99); every window's p99 and the disk's stalls during it. */
          windows: (rateWindowsOf[name] ?? []).map((w) => ({
            p50Ms: round(w.latency.p50Ms, 2),
            p99Ms: round(w.latency.p99Ms, 2),
            maxMs: round(w.latency.maxMs, 2),
            diskSyncs: w.disk.syncs,
            diskStallsOver10Ms: w.disk.stalls,
            diskSlowestMs: round(w.disk.maxMs, 1),
          })),
        },
      ]),
    ),
    targets: TARGETS,
    verdicts: {
      swooshOverEtcd: verdict(ratios.swooshOverEtcd, TARGETS.swooshOverEtcd, true),
      swooshOverDoNothing: verdict(ratios.swooshOverDoNothing, TARGETS.swooshOverDoNothing, true),
      p99AtRate: verdict(swooshP99AtRateMs, TARGETS.p99AtRateMs, false),
    },
  };
  console.log(JSON.stringify({ medians, ratios, atRate: summary.atRate }, null, 2));
  console.log(
    [
      `Swoosh/etcd: ${times(ratios.swooshOverEtcd)} (${perSec(swooshRate)} vs ${perSec(medians.etcd?.opsPerSec)}; per run ${swooshOverEtcdPerRun.map(times).join(", ") || "n/a"}); target ≥ ${TARGETS.swooshOverEtcd}× — ${summary.verdicts.swooshOverEtcd}`,
      `Swoosh/do-nothing: ${times(ratios.swooshOverDoNothing)} (vs ${perSec(medians["do-nothing"]?.opsPerSec)}); target ≥ ${TARGETS.swooshOverDoNothing}× — ${summary.verdicts.swooshOverDoNothing}`,
      `  durable do-nothing/do-nothing: ${times(ratios.durableNothingOverDoNothing)} (${perSec(medians["durable-nothing"]?.opsPerSec)}): the ceiling of the line above for any server that answers after an LMDB commit; Swoosh/durable do-nothing: ${times(ratios.swooshOverDurableNothing)}`,
      `Swoosh p99 at ${ratePerSec}/s offered, median of ${rateWindows} windows: ${swooshP99AtRateMs ?? "n/a"} ms (do-nothing ${p99AtRateOf("do-nothing")} ms, durable do-nothing ${p99AtRateOf("durable-nothing")} ms); target ≤ ${TARGETS.p99AtRateMs} ms — ${summary.verdicts.p99AtRate}`,
      ...Object.keys(rateWindowsOf).map((name) => `  ${name} p99 by window, ms: ${windowsOf(name)}`),
      ...Object.entries(skipped).map(([name, why]) => `skipped ${name}: ${why}`),
      `load average ${machineBefore.loadAverage1m} before, ${machineAfter.loadAverage1m} after (${machineAfter.cpus} cpus); ` +
        `4 KiB write+fdatasync p50/p99 ${round(diskBefore.p50Ms, 2)}/${round(diskBefore.p99Ms, 2)} ms before, ${round(diskAfter.p50Ms, 2)}/${round(diskAfter.p99Ms, 2)} ms after`,
    ].join("\n"),
  );
  if (jsonPath === undefined) {
    console.log(`not written to ${COMMITTED_RESULTS} (a partial or diagnostic run); --json FILE keeps the summary`);
    return;
  }
  await mkdir(path.dirname(jsonPath), { recursive: true });
  await writeFile(jsonPath, JSON.stringify(summary, null, 2) + "\n");
  console.log(`wrote ${jsonPath}`);
}

await main();
