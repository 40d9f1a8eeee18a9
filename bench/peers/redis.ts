/**
 * A private redis-server (Debian `redis-server`) for the BullMQ peer: its own
 * temp dir, a free port on 127.0.0.1, AOF on with the given appendfsync
 * policy (`always`: every write fsynced before the reply; `everysec`: up to a
 * second of acknowledged writes can be lost), RDB snapshots off.
 */
import { execFile } from "node:child_process";
import net from "node:net";
import { promisify } from "node:util";
import { spawnPeer } from "./child-process.ts";
import type { PeerProcess } from "./child-process.ts";
import { LOOPBACK_HOST, freePort } from "./ports.ts";
import { createTempDir } from "./temp-dir.ts";

export const REDIS_INSTALL_HINT = "apt-get install -y redis-server (or put redis-server on PATH / set $REDIS_SERVER_BIN)";

export interface RunningRedis {
  readonly host: string;
  readonly port: number;
  readonly process: PeerProcess;
  stop(): Promise<void>;
}

/** The redis-server binary and its version, or undefined when it is not installed. */
export async function findRedis(): Promise<{ path: string; version: string } | undefined> {
  const bin = process.env.REDIS_SERVER_BIN ?? "redis-server";
  try {
    const { stdout } = await promisify(execFile)(bin, ["--version"], { timeout: 5000 });
    return { path: bin, version: /v=(\S+)/.exec(stdout)?.[1] ?? stdout.trim() };
  } catch {
    return undefined;
  }
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, LOOPBACK_HOST);
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once("error", () => done(false));
    socket.once("connect", () => socket.write("PING\r\n"));
    socket.once("data", (data) => done(data.toString().startsWith("+PONG")));
  });
}

export async function startRedis(bin: string, appendfsync: "always" | "everysec"): Promise<RunningRedis> {
  const dir = await createTempDir(`redis-${appendfsync}`);
  try {
    const port = await freePort();
    const child = await spawnPeer({
      name: `redis-server (${appendfsync})`,
      command: bin,
      args: ["--port", String(port), "--bind", LOOPBACK_HOST, "--dir", dir.path, "--appendonly", "yes", "--appendfsync", appendfsync, "--save", "", "--daemonize", "no", "--protected-mode", "yes", "--logfile", ""],
      probe: () => ping(port),
      readyTimeoutMs: 15_000,
    });
    return {
      host: LOOPBACK_HOST,
      port,
      process: child,
      stop: async () => {
        try {
          await child.stop(5000);
        } finally {
          await dir.remove();
        }
      },
    };
  } catch (error) {
    await dir.remove();
    throw error;
  }
}
