// Entry of Swoosh's worker threads. A worker does not inherit the tsx loader
// its parent registered, so it registers its own, then loads the TypeScript
// module named in workerData.entry.
import { workerData } from "node:worker_threads";
import { register } from "tsx/esm/api";

register();
await import(workerData.entry);
