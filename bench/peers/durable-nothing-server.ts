/**
 * Child entry: the durable do-nothing HTTP server, the ceiling for any server
 * that makes each command durable on Swoosh's storage before answering. It is
 * the do-nothing server (echo-server.ts) plus one step: the body is put into
 * LMDB, with the environment settings of Swoosh's WAL (LMDB_LOG_ENV_OPTIONS:
 * durable commits, the meta page written after the data's fdatasync), and the
 * answer waits for the commit. Puts made while a commit runs form the next one
 * (lmdb-js's own group commit). No validation, state machine, hash chain,
 * idempotency table or snapshot: what Swoosh adds on top is the difference.
 *
 * Run: node --import tsx bench/peers/durable-nothing-server.ts --data-dir DIR [--port 0]
 */
import { parseArgs } from "node:util";
import { open } from "lmdb";
import { LMDB_LOG_DB_OPTIONS, LMDB_LOG_ENV_OPTIONS } from "../../src/storage/lmdb-log.ts";
import { serveUntilTold } from "./child-entry.ts";
import { createEchoServer } from "./echo-server.ts";
import { LOOPBACK_HOST } from "./ports.ts";

const { values: flags } = parseArgs({ options: { port: { type: "string", default: "0" }, "data-dir": { type: "string" } } });
if (flags["data-dir"] === undefined) throw new Error("--data-dir is required");

const env = open({ path: flags["data-dir"], ...LMDB_LOG_ENV_OPTIONS });
const db = env.openDB<string, number>(LMDB_LOG_DB_OPTIONS);
const server = createEchoServer(
  (index, body) => db.put(index, body),
  (error) => {
    console.error("commit failed:", error);
    process.exit(1);
  },
);

serveUntilTold(server, LOOPBACK_HOST, Number(flags.port), () => void env.close());
