/**
 * A reference peer, not in the default set: the same etcd, driven through its
 * HTTP/JSON gRPC gateway (`POST /v3/kv/put`, key and value base64) with the
 * same undici pool as the HTTP peers. The etcd3 npm client (grpc-js) costs the
 * Node client far more CPU per put than undici does, so this shows how much of
 * the etcd figure is etcd and how much its Node client.
 */
import { startEtcd } from "./etcd.ts";
import type { EtcdBinary } from "./etcd.ts";
import { createHttpClient } from "./http-client.ts";
import type { Peer } from "./peer.ts";
import { inTempDir } from "./temp-dir.ts";
import { taskSubmitBody } from "./workload.ts";

function putBody(key: string, value: string): string {
  return JSON.stringify({ key: Buffer.from(key).toString("base64"), value: Buffer.from(value).toString("base64") });
}

export function etcdGatewayPeer(binary: EtcdBinary, options: { connections: number }): Peer {
  return {
    name: "etcd-gateway",
    description: `etcd ${binary.version}, one member, default fsync; HTTP/JSON gateway /v3/kv/put through the undici pool`,
    async start() {
      return inTempDir("etcd-bench", async (dataDirPath) => {
        const etcd = await startEtcd(binary, dataDirPath);
        const client = createHttpClient(etcd.endpoint, { connections: options.connections });
        return {
          pids: [etcd.process.pid],
          async check(tag) {
            const { key, json } = taskSubmitBody(tag, 0);
            await client.postJson("/v3/kv/put", putBody(key, json));
            const reply = JSON.parse(await client.postJson("/v3/kv/range", JSON.stringify({ key: Buffer.from(key).toString("base64") }))) as {
              kvs?: Array<{ value?: string }>;
            };
            const read = reply.kvs?.[0]?.value;
            if (read === undefined || Buffer.from(read, "base64").toString() !== json) throw new Error(`etcd gateway read back ${JSON.stringify(reply)}`);
          },
          operation: (tag) => (seq) => {
            const { key, json } = taskSubmitBody(tag, seq);
            return client.postJson("/v3/kv/put", putBody(key, json));
          },
          async stop() {
            await client.close().catch(() => undefined);
            await etcd.stop();
          },
        };
      });
    },
  };
}
