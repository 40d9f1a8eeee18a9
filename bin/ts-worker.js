// Entry of Swoosh's worker threads: loads the module named in workerData.entry.
// Run from the TypeScript sources, a worker does not inherit the tsx loader its
// parent registered, so it registers its own; the compiled dist needs none.
import { workerData } from "node:worker_threads";

if (workerData.entry.endsWith(".ts")) {
  const { register } = await import("tsx/esm/api");
  register();
}
await import(workerData.entry);
