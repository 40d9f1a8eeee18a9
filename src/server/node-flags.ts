/**
 * The Node.js flags the server is started with (`npm start`, the benchmarks'
 * server processes). The installed `swoosh` command keeps a plain
 * `#!/usr/bin/env node` (an `env -S` shebang breaks on BusyBox systems); run it
 * as `NODE_OPTIONS=--v8-pool-size=1 swoosh serve` for the same effect.
 *
 * `--v8-pool-size=1`: V8 runs its garbage collector's helper work on a pool of
 * platform threads (4 by default). On a small machine they compete for the
 * cores with the WAL's write thread, and a commit then waits to be scheduled:
 * measured on 2 cores at 2,000 commands/s, LMDB commits spiked to 13–25 ms and
 * the p99 latency was 11–15 ms; with one helper thread the spikes stay under
 * 6 ms and the p99 at 7–10 ms. One helper still lets young-generation GCs run
 * in parallel with the main thread.
 *
 * Flags are read at process start, so they cannot be set from here; this list
 * is the one definition that package.json and the benchmarks are held to
 * (test/server/node-flags.test.ts).
 */
export const SERVER_NODE_FLAGS: readonly string[] = ["--v8-pool-size=1"];
