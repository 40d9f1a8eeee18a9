/**
 * Starting an HTTP peer whose server is one of our child entries
 * (do-nothing-server.ts, swoosh-server.ts) in its own Node process, so it never
 * shares the load generator's event loop. Every such server runs with the
 * Node flags `npm start` gives Swoosh's server (src/server/node-flags.ts), so
 * the Node peers share one runtime setup. With `cpuProfileDir` the child runs
 * under `--cpu-prof` and writes a .cpuprofile there when stopped.
 */
import { fileURLToPath } from "node:url";
import { spawnPeer } from "./child-process.ts";
import { SERVER_NODE_FLAGS } from "../../src/server/node-flags.ts";
import type { PeerProcess } from "./child-process.ts";

const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));

export interface RunningHttpPeer {
  /** Origin, e.g. http://127.0.0.1:40123. */
  readonly url: string;
  readonly process: PeerProcess;
  stop(): Promise<void>;
}

export interface StartHttpPeerOptions {
  readonly name: string;
  /** Path of the child entry, relative to the repository root. */
  readonly entry: string;
  readonly args?: readonly string[];
  readonly cpuProfileDir?: string;
  readonly readyTimeoutMs?: number;
}

export async function startHttpPeer(options: StartHttpPeerOptions): Promise<RunningHttpPeer> {
  const profiling = options.cpuProfileDir ? ["--cpu-prof", `--cpu-prof-dir=${options.cpuProfileDir}`] : [];
  const child = await spawnPeer({
    name: options.name,
    command: process.execPath,
    args: [...SERVER_NODE_FLAGS, ...profiling, "--import", "tsx", options.entry, ...(options.args ?? [])],
    cwd: REPO_ROOT,
    readyTimeoutMs: options.readyTimeoutMs ?? 30_000,
  });
  const url = child.ready.url;
  if (typeof url !== "string") {
    await child.stop();
    throw new Error(`${options.name} announced no url`);
  }
  return {
    url,
    process: child,
    stop: async () => {
      const { code, signal } = await child.stop(5000);
      if (code !== 0) console.error(`${options.name} exited with code ${code} signal ${signal}; stderr tail:\n${child.stderr().slice(-2000)}`);
    },
  };
}
