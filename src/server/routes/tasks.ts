/**
 * `GET /tasks?status=&kind=&agentId=&limit=&cursor=` and `GET /tasks/:id`.
 *
 * Filters combine with AND: `status` (one status, or several comma-separated),
 * `kind` (exact), `agentId` (the holder of a live lease). Pages follow
 * pagination.ts: ascending task id, opaque cursor, limit 1..1000 (default 100),
 * and at most about PAGE_CHARS_MAX characters of tasks (one at least).
 * Records are never mutated once in the state (reducer rule 2), so a page can
 * hand out the records themselves.
 */
import type { FastifyInstance } from "fastify";
import { SwooshError } from "../../core/errors.ts";
import type { Task, TaskStatus } from "../../domain/index.ts";
import { IDS_PER_STEP } from "../../core/sliced-sort.ts";
import { DictionaryCapture } from "../../core/state-capture.ts";
import { PAGE_CHARS_MAX } from "../../engine/engine.ts";
import { JSON_CONTENT_TYPE } from "../errors.ts";
import { PageCollector, decodeCursor, encodeCursor, parseLimit } from "../pagination.ts";
import type { ServerRuntime } from "../runtime.ts";
import { readQuery } from "./common.ts";

const TASK_STATUSES: ReadonlySet<string> = new Set<TaskStatus>(["blocked", "queued", "leased", "succeeded", "failed", "cancelled"]);

function parseStatuses(text: string | undefined): ReadonlySet<string> | null {
  if (text === undefined) return null;
  const statuses = new Set(text.split(","));
  for (const status of statuses) {
    if (!TASK_STATUSES.has(status)) throw new SwooshError("bad_request", `status must be one or more of ${[...TASK_STATUSES].join(", ")}`, { field: "status" });
  }
  return statuses;
}

export function registerTaskRoutes(app: FastifyInstance, runtime: ServerRuntime): void {
  app.get("/tasks", async (request, reply) => {
    const engine = runtime.requireEngine();
    const query = readQuery(request.query, ["status", "kind", "agentId", "limit", "cursor"]);
    const statuses = parseStatuses(query.status);
    const { kind, agentId, cursor } = query;
    const limit = parseLimit(query.limit);
    const after = cursor === undefined ? undefined : decodeCursor(cursor);

    // Read from a capture of the state a step at a time: a page over 100,000
    // tasks is a scan of all of them, which in one go would hold every write
    // behind it for tens of milliseconds.
    const { index, value: page } = await engine.scanCaptured(function* (capture) {
      const tasks = capture.top.tasks;
      if (!(tasks instanceof DictionaryCapture)) throw new Error("the state's tasks were not captured");
      const collector = new PageCollector(limit, after);
      let sinceStep = 0;
      for (const id of tasks.ids()) {
        const task = tasks.get(id) as unknown as Task;
        if ((statuses === null || statuses.has(task.status)) && (kind === undefined || task.kind === kind) && (agentId === undefined || task.lease?.agentId === agentId)) {
          collector.offer(id);
        }
        if (++sinceStep === IDS_PER_STEP) {
          sinceStep = 0;
          yield;
        }
      }
      const { ids, more } = collector.result();
      return { tasks: ids.map((id) => tasks.get(id) as unknown as Task), more };
    });
    // The page also ends at about PAGE_CHARS_MAX characters (one task at least):
    // its text is built here, a task at a time, and sent as it is.
    const texts: string[] = [];
    let chars = 0;
    for (const task of page.tasks) {
      const text = JSON.stringify(task);
      if (texts.length > 0 && chars + text.length > PAGE_CHARS_MAX) break;
      texts.push(text);
      chars += text.length;
    }
    const more = page.more || texts.length < page.tasks.length;
    const last = page.tasks[texts.length - 1];
    const nextCursor = more && last !== undefined ? JSON.stringify(encodeCursor(last.id)) : "null";
    reply.header("swoosh-index", String(index)).type(JSON_CONTENT_TYPE);
    return `{"index":${index},"tasks":[${texts.join(",")}],"nextCursor":${nextCursor}}`;
  });

  app.get<{ Params: { id: string } }>("/tasks/:id", async (request, reply) => {
    const engine = runtime.requireEngine();
    readQuery(request.query, []);
    const id = request.params.id;
    const found = await engine.read(({ index, model }) => {
      const tasks = model.state.tasks;
      return { index, task: Object.prototype.hasOwnProperty.call(tasks, id) ? (tasks[id] as Task) : undefined };
    });
    // The 404 too says which index it was read at: a client can tell whether its own write (a prune) is behind it.
    reply.header("swoosh-index", String(found.index));
    if (found.task === undefined) throw new SwooshError("unknown_task", `no task ${JSON.stringify(id)}`, { taskId: id });
    return found.task;
  });
}
