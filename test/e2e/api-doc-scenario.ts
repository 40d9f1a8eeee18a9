/**
 * The session API_INTEGRATION.md's endpoint examples were taken from: a
 * build farm's first commands against a fresh server, and the answers the
 * document shows. The document test replays it against a live server and
 * holds every example to the shape of the real answer (same fields, nested
 * the same way, same JSON types); `node --import tsx
 * test/e2e/api-doc-scenario.ts URL` prints the answers to paste when the
 * examples are refreshed.
 */
import { http } from "./processes.ts";
import type { HttpAnswer } from "./processes.ts";

/** The example of each endpoint section, by the section's heading in the document. */
export type ScenarioAnswers = ReadonlyMap<string, unknown>;

async function ok(answer: Promise<HttpAnswer>, what: string, status = 200): Promise<unknown> {
  const got = await answer;
  if (got.status !== status) throw new Error(`${what}: ${got.status} ${JSON.stringify(got.body)}`);
  return got.body;
}

/** Runs the session against a fresh server at `url` (its genesis the default, cluster "build-farm"); returns the answers the document shows. */
export async function runApiDocScenario(url: string): Promise<ScenarioAnswers> {
  const answers = new Map<string, unknown>();
  const command = (type: string, payload: unknown, id?: string) => ok(http(url, "POST", "/command", { body: id === undefined ? { type, payload } : { type, payload, id } }), type);
  await command("agent.register", { agentId: "worker-1", labels: ["linux", "gpu"], capacity: 2 });
  await command("task.submit", { taskId: "build", kind: "build", payload: { repo: "github.com/example/app", commit: "4f2a9c1" } }, "submit-build");
  answers.set("### `GET /state`", await ok(http(url, "GET", "/state"), "GET /state"));
  answers.set(
    "### `POST /commands`",
    await ok(
      http(url, "POST", "/commands", {
        body: {
          commands: [
            { type: "task.submit", payload: { taskId: "lint", kind: "lint" } },
            { type: "task.submit", payload: { taskId: "test", kind: "test", dependsOn: ["build", "nope"] } },
          ],
        },
      }),
      "POST /commands",
    ),
  );
  await command("task.submit", { taskId: "test", kind: "test", dependsOn: ["build"], requires: ["linux"] });
  const claimed = (await command("task.claim", { agentId: "worker-1", limit: 2 })) as { result: { leases: Array<{ taskId: string; token: number }> } };
  const lease = claimed.result.leases.find((one) => one.taskId === "build");
  if (lease === undefined) throw new Error("the claim did not lease build");
  await command("task.complete", { taskId: "build", token: lease.token, result: { artifact: "app-4f2a9c1.tar.gz" } });
  answers.set("### `GET /tasks`", await ok(http(url, "GET", "/tasks?limit=2"), "GET /tasks"));
  answers.set("### `GET /log`", await ok(http(url, "GET", "/log?limit=2"), "GET /log"));
  answers.set("## Errors", await ok(http(url, "POST", "/command", { body: { type: "task.complete", payload: { taskId: "build", token: lease.token } } }), "stale completion", 409));
  return answers;
}

if (import.meta.url === `file://${process.argv[1] ?? ""}`) {
  const url = process.argv[2];
  if (url === undefined) throw new Error("usage: api-doc-scenario.ts URL (a fresh `swoosh serve` of cluster build-farm)");
  for (const [section, answer] of await runApiDocScenario(url)) console.log(`${section}\n${JSON.stringify(answer)}\n`);
}
