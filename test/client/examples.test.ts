/**
 * The examples run to completion against a real server (SWOOSH_URL), as a
 * user runs them against `npm start`.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { SwooshClient } from "../../src/client/index.ts";
import { startTestServer } from "./helpers.ts";

const root = fileURLToPath(new URL("../../", import.meta.url));

async function runExample(file: string, url: string): Promise<string> {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith("SWOOSH_")) env[key] = value;
  const { stdout } = await promisify(execFile)(process.execPath, ["--conditions=swoosh-source", "--import", "tsx", file], { cwd: root, env: { ...env, SWOOSH_URL: url }, timeout: 60_000 });
  return stdout;
}

describe("examples", () => {
  it("dag-pipeline prints the report and leaves no agent behind", async (t) => {
    const { url } = await startTestServer(t);
    const output = await runExample("examples/dag-pipeline.ts", url);
    assert.match(output, /report \(dag-/);
    assert.match(output, /"count": 48/);
    const client = new SwooshClient({ url });
    assert.deepEqual((await client.listAgents()).agents, []);
    assert.equal((await client.listTasks({ status: "succeeded" })).tasks.length, 5);
  });

  it("crash-demo: the task survives its worker's SIGKILL and completes once; the config is put back", async (t) => {
    const { url } = await startTestServer(t);
    const client = new SwooshClient({ url });
    const { state } = await client.getState();
    const output = await runExample("examples/crash-demo.ts", url);
    assert.match(output, /SIGKILL/);
    assert.match(output, /succeeded: \{"attempt":2/);
    assert.match(output, /task\.complete of it in the log: 1/);
    assert.deepEqual((await client.getState()).state.config, state.config);
    assert.deepEqual((await client.listAgents()).agents, []);
  });
});
