/**
 * A one-member etcd cluster for benchmarks: Debian's `etcd-server` on
 * 127.0.0.1 with free client and peer ports and its own data directory, with
 * etcd's default durability (WAL fsync before a put is acknowledged; no
 * `--unsafe-no-fsync`). Started and stopped by the benchmark itself.
 *
 * `findEtcd()` says whether the binary is installed (`apt-get install
 * etcd-server` otherwise); `startEtcd(dataDir)` waits until `/health` answers
 * and returns the client endpoint and a `stop()`.
 */
import { execFile } from "node:child_process";
import { access, constants } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { spawnPeer } from "./child-process.ts";
import type { PeerProcess } from "./child-process.ts";
import { LOOPBACK_HOST, freePorts } from "./ports.ts";

export const ETCD_INSTALL_HINT = "apt-get install etcd-server";

export interface EtcdBinary {
  readonly path: string;
  readonly version: string;
}

export interface RunningEtcd {
  /** Client URL, e.g. http://127.0.0.1:41234. */
  readonly endpoint: string;
  readonly process: PeerProcess;
  stop(): Promise<void>;
}

/** The etcd binary on PATH (or $ETCD_BIN), with its version, or undefined when not installed. */
export async function findEtcd(): Promise<EtcdBinary | undefined> {
  const candidates = [process.env.ETCD_BIN, ...(process.env.PATH ?? "").split(path.delimiter).map((dir) => path.join(dir, "etcd"))];
  for (const candidate of candidates) {
    if (!candidate) continue;
    try {
      await access(candidate, constants.X_OK);
    } catch {
      continue;
    }
    const { stdout } = await promisify(execFile)(candidate, ["--version"], { timeout: 5000 });
    const version = /etcd Version:\s*(\S+)/.exec(stdout)?.[1] ?? "unknown";
    return { path: candidate, version };
  }
  return undefined;
}

async function healthy(endpoint: string): Promise<boolean> {
  const response = await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(1000) });
  if (!response.ok) return false;
  const body = (await response.json()) as { health?: unknown };
  return body.health === "true" || body.health === true;
}

export async function startEtcd(binary: EtcdBinary, dataDir: string): Promise<RunningEtcd> {
  const [clientPort, peerPort] = (await freePorts(2)) as [number, number];
  const endpoint = `http://${LOOPBACK_HOST}:${clientPort}`;
  const peerUrl = `http://${LOOPBACK_HOST}:${peerPort}`;
  const child = await spawnPeer({
    name: "etcd",
    command: binary.path,
    args: [
      "--name=bench",
      `--data-dir=${dataDir}`,
      `--listen-client-urls=${endpoint}`,
      `--advertise-client-urls=${endpoint}`,
      `--listen-peer-urls=${peerUrl}`,
      `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=bench=${peerUrl}`,
      "--initial-cluster-state=new",
      "--logger=zap",
      "--log-level=warn",
    ],
    // Keep the proxy-less, default environment; ETCD_* variables would override flags.
    env: Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("ETCD_"))),
    probe: () => healthy(endpoint),
    readyTimeoutMs: 20_000,
  });
  return {
    endpoint,
    process: child,
    stop: async () => {
      await child.stop(5000);
    },
  };
}
