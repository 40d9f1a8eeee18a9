/**
 * Child entry: the do-nothing HTTP server, the ceiling for any HTTP peer on
 * this machine with this client (echo-server.ts without a persist step): it
 * parses the body and answers small JSON, storing nothing.
 *
 * Run: node --import tsx bench/peers/do-nothing-server.ts [--port 0]
 */
import { parseArgs } from "node:util";
import { serveUntilTold } from "./child-entry.ts";
import { createEchoServer } from "./echo-server.ts";
import { LOOPBACK_HOST } from "./ports.ts";

const { values: flags } = parseArgs({ options: { port: { type: "string", default: "0" } } });

serveUntilTold(createEchoServer(), LOOPBACK_HOST, Number(flags.port));
