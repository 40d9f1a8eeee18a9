/**
 * The HTTP ceilings' one server: node:http that reads a `POST /command` body
 * (up to 1 MiB, else 413), parses it as JSON (else 400), and answers a small
 * JSON object shaped like Swoosh's `{index, hlc, result}`. With a `persist`
 * step the answer waits for it (the durable do-nothing server); without, it is
 * written in the same turn (the do-nothing server).
 */
import http from "node:http";

const BODY_LIMIT_BYTES = 1024 * 1024;

/** Makes the body of command `index` durable; resolves once it is. */
export type Persist = (index: number, body: string) => Promise<unknown>;

export function createEchoServer(persist?: Persist, onPersistFailed?: (error: unknown) => void): http.Server {
  let index = 0;
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    request.on("data", (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes <= BODY_LIMIT_BYTES) chunks.push(chunk);
    });
    request.on("end", () => {
      const answer = (status: number, reply: unknown): void => {
        const text = JSON.stringify(reply);
        response.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
        response.end(text);
      };
      if (bytes > BODY_LIMIT_BYTES) {
        answer(413, { error: { code: "payload_too_large", message: "body too large" } });
        return;
      }
      const body = Buffer.concat(chunks).toString("utf8");
      let command: { payload?: { taskId?: unknown } };
      try {
        command = JSON.parse(body) as typeof command;
      } catch {
        answer(400, { error: { code: "bad_request", message: "invalid JSON" } });
        return;
      }
      index += 1;
      const reply = { index, hlc: "000000000000000-0000000000-noop", result: { taskId: command.payload?.taskId ?? null } };
      if (persist === undefined) {
        answer(200, reply);
        return;
      }
      persist(index, body).then(
        () => answer(200, reply),
        (error: unknown) => {
          // As Swoosh does on a failed flush: never acknowledge, answer 503, stop.
          answer(503, { error: { code: "unavailable", message: "the write could not be made durable" } });
          onPersistFailed?.(error);
        },
      );
    });
  });
  server.keepAliveTimeout = 60_000;
  return server;
}
