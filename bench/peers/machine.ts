/**
 * What the machine was doing when a benchmark ran, saved beside its figures:
 * shared machines are noisy, so a result without its load average is hard to
 * judge later.
 */
import os from "node:os";

export interface MachineState {
  readonly at: string;
  readonly cpus: number;
  readonly cpuModel: string;
  readonly loadAverage1m: number;
  readonly loadAverage5m: number;
  readonly totalMemoryMiB: number;
  readonly freeMemoryMiB: number;
  readonly node: string;
  readonly platform: string;
}

export function machineState(): MachineState {
  const cpus = os.cpus();
  const [load1, load5] = os.loadavg() as [number, number, number];
  return {
    at: new Date().toISOString(),
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? "unknown",
    loadAverage1m: Math.round(load1 * 100) / 100,
    loadAverage5m: Math.round(load5 * 100) / 100,
    totalMemoryMiB: Math.round(os.totalmem() / 2 ** 20),
    freeMemoryMiB: Math.round(os.freemem() / 2 ** 20),
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
  };
}

/**
 * Waits (bounded by `maxWaitMs`) until the 1-minute load average is below
 * `maxLoad`, polling every 5 s; says whether it got there. For re-measuring
 * on a machine that other work shares: start when it has calmed down.
 */
export async function waitForQuiet(maxLoad: number, maxWaitMs: number): Promise<{ quiet: boolean; waitedMs: number; loadAverage1m: number }> {
  const startedAt = performance.now();
  for (;;) {
    const load = os.loadavg()[0] as number;
    const waitedMs = performance.now() - startedAt;
    if (load < maxLoad) return { quiet: true, waitedMs, loadAverage1m: load };
    if (waitedMs + 5000 > maxWaitMs) return { quiet: false, waitedMs, loadAverage1m: load };
    await new Promise((resolve) => setTimeout(resolve, 5000));
  }
}
