/**
 * The do-nothing HTTP peer: do-nothing-server.ts in a child process, driven
 * with the same `POST /command` bodies as Swoosh through the same pooled
 * client. It is the ceiling of "HTTP + JSON on this machine with this client".
 */
import { startHttpPeer } from "./http-peer.ts";
import { createHttpClient } from "./http-client.ts";
import type { Peer } from "./peer.ts";
import { taskSubmitBody } from "./workload.ts";

export function doNothingPeer(options: { connections: number }): Peer {
  return {
    name: "do-nothing",
    description: "node:http in a child process: parses the JSON body, answers small JSON, stores nothing",
    async start() {
      const server = await startHttpPeer({ name: "do-nothing server", entry: "bench/peers/do-nothing-server.ts" });
      const client = createHttpClient(server.url, { connections: options.connections });
      return {
        pids: [server.process.pid],
        async check(tag) {
          const reply = JSON.parse(await client.postJson("/command", taskSubmitBody(tag, 0).json)) as { result?: { taskId?: unknown } };
          if (reply.result?.taskId !== `${tag}-t0`) throw new Error(`do-nothing server answered ${JSON.stringify(reply)}`);
        },
        operation: (tag) => (seq) => client.postJson("/command", taskSubmitBody(tag, seq).json),
        async stop() {
          await client.close().catch(() => undefined);
          await server.stop();
        },
      };
    },
  };
}
