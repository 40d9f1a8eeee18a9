/**
 * Reading a Prometheus text exposition (GET /metrics) into numbers, so a
 * benchmark can report a server's own view of a run (flush time, batch size,
 * event-loop lag) beside its client-side figures. Sample lines only; a series
 * with labels is keyed by its full name including the `{...}` part.
 */

export type MetricSamples = ReadonlyMap<string, number>;

export function parsePrometheusText(text: string): MetricSamples {
  const samples = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    // "name{labels} value [timestamp]": the value is the first token after the series.
    const closing = line.indexOf("}");
    const seriesEnd = closing >= 0 ? closing + 1 : line.indexOf(" ");
    if (seriesEnd <= 0) continue;
    const value = Number(line.slice(seriesEnd).trim().split(/\s+/)[0]);
    if (!Number.isNaN(value)) samples.set(line.slice(0, seriesEnd), value);
  }
  return samples;
}

/** `after - before` for a counter or histogram sum/count (0 when absent). */
export function delta(before: MetricSamples, after: MetricSamples, series: string): number {
  return (after.get(series) ?? 0) - (before.get(series) ?? 0);
}

/**
 * Upper bound of the bucket holding quantile `q` of a histogram's
 * observations between two readings (Infinity when it lies past the last
 * finite bucket, NaN with no observations): coarse, but the server's own view.
 */
export function histogramQuantileBetween(before: MetricSamples, after: MetricSamples, name: string, q: number): number {
  const buckets: Array<{ le: number; count: number }> = [];
  for (const [series, value] of after) {
    const match = /^(.+)_bucket\{(?:.*,)?le="([^"]+)"(?:,.*)?\}$/.exec(series);
    if (!match || match[1] !== name) continue;
    const le = match[2] === "+Inf" ? Number.POSITIVE_INFINITY : Number(match[2]);
    buckets.push({ le, count: value - (before.get(series) ?? 0) });
  }
  buckets.sort((a, b) => a.le - b.le);
  const total = buckets.at(-1)?.count ?? 0;
  if (!total) return Number.NaN;
  return buckets.find((bucket) => bucket.count >= q * total)?.le ?? Number.POSITIVE_INFINITY;
}
