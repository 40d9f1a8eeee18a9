/**
 * Child entry: the do-nothing HTTP server, the ceiling for any HTTP peer on
 * this machine with this client. node:http on 127.0.0.1, it reads and parses
 * the JSON body (up to 1 MiB, else 413), and answers a small JSON object shaped
 * like Swoosh's `{index, hlc, result}`, without storing anything.
 *
 * Run: node --import tsx bench/peers/do-nothing-server.ts [--port 0]
 */
import http from "node:http";
import { parseArgs } from "node:util";
import { serveUntilTold } from "./child-entry.ts";
import { LOOPBACK_HOST } from "./ports.ts";

const BODY_LIMIT_BYTES = 1024 * 1024;
const { values: flags } = parseArgs({ options: { port: { type: "string", default: "0" } } });

let index = 0;
const server = http.createServer((request, response) => {
  const chunks: Buffer[] = [];
  let bytes = 0;
  request.on("data", (chunk: Buffer) => {
    bytes += chunk.length;
    if (bytes <= BODY_LIMIT_BYTES) chunks.push(chunk);
  });
  request.on("end", () => {
    let status = 200;
    let reply: unknown;
    if (bytes > BODY_LIMIT_BYTES) {
      status = 413;
      reply = { error: { code: "payload_too_large", message: "body too large" } };
    } else {
      try {
        const command = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { payload?: { taskId?: unknown } };
        index += 1;
        reply = { index, hlc: "000000000000000-0000000000-noop", result: { taskId: command.payload?.taskId ?? null } };
      } catch {
        status = 400;
        reply = { error: { code: "bad_request", message: "invalid JSON" } };
      }
    }
    const text = JSON.stringify(reply);
    response.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
    response.end(text);
  });
});
server.keepAliveTimeout = 60_000;

serveUntilTold(server, LOOPBACK_HOST, Number(flags.port));
