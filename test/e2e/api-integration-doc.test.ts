/**
 * API_INTEGRATION.md's worked example, taken from the document itself: the
 * example state's canonical JSON and hash are what Swoosh computes (library
 * and `swoosh hash`); the Python reference printed there, run with python3,
 * prints the same two lines; and the document's log-chain verifier, run
 * against a live server, verifies its chain — as does the Python state hash
 * of a live `GET /state`. A document that drifts from the code fails here.
 */
import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { canonicalJSON } from "../../src/core/json.ts";
import { computeStateHash } from "../../src/core/hash.ts";
import { tempDir } from "../support/engine-fixtures.ts";
import { http, killAll, runCli, runProcess, startServe, stopServe } from "./processes.ts";
import type { CliRun } from "./processes.ts";
import { fencedBlocksAfter } from "./doc-blocks.ts";

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  killAll();
  for (const cleanup of cleanups) await cleanup();
});

/** Runs `python3 ARGS` in `cwd` (at most 30 s). */
function python(args: readonly string[], cwd: string): Promise<CliRun> {
  return runProcess("python3", args, { cwd, timeoutMs: 30_000 });
}

describe("API_INTEGRATION.md: the state hash worked example and the Python references", () => {
  let dir = "";
  let doc = "";
  let stateText = "";
  let canonicalLine = "";
  let documentedHash = "";
  let jcsHashPy = "";
  let chainPy = "";

  before(async () => {
    doc = await readFile(new URL("../../API_INTEGRATION.md", import.meta.url), "utf8");
    const blocks = fencedBlocksAfter(doc, "API_INTEGRATION.md", "**Worked example.**");
    const [state, canonical, hashRun, jcs, chain] = blocks;
    assert.ok(state && canonical && hashRun && jcs && chain, "the worked example's five blocks");
    assert.equal(state.lang, "json");
    assert.equal(jcs.lang, "python");
    assert.equal(chain.lang, "python");
    stateText = state.text;
    canonicalLine = canonical.text.trimEnd();
    const hashLines = hashRun.text.trimEnd().split("\n");
    assert.equal(hashLines[0], "$ npx swoosh hash state.json");
    documentedHash = hashLines[1] as string;
    jcsHashPy = jcs.text;
    chainPy = chain.text;
    const made = await tempDir("swoosh-doc-");
    cleanups.push(made.cleanup);
    dir = made.dir;
    await writeFile(path.join(dir, "state.json"), stateText);
    await writeFile(path.join(dir, "jcs_hash.py"), jcsHashPy);
  });

  it("the example's canonical JSON and state hash are what Swoosh computes", async () => {
    const state: unknown = JSON.parse(stateText);
    assert.equal(canonicalJSON(state), canonicalLine);
    assert.equal(Buffer.byteLength(canonicalLine), Number(/one line of (\d+) bytes/.exec(doc)?.[1]), "the byte count the document gives");
    assert.equal(computeStateHash(state), documentedHash);
    const cli = await runCli(["hash", path.join(dir, "state.json")]);
    assert.equal(cli.status, 0, cli.stderr);
    assert.equal(cli.stdout.trim(), documentedHash);
  });

  it("the Python reference prints the same canonical line and hash", async () => {
    const run = await python(["jcs_hash.py", "state.json"], dir);
    assert.equal(run.status, 0, run.stderr);
    assert.deepEqual(run.stdout.trimEnd().split("\n"), [canonicalLine, documentedHash]);
  });

  it("against a live server: the Python chain verifier passes and the Python state hash equals stateHash", async () => {
    const { dir: dataDir, cleanup } = await tempDir("swoosh-doc-data-");
    cleanups.push(cleanup);
    const server = await startServe(["--data-dir", dataDir]);
    await http(server.url, "POST", "/command", { body: { type: "agent.register", payload: { agentId: "w1", labels: ["linux"] } } });
    const batch = await http(server.url, "POST", "/commands", {
      body: { commands: Array.from({ length: 20 }, (_, i) => ({ type: "task.submit", payload: { taskId: `t${i}`, kind: "render", payload: { n: i / 3, title: "Café ☕\n", "😀": i } } })) },
    });
    assert.equal(batch.status, 200);
    await writeFile(path.join(dir, "chain.py"), chainPy.replace('"http://127.0.0.1:7777"', JSON.stringify(server.url)));
    const chain = await python(["chain.py"], dir);
    assert.equal(chain.status, 0, chain.stderr);
    assert.match(chain.stdout, /^entries 1\.\.\d+ chain verified; head [0-9a-f]{64}\n$/);
    const live = await python(
      ["-c", `import json, urllib.request\nfrom jcs_hash import state_hash\nr = json.load(urllib.request.urlopen(${JSON.stringify(server.url + "/state")}))\nassert state_hash(r["state"]) == r["stateHash"], "mismatch"\nprint(r["index"])`],
      dir,
    );
    assert.equal(live.status, 0, live.stderr);
    assert.ok(Number(live.stdout) >= 21, `the state held the commands: ${live.stdout}`);
    assert.equal((await stopServe(server)).code, 0);
  });
});
