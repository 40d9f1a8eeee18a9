/**
 * Small statistics for benchmarks: medians of repeated runs, and a latency
 * recorder with bounded memory.
 *
 * `LatencyRecorder` keeps every sample up to `capacity` and beyond that a
 * uniform random sample of all of them (reservoir sampling, Vitter's
 * algorithm R), so percentiles stay unbiased however long a run goes while
 * memory stays at `capacity` doubles. Samples are milliseconds.
 */

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Rounds to `digits` decimals, as a number (for JSON and tables). */
export function round(value: number, digits = 0): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

export interface LatencySummaryMs {
  readonly count: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly maxMs: number;
  readonly meanMs: number;
}

export class LatencyRecorder {
  private readonly samplesMs: Float64Array;
  private stored = 0;
  private seen = 0;
  private sumMs = 0;
  private maxMs = 0;

  constructor(private readonly capacity = 1_000_000) {
    this.samplesMs = new Float64Array(capacity);
  }

  record(latencyMs: number): void {
    this.seen += 1;
    this.sumMs += latencyMs;
    if (latencyMs > this.maxMs) this.maxMs = latencyMs;
    if (this.stored < this.capacity) {
      this.samplesMs[this.stored++] = latencyMs;
      return;
    }
    const slot = Math.floor(Math.random() * this.seen);
    if (slot < this.capacity) this.samplesMs[slot] = latencyMs;
  }

  get count(): number {
    return this.seen;
  }

  /** Nearest-rank percentiles over the kept samples; `max` and `mean` over all samples. */
  summary(): LatencySummaryMs {
    const sorted = this.samplesMs.slice(0, this.stored).sort();
    const at = (q: number): number => (sorted.length ? (sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] as number) : Number.NaN);
    return {
      count: this.seen,
      p50Ms: at(0.5),
      p90Ms: at(0.9),
      p99Ms: at(0.99),
      p999Ms: at(0.999),
      maxMs: this.seen ? this.maxMs : Number.NaN,
      meanMs: this.seen ? this.sumMs / this.seen : Number.NaN,
    };
  }
}
