/**
 * Free TCP ports on 127.0.0.1, for servers that cannot be told "port 0" and
 * report back (etcd needs its client and peer URLs up front). The port is
 * found by listening on port 0 and closing; the tiny window before the peer
 * binds it is acceptable on a benchmark machine.
 */
import net from "node:net";

export const LOOPBACK_HOST = "127.0.0.1";

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once("error", reject);
    server.listen(0, LOOPBACK_HOST, () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => (port ? resolve(port) : reject(new Error("no port assigned"))));
    });
  });
}

/** `count` distinct free ports. */
export async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  for (let tries = 0; ports.size < count && tries < count * 10; tries++) ports.add(await freePort());
  if (ports.size < count) throw new Error(`could not find ${count} free ports`);
  return [...ports];
}
