/**
 * The etcd peer: a one-member etcd (etcd.ts) on a fresh temporary data
 * directory with default durability, driven through the etcd3 npm client with
 * puts whose key is the task id and whose value is the very `POST /command`
 * body Swoosh receives, so both make the same bytes durable. `check` puts one
 * value and reads it back.
 */
import { createEtcdClient } from "./etcd-client.ts";
import { startEtcd } from "./etcd.ts";
import type { EtcdBinary } from "./etcd.ts";
import type { Peer } from "./peer.ts";
import { inTempDir } from "./temp-dir.ts";
import { taskSubmitBody } from "./workload.ts";

export function etcdPeer(binary: EtcdBinary): Peer {
  return {
    name: "etcd",
    description: `etcd ${binary.version}, one member on 127.0.0.1, temp data dir, default fsync; etcd3 npm client (one gRPC channel)`,
    async start() {
      return inTempDir("etcd-bench", async (dataDirPath) => {
        const etcd = await startEtcd(binary, dataDirPath);
        const client = createEtcdClient(etcd.endpoint);
        return {
          pids: [etcd.process.pid],
          async check(tag) {
            const { key, json } = taskSubmitBody(tag, 0);
            await client.put(key, json);
            const read = await client.get(key);
            if (read !== json) throw new Error(`etcd read back ${JSON.stringify(read)}`);
          },
          operation: (tag) => (seq) => {
            const { key, json } = taskSubmitBody(tag, seq);
            return client.put(key, json);
          },
          async stop() {
            client.close();
            await etcd.stop();
          },
        };
      });
    },
  };
}
