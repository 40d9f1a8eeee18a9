/**
 * Renders the suite's figures as a PNG (and the SVG beside it): a Vega-Lite
 * spec compiled by vega-lite, drawn to SVG by vega (headless, no browser),
 * rasterized by @resvg/resvg-js.
 *
 * Run directly to re-draw a saved run without measuring again:
 *   node --import tsx bench/chart.ts bench/results/suite.json [bench/results/suite.png]
 */
import { readFile, writeFile } from "node:fs/promises";
import { pathToFileURL } from "node:url";
import { Resvg } from "@resvg/resvg-js";
import * as vega from "vega";
import { compile } from "vega-lite";
import type { TopLevelSpec } from "vega-lite";

export interface ChartPoint {
  readonly panel: string;
  readonly x: string;
  readonly system: string;
  readonly value: number;
}

export async function renderChart(points: readonly ChartPoint[], title: string, pngPath: string): Promise<void> {
  const panels = [...new Set(points.map((p) => p.panel))];
  const spec: TopLevelSpec = {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: { text: title, fontSize: 14 },
    background: "white",
    padding: 12,
    config: { font: "DejaVu Sans", axis: { labelFontSize: 11, titleFontSize: 12 }, legend: { labelFontSize: 11, titleFontSize: 12 } },
    vconcat: panels.map((panel) => ({
      title: { text: panel, fontSize: 12, anchor: "start" },
      data: { values: points.filter((p) => p.panel === panel).map((p) => ({ ...p })) },
      width: 760,
      height: 220,
      mark: { type: "bar", tooltip: true },
      encoding: {
        x: { field: "x", type: "ordinal", title: null, sort: null, axis: { labelAngle: 0, labelLimit: 400 } },
        xOffset: { field: "system", sort: null },
        // Left to itself, a log axis can start just under the smallest bar (10,345/s on a 10,000 floor drew none at all).
        y: { field: "value", type: "quantitative", title: "per second (log scale)", scale: { type: "log", domain: logDomain(points, panel) }, stack: null },
        color: { field: "system", type: "nominal", sort: null, title: "system", scale: { scheme: "tableau10" } },
      },
    })),
    resolve: { scale: { color: "independent", xOffset: "independent" } },
  };
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: "none", logLevel: vega.Warn });
  const svg = await view.toSVG();
  view.finalize();
  const png = new Resvg(svg, { fitTo: { mode: "zoom", value: 1.5 }, font: { loadSystemFonts: true, defaultFontFamily: "DejaVu Sans" } }).render().asPng();
  await writeFile(pngPath, png);
  await writeFile(pngPath.replace(/\.png$/, ".svg"), svg);
}

/** A panel's log axis: from a power of ten at least twice below its smallest value to one above its largest with room to spare. */
function logDomain(points: readonly ChartPoint[], panel: string): [number, number] {
  const values = points.filter((p) => p.panel === panel).map((p) => p.value);
  return [10 ** Math.floor(Math.log10(Math.min(...values) / 2)), 10 ** Math.ceil(Math.log10(Math.max(...values) * 1.5))];
}

/** `rows` with those whose system name starts with "swoosh" first, each group in its own order. */
function swooshFirst<T>(rows: readonly T[], system: (row: T) => string): T[] {
  return [...rows.filter((row) => system(row).startsWith("swoosh")), ...rows.filter((row) => !system(row).startsWith("swoosh"))];
}

/** The parts of suite.json the chart draws. */
export interface SuiteFigures {
  readonly machineBefore: { at: string; cpus: number; loadAverage1m: number };
  readonly machineAfter: { loadAverage1m: number };
  readonly ceilings: { fdatasyncPerSec: number; rawBatchedLmdbPutsPerSec: number };
  readonly throughput: ReadonlyArray<{ peer: string; concurrency: number; opsPerSec: number }>;
  readonly jobs: ReadonlyArray<{ system: string; workers: number; jobsPerSec: number }>;
}

export async function renderSuiteChart(figures: SuiteFigures, pngPath: string): Promise<void> {
  const points: ChartPoint[] = [
    // Swoosh's own rows first, so that each panel gives them its first colours (blue, orange).
    ...swooshFirst(figures.throughput, (r) => r.peer).map((r) => ({ panel: "Durable command throughput (ops/s) by concurrency", x: `${r.concurrency} in flight`, system: r.peer, value: r.opsPerSec })),
    ...figures.jobs.map((r) => ({ panel: "End-to-end jobs/s (submit → claim → complete) by worker count", x: `${r.workers} worker${r.workers === 1 ? "" : "s"}`, system: r.system, value: r.jobsPerSec })),
    { panel: "Ceilings (per second)", x: "4 KiB write + fdatasync", system: "disk", value: figures.ceilings.fdatasyncPerSec },
    { panel: "Ceilings (per second)", x: "raw batched LMDB puts", system: "lmdb", value: figures.ceilings.rawBatchedLmdbPutsPerSec },
  ].filter((p) => p.value > 0);
  const { machineBefore: before, machineAfter: after } = figures;
  await renderChart(points, `npm run bench — ${before.at.slice(0, 16)}Z, one run, ${before.cpus} cpus, load average ${before.loadAverage1m} → ${after.loadAverage1m}`, pngPath);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const jsonPath = process.argv[2] ?? "bench/results/suite.json";
  const pngPath = process.argv[3] ?? jsonPath.replace(/\.json$/, ".png");
  await renderSuiteChart(JSON.parse(await readFile(jsonPath, "utf8")) as SuiteFigures, pngPath);
  console.log(`wrote ${pngPath}`);
}
