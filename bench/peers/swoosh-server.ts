/**
 * Child entry: Swoosh's HTTP server (`startServer` from src/server/index.ts)
 * on 127.0.0.1, a free port, and the given data directory, with the default
 * durable settings (every acknowledged command flushed first). Only the
 * request logger is off (`--logger` turns it on), as the do-nothing peer logs
 * nothing either.
 *
 * The server module is loaded at run time, so this harness type-checks and
 * its other peers run before src/server exists; `swooshServerAvailable()`
 * tells the parent whether it does.
 *
 * Run: node --import tsx bench/peers/swoosh-server.ts --data-dir DIR [--snapshot-every N] [--logger]
 */
import { existsSync } from "node:fs";
import { parseArgs } from "node:util";
import { fileURLToPath, pathToFileURL } from "node:url";
import { announceReady, exitWhenTold } from "./child-entry.ts";
import { LOOPBACK_HOST } from "./ports.ts";

/** The entry point's shape, as the server's author announced it. */
export interface StartServerOptions {
  dataDir: string;
  host?: string;
  port?: number;
  token?: string;
  snapshotEvery?: number;
  logger?: boolean | object;
  bodyLimitBytes?: number;
}
export type StartServer = (options: StartServerOptions) => Promise<{ url: string; port: number; close(): Promise<void> }>;

export const SWOOSH_SERVER_MODULE = fileURLToPath(new URL("../../src/server/index.ts", import.meta.url));

export function swooshServerAvailable(): boolean {
  return existsSync(SWOOSH_SERVER_MODULE);
}

async function main(): Promise<void> {
  const { values: flags } = parseArgs({
    options: {
      "data-dir": { type: "string" },
      "snapshot-every": { type: "string" },
      logger: { type: "boolean", default: false },
    },
  });
  if (!flags["data-dir"]) throw new Error("--data-dir is required");
  const serverModule = (await import(pathToFileURL(SWOOSH_SERVER_MODULE).href)) as { startServer: StartServer };
  const server = await serverModule.startServer({
    dataDir: flags["data-dir"],
    host: LOOPBACK_HOST,
    port: 0,
    logger: flags.logger,
    ...(flags["snapshot-every"] === undefined ? {} : { snapshotEvery: Number(flags["snapshot-every"]) }),
  });
  exitWhenTold(() => server.close());
  announceReady({ url: server.url, port: server.port });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) await main();
