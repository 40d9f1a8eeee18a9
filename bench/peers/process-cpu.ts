/**
 * CPU time used by processes during a measured window, to say what bounds a
 * figure: the load generator (this process, `process.cpuUsage`) or a peer
 * (its pid, from /proc/PID/stat on Linux). Reported as cores busy on average
 * (1.0 = one core fully used for the whole window).
 */
import { readFileSync } from "node:fs";

/** Clock ticks per second for /proc/PID/stat (USER_HZ, 100 on Linux). */
const USER_HZ = 100;

/** User + system CPU seconds of `pid` so far, or undefined where /proc is not available. */
export function processCpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / USER_HZ;
  } catch {
    return undefined;
  }
}

export interface CpuMeter {
  /** Cores busy on average since the meter started, for this process and each pid. */
  stop(): { clientCores: number; peerCores: number | undefined };
}

export function startCpuMeter(peerPids: readonly number[]): CpuMeter {
  const startedAt = performance.now();
  const client = process.cpuUsage();
  const peerStart = peerPids.map(processCpuSeconds);
  return {
    stop() {
      const elapsedSec = (performance.now() - startedAt) / 1000;
      const used = process.cpuUsage(client);
      const peerEnd = peerPids.map(processCpuSeconds);
      let peerSeconds: number | undefined = 0;
      peerPids.forEach((_, i) => {
        const before = peerStart[i];
        const after = peerEnd[i];
        peerSeconds = before === undefined || after === undefined || peerSeconds === undefined ? undefined : peerSeconds + (after - before);
      });
      return {
        clientCores: (used.user + used.system) / 1e6 / elapsedSec,
        peerCores: peerPids.length && peerSeconds !== undefined ? peerSeconds / elapsedSec : undefined,
      };
    },
  };
}
