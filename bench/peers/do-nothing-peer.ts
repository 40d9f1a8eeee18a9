/**
 * The HTTP ceilings as peers: the do-nothing server (do-nothing-server.ts) and
 * the durable do-nothing server (durable-nothing-server.ts, on a fresh temp
 * dir), each in a child process, driven with the same `POST /command` bodies
 * as Swoosh through the same pooled client. The first is the ceiling of "HTTP
 * + JSON on this machine with this client"; the second adds making each body
 * durable on Swoosh's storage settings before answering.
 */
import { startHttpPeer } from "./http-peer.ts";
import { createHttpClient } from "./http-client.ts";
import type { Peer, StartedPeer } from "./peer.ts";
import { inTempDir } from "./temp-dir.ts";
import { taskSubmitBody } from "./workload.ts";

export function doNothingPeer(options: { connections: number }): Peer {
  return {
    name: "do-nothing",
    description: "node:http in a child process: parses the JSON body, answers small JSON, stores nothing",
    start: () => startEchoPeer("do-nothing server", "bench/peers/do-nothing-server.ts", [], options.connections),
  };
}

export function durableNothingPeer(options: { connections: number }): Peer {
  return {
    name: "durable-nothing",
    description: "the do-nothing server plus an LMDB put of the body (Swoosh's WAL settings), answered after the commit: no state machine",
    start: () =>
      inTempDir<StartedPeer>("durable-nothing", (dir) =>
        startEchoPeer("durable do-nothing server", "bench/peers/durable-nothing-server.ts", ["--data-dir", dir], options.connections),
      ),
  };
}

async function startEchoPeer(name: string, entry: string, args: string[], connections: number): Promise<StartedPeer> {
  const server = await startHttpPeer({ name, entry, args });
  const client = createHttpClient(server.url, { connections });
  return {
    pids: [server.process.pid],
    async check(tag) {
      const reply = JSON.parse(await client.postJson("/command", taskSubmitBody(tag, 0).json)) as { result?: { taskId?: unknown } };
      if (reply.result?.taskId !== `${tag}-t0`) throw new Error(`${name} answered ${JSON.stringify(reply)}`);
    },
    operation: (tag) => (seq) => client.postJson("/command", taskSubmitBody(tag, seq).json),
    async stop() {
      await client.close().catch(() => undefined);
      await server.stop();
    },
  };
}
