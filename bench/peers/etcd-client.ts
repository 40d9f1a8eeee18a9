/**
 * Driving etcd from Node: the `etcd3` npm client (gRPC over one HTTP/2
 * connection per client, requests multiplexed on it) with a bounded deadline
 * per call. The client's default fault handling (retry recoverable errors,
 * per-host circuit breaker) is kept: against a healthy local member it never
 * fires, and it is what an etcd3 user gets.
 */
import { Etcd3 } from "etcd3";

export interface EtcdKvClient {
  put(key: string, value: string | Buffer): Promise<void>;
  get(key: string): Promise<string | null>;
  close(): void;
}

export function createEtcdClient(endpoint: string, options: { timeoutMs?: number } = {}): EtcdKvClient {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const client = new Etcd3({
    hosts: endpoint,
    dialTimeout: timeoutMs,
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + timeoutMs }),
  });
  return {
    async put(key, value) {
      await client.put(key).value(value).exec();
    },
    get: (key) => client.get(key).string(),
    close: () => client.close(),
  };
}
