/**
 * API_INTEGRATION.md's worked example, taken from the document itself: the
 * example state's canonical JSON and hash are what Swoosh computes (library
 * and `swoosh hash`); the Python reference printed there, run with python3,
 * prints the same two lines; and the document's log-chain verifier, run
 * against a live server, verifies its chain — as does the Python state hash
 * of a live `GET /state`. Every JSON example parses; the genesis example is
 * accepted as it stands; and the endpoint examples have the shape of what a
 * live server answers to the session they were taken from
 * (api-doc-scenario.ts). A document that drifts from the code fails here.
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
import { runApiDocScenario } from "./api-doc-scenario.ts";

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

/**
 * What a JSON value is made of, values aside: objects by their (sorted) keys,
 * arrays element by element, primitives by their JSON type.
 */
function shapeOf(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(shapeOf);
  if (value === null) return "null";
  if (typeof value === "object") {
    const record = value as Record<string, unknown>;
    return Object.fromEntries(Object.keys(record).sort().map((key) => [key, shapeOf(record[key])]));
  }
  return typeof value;
}

describe("API_INTEGRATION.md: the endpoint examples are real answers", () => {
  let doc = "";
  /** The first block after each heading. */
  const exampleAfter = (heading: string) => {
    const block = fencedBlocksAfter(doc, "API_INTEGRATION.md", heading)[0];
    assert.ok(block, `a block after ${heading}`);
    return block;
  };

  before(async () => {
    doc = await readFile(new URL("../../API_INTEGRATION.md", import.meta.url), "utf8");
  });

  it("every json block parses as JSON (no elisions)", () => {
    const blocks = fencedBlocksAfter(doc, "API_INTEGRATION.md", "# Integrating with Swoosh").filter((block) => block.lang === "json");
    assert.ok(blocks.length >= 8, `json blocks: ${blocks.length}`);
    for (const block of blocks) assert.doesNotThrow(() => JSON.parse(block.text), `does not parse:\n${block.text}`);
  });

  it("the genesis example initializes a data dir through POST /state, and the session's answers have the examples' shape", { timeout: 120_000 }, async () => {
    const genesisBlock = exampleAfter("### `POST /state`");
    assert.equal(genesisBlock.lang, "json");
    const genesis = JSON.parse(genesisBlock.text) as { stateHash: string };
    const { dir, cleanup } = await tempDir("swoosh-doc-examples-");
    cleanups.push(cleanup);
    const server = await startServe(["--data-dir", path.join(dir, "data"), "--await-genesis"]);
    const initialized = await http(server.url, "POST", "/state", { body: genesis });
    assert.equal(initialized.status, 201, JSON.stringify(initialized.body));
    assert.deepEqual(initialized.body, { clusterId: "build-farm", stateHash: genesis.stateHash, created: true });

    const answers = await runApiDocScenario(server.url);
    for (const [heading, live] of answers) {
      const block = exampleAfter(heading);
      assert.equal(block.lang, "json", heading);
      assert.deepEqual(shapeOf(JSON.parse(block.text)), shapeOf(live), `${heading}: the example's shape is the live answer's`);
    }
    // The /watch example's event is a log entry, as /log gives it.
    const watch = exampleAfter("### `GET /watch`");
    const data = /^data: (.*)$/m.exec(watch.text)?.[1];
    assert.ok(data, "the /watch example has a data line");
    const entry = (await http(server.url, "GET", "/log?from=6&limit=1")).body as { entries: unknown[] };
    assert.deepEqual(shapeOf(JSON.parse(data)), shapeOf(entry.entries[0]));

    // The examples are one history: the chain starts at the genesis example's hash, and /state's logHash is entry 2's hash.
    const log = JSON.parse(exampleAfter("### `GET /log`").text) as { entries: Array<{ prevHash: string; hash: string }> };
    const state = JSON.parse(exampleAfter("### `GET /state`").text) as { index: number; logHash: string; state: unknown; stateHash: string };
    assert.equal(log.entries[0]?.prevHash, genesis.stateHash);
    assert.equal(state.index, 2);
    assert.equal(state.logHash, log.entries[1]?.hash);
    assert.equal(computeStateHash(state.state), state.stateHash);
    assert.equal((await stopServe(server)).code, 0);
  });
});
