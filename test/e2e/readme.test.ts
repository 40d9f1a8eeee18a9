/**
 * The README's "Try it with curl" walkthrough, run as a newcomer runs it:
 * every command pasted into bash, in order, against `swoosh serve` on an empty
 * data dir (then restarted with a token for the auth part), each answer held
 * to what the README says it prints. A README that drifts from the server —
 * a renamed field, another error code, an example that no longer runs —
 * fails here.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { after, it } from "node:test";
import { tempDir } from "../support/engine-fixtures.ts";
import { http, killAll, runProcess, startServe, stopServe } from "./processes.ts";
import { matchesExpected, walkthroughSteps } from "./readme-walkthrough.ts";
import type { WalkthroughStep } from "./readme-walkthrough.ts";

const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));
/** How long a `curl -N` stream is read before curl gives up (exit 28), as Ctrl-C would end it. */
const STREAM_SECONDS = 2;
const CURL_TIMED_OUT = 28;

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  killAll();
  for (const cleanup of cleanups) await cleanup();
});

interface StepRun {
  readonly step: WalkthroughStep;
  readonly stdout: string;
  readonly exitCode: number;
}

/** The command as the test's shell runs it: against `origin`, streams bounded in time. */
function localized(command: string, origin: string): string {
  return command.replaceAll("localhost:7777", origin).replace(/^curl -N /, `curl -sN --max-time ${STREAM_SECONDS} `);
}

/** Runs `steps` in one bash (variables such as $TOKEN carry from step to step); each step's stdout and exit code. */
async function runSteps(steps: readonly WalkthroughStep[], origin: string, env: Record<string, string>): Promise<StepRun[]> {
  const script = steps.map((step, i) => `printf '\\n@@step ${i}\\n'\n{\n${localized(step.command, origin)}\n}\nprintf '\\n@@rc ${i} %d\\n' $?\n`).join("");
  const shell = await runProcess("bash", ["-c", script], { cwd: REPO_ROOT, env, timeoutMs: 120_000 });
  assert.equal(shell.status, 0, `the walkthrough's shell exited ${shell.status}; stderr:\n${shell.stderr}`);
  const { stdout, stderr } = shell;
  return steps.map((step, i) => {
    const match = new RegExp(`\\n@@step ${i}\\n([\\s\\S]*?)\\n@@rc ${i} (\\d+)\\n`).exec(stdout);
    assert.ok(match, `README line ${step.line}: no output recorded; stderr:\n${stderr}`);
    return { step, stdout: (match[1] as string).trim(), exitCode: Number(match[2]) };
  });
}

/** Indexes of the `system.tick` entries the server logged itself (they move later indexes on). */
async function tickIndexes(url: string, token?: string): Promise<number[]> {
  const answer = await http(url, "GET", "/log?from=1&limit=1000", token === undefined ? {} : { token });
  assert.equal(answer.status, 200);
  const entries = (answer.body as { entries: Array<{ index: number; type: string }> }).entries;
  return entries.filter((entry) => entry.type === "system.tick").map((entry) => entry.index);
}

/** Holds every step to the README: exit code, the answer it shows, and no error where it shows none. */
function checkSteps(runs: readonly StepRun[], ticks: readonly number[]): void {
  const indexOk = (readmeIndex: number, actualIndex: number): boolean => actualIndex === readmeIndex + ticks.filter((tick) => tick < actualIndex).length;
  for (const { step, stdout, exitCode } of runs) {
    const where = `README line ${step.line} (${step.command.split("\n")[0]})`;
    const streaming = step.command.startsWith("curl -N");
    assert.equal(exitCode, streaming ? CURL_TIMED_OUT : 0, `${where}: exit code ${exitCode}; printed:\n${stdout}`);
    if (step.expected !== null) {
      assert.ok(matchesExpected(stdout, step.expected, indexOk), `${where}: the README shows\n  ${step.expected}\nbut it printed\n  ${stdout}\n(system.tick at ${ticks.join(", ") || "none"})`);
      continue;
    }
    if (/^[A-Z]+=\$\(/.test(step.command)) continue;
    assert.notEqual(stdout, "", `${where}: printed nothing`);
    if (stdout.startsWith("{")) {
      const body = JSON.parse(stdout) as Record<string, unknown>;
      assert.equal(body.error, undefined, `${where}: answered an error: ${stdout}`);
    }
  }
}

/** The `id:` values of the server-sent events a stream printed. */
function eventIds(stream: string): number[] {
  return [...stream.matchAll(/^id: (\d+)$/gm)].map((match) => Number(match[1]));
}

it("the README's curl walkthrough runs as written and answers what it shows", async () => {
  const readme = await readFile(new URL("README.md", `file://${REPO_ROOT}`), "utf8");
  const steps = walkthroughSteps(readme, "Try it with curl");
  const restart = steps.findIndex((step) => /(^|\s)npm start$/.test(step.command));
  assert.ok(restart > 0, "the walkthrough restarts the server with a token");
  const restartEnv = Object.fromEntries([...(steps[restart] as WalkthroughStep).command.matchAll(/(SWOOSH_[A-Z_]+)=(\S+)/g)].map((m) => [m[1] as string, m[2] as string]));
  assert.equal(typeof restartEnv.SWOOSH_TOKEN, "string", "the restart sets SWOOSH_TOKEN");
  const token = restartEnv.SWOOSH_TOKEN as string;

  const { dir, cleanup } = await tempDir("swoosh-readme-");
  cleanups.push(cleanup);
  const open = await startServe(["--data-dir", dir]);
  const openRuns = await runSteps(steps.slice(0, restart), new URL(open.url).host, {});
  checkSteps(openRuns, await tickIndexes(open.url));

  // The streams: the whole history from ?from=0, and a resume after index 5 with Last-Event-ID.
  const stream = (pattern: RegExp): string => (openRuns.find((run) => pattern.test(run.step.command)) as StepRun).stdout;
  const fromStart = eventIds(stream(/watch\?from=0/));
  assert.equal(fromStart[0], 1, `?from=0 starts at index 1: ${fromStart.join(",")}`);
  assert.ok(fromStart.length >= 9, `?from=0 replays the walkthrough's commands: ${fromStart.join(",")}`);
  assert.equal(eventIds(stream(/Last-Event-ID: 5/))[0], 6, "Last-Event-ID: 5 resumes at index 6");
  assert.equal((await stopServe(open)).code, 0);

  const secured = await startServe(["--data-dir", dir], { env: restartEnv });
  const securedRuns = await runSteps(steps.slice(restart + 1), new URL(secured.url).host, { SWOOSH_URL: secured.url, SWOOSH_TOKEN: token });
  checkSteps(securedRuns, await tickIndexes(secured.url, token));
  const stateAt = securedRuns.find((run) => run.step.command.includes("state --at"));
  if (stateAt !== undefined) {
    const at = Number(/--at (\d+)/.exec(stateAt.step.command)?.[1]);
    assert.equal((JSON.parse(stateAt.stdout) as { index: number }).index, at, `swoosh state --at ${at} answers the state as of ${at}`);
  }
  assert.equal((await stopServe(secured)).code, 0);
});
