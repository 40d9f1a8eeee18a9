/**
 * Where a process spent its CPU: reads a V8 `.cpuprofile` (as written by
 * `node --cpu-prof`) and prints
 *   - self time by area (a package under node_modules, a src/ or bench/ folder,
 *     node internals, GC, idle),
 *   - the top functions by self time and by inclusive time (a function counted
 *     once per sample however often it recurs on the stack).
 *
 * `--skip-ms N` leaves out the first N ms of the profile (start-up: module
 * loading and compilation), so a server profile shows its steady state.
 *
 * Run: node --import tsx bench/peers/cpuprofile-summary.ts FILE.cpuprofile [--top 25] [--skip-ms 0]
 */
import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { pathToFileURL } from "node:url";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface CpuSummary {
  readonly totalMs: number;
  readonly byArea: Array<{ area: string; selfMs: number; share: number }>;
  readonly bySelf: Array<{ fn: string; selfMs: number; share: number }>;
  readonly byInclusive: Array<{ fn: string; totalMs: number; share: number }>;
}

/** The area a frame belongs to: the package, the repository folder, or what V8 calls it. */
function areaOf(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (!url) return functionName.startsWith("(") ? functionName : "(native)";
  if (url.startsWith("node:")) return "node:" + (url.slice(5).split("/")[0] ?? "");
  const modules = url.lastIndexOf("/node_modules/");
  if (modules >= 0) {
    const rest = url.slice(modules + "/node_modules/".length).split("/");
    return rest[0]?.startsWith("@") ? `${rest[0]}/${rest[1]}` : (rest[0] ?? url);
  }
  const repo = /\/(src|bench|test)\/([^/]+)/.exec(url);
  if (repo) return `${repo[1]}/${repo[2]}`;
  return url;
}

function nameOf(frame: CallFrame): string {
  const file = frame.url ? frame.url.replace(/^.*\/(node_modules|src|bench)\//, "$1/").replace(/^file:\/\//, "") : "";
  // tsx-compiled modules report line 0 for everything: print a line only when it means something.
  return `${frame.functionName || "(anonymous)"} ${file}${file && frame.lineNumber > 0 ? `:${frame.lineNumber + 1}` : ""}`.trim();
}

export function summarizeCpuProfile(profile: CpuProfile, top = 25, skipMs = 0): CpuSummary {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const areas = new Map<string, number>();
  let totalUs = 0;
  let elapsedUs = 0;
  profile.samples.forEach((id, i) => {
    const deltaUs = Math.max(0, profile.timeDeltas[i] ?? 0);
    elapsedUs += deltaUs;
    if (elapsedUs < skipMs * 1000) return;
    totalUs += deltaUs;
    const leaf = byId.get(id);
    if (!leaf) return;
    self.set(nameOf(leaf.callFrame), (self.get(nameOf(leaf.callFrame)) ?? 0) + deltaUs);
    areas.set(areaOf(leaf.callFrame), (areas.get(areaOf(leaf.callFrame)) ?? 0) + deltaUs);
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const node = byId.get(at);
      if (!node) break;
      const name = nameOf(node.callFrame);
      if (seen.has(name)) continue;
      seen.add(name);
      inclusive.set(name, (inclusive.get(name) ?? 0) + deltaUs);
    }
  });
  const share = (us: number): number => Math.round((us / (totalUs || 1)) * 1000) / 10;
  const ranked = (map: Map<string, number>): Array<[string, number]> => [...map].sort((a, b) => b[1] - a[1]).slice(0, top);
  return {
    totalMs: Math.round(totalUs / 1000),
    byArea: ranked(areas).map(([area, us]) => ({ area, selfMs: Math.round(us / 1000), share: share(us) })),
    bySelf: ranked(self).map(([fn, us]) => ({ fn, selfMs: Math.round(us / 1000), share: share(us) })),
    byInclusive: ranked(inclusive)
      .filter(([fn]) => !fn.startsWith("(root)"))
      .map(([fn, us]) => ({ fn, totalMs: Math.round(us / 1000), share: share(us) })),
  };
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: "string", default: "25" }, "skip-ms": { type: "string", default: "0" } } });
  const file = positionals[0];
  if (!file) throw new Error("usage: cpuprofile-summary.ts FILE.cpuprofile [--top N]");
  const summary = summarizeCpuProfile(JSON.parse(await readFile(file, "utf8")) as CpuProfile, Number(values.top), Number(values["skip-ms"]));
  console.log(`${file}: ${summary.totalMs} ms sampled${Number(values["skip-ms"]) ? ` after the first ${values["skip-ms"]} ms` : ""}`);
  console.log("self time by area (%):");
  console.table(summary.byArea);
  console.log("top functions by self time:");
  console.table(summary.bySelf);
  console.log("top functions by inclusive time:");
  console.table(summary.byInclusive);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) await main();
