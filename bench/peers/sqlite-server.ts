/**
 * Child entry: a naive durable HTTP service on SQLite (better-sqlite3, WAL
 * journal, `synchronous=FULL`): `POST /command` inserts the task.submit body
 * into a table keyed by task id and answers once it is committed.
 *
 *   --mode txn    one transaction per command (what a naive service does; the
 *                 synchronous driver blocks the event loop on each commit)
 *   --mode group  group commit: commands that arrive while one transaction is
 *                 pending are inserted together in the next transaction,
 *                 run on setImmediate (one fsync per batch)
 *
 * node:http like the do-nothing server, so the HTTP cost is the same.
 * Run: node --import tsx bench/peers/sqlite-server.ts --db FILE --mode txn|group
 */
import http from "node:http";
import { parseArgs } from "node:util";
import Database from "better-sqlite3";
import { serveUntilTold } from "./child-entry.ts";
import { LOOPBACK_HOST } from "./ports.ts";

const { values: flags } = parseArgs({ options: { db: { type: "string" }, mode: { type: "string", default: "txn" } } });
if (!flags.db) throw new Error("--db is required");
const db = new Database(flags.db);
db.pragma("journal_mode = WAL");
db.pragma("synchronous = FULL");
db.exec("CREATE TABLE IF NOT EXISTS commands (seq INTEGER PRIMARY KEY, task_id TEXT UNIQUE NOT NULL, body TEXT NOT NULL)");
const insert = db.prepare("INSERT INTO commands (task_id, body) VALUES (?, ?)");
const insertMany = db.transaction((rows: Array<{ taskId: string; body: string }>) => rows.map((row) => Number(insert.run(row.taskId, row.body).lastInsertRowid)));

interface Pending {
  taskId: string;
  body: string;
  answer: (status: number, reply: unknown) => void;
}
let queue: Pending[] = [];
let scheduled = false;
function flush(): void {
  scheduled = false;
  const batch = queue;
  queue = [];
  try {
    const seqs = insertMany(batch);
    batch.forEach((item, i) => item.answer(200, { index: seqs[i], result: { taskId: item.taskId } }));
  } catch (error) {
    for (const item of batch) item.answer(500, { error: { code: "internal", message: String(error) } });
  }
}

const server = http.createServer((request, response) => {
  const chunks: Buffer[] = [];
  request.on("data", (chunk: Buffer) => chunks.push(chunk));
  request.on("end", () => {
    const answer = (status: number, reply: unknown): void => {
      const text = JSON.stringify(reply);
      response.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
      response.end(text);
    };
    let taskId: string;
    const body = Buffer.concat(chunks).toString("utf8");
    try {
      const command = JSON.parse(body) as { payload?: { taskId?: unknown } };
      taskId = String(command.payload?.taskId);
    } catch {
      answer(400, { error: { code: "bad_request" } });
      return;
    }
    if (flags.mode === "group") {
      queue.push({ taskId, body, answer });
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
      return;
    }
    try {
      const [seq] = insertMany([{ taskId, body }]);
      answer(200, { index: seq, result: { taskId } });
    } catch (error) {
      answer(500, { error: { code: "internal", message: String(error) } });
    }
  });
});
server.keepAliveTimeout = 60_000;
serveUntilTold(server, LOOPBACK_HOST, 0, () => {
  if (queue.length) flush();
  db.close();
});
