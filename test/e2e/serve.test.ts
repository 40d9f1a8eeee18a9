/**
 * `swoosh serve`, `swoosh state` and `swoosh command` as child processes
 * (SPEC §4, §7, §9): the startup block, the HTTP clients and their exit codes,
 * a clean SIGTERM shutdown that a restart recovers from, genesis handling and
 * bearer-token auth.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readFile, readdir, rename, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { after, describe, it } from "node:test";
import { computeStateHash } from "../../src/core/hash.ts";
import { PRETTY_ANSWER_BYTES_MAX } from "../../src/cli/http-client.ts";
import { openSwoosh } from "../../src/index.ts";
import { tempDir } from "../support/engine-fixtures.ts";
import { spawn } from "node:child_process";
import { bin, cleanEnv, http, killAll, runCli, startServe, stopServe, trackChild } from "./processes.ts";
import { setTimeout as sleep } from "node:timers/promises";
import type { CliRun } from "./processes.ts";

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  killAll();
  for (const cleanup of cleanups) await cleanup();
});

async function dir(): Promise<string> {
  const { dir, cleanup } = await tempDir("swoosh-e2e-");
  cleanups.push(cleanup);
  return dir;
}

function json(run: CliRun): Record<string, unknown> {
  assert.equal(run.status, 0, `exit ${run.status}: ${run.stderr}`);
  return JSON.parse(run.stdout) as Record<string, unknown>;
}

/** Exit code 2 or 1 with one `swoosh: …` line and no stack trace. */
function assertFailure(run: CliRun, exitCode: number, pattern: RegExp): void {
  assert.equal(run.status, exitCode, `expected exit ${exitCode}, got ${run.status}: ${run.stderr}`);
  assert.match(run.stderr, pattern);
  assert.doesNotMatch(run.stderr, /\n\s+at /, "no stack trace");
}

/**
 * Starts `swoosh …cliArgs` (node flags first), sends `signal` once its stderr
 * shows `marker`, and checks that it then stopped before serving: exit 0, the
 * startup stop logged, no serving line. Returns its stderr.
 */
async function signalledDuringStartup(nodeArgs: string[], cliArgs: string[], marker: string, signal: NodeJS.Signals, whileStarting?: () => Promise<void>): Promise<string> {
  const child = spawn(process.execPath, [...nodeArgs, bin, ...cliArgs], { env: cleanEnv(), stdio: ["ignore", "pipe", "pipe"] });
  const exited = trackChild(child);
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  const marked = new Promise<void>((resolve) =>
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
      if (stderr.includes(marker)) resolve();
    }),
  );
  await Promise.race([marked, exited.then(() => assert.fail(`exited before ${JSON.stringify(marker)}: ${stderr}`))]);
  await whileStarting?.();
  child.kill(signal);
  const exit = await exited;
  assert.deepEqual(exit, { code: 0, signal: null }, stderr);
  assert.match(stderr, new RegExp(`${signal} received during startup: stopped before serving`));
  assert.doesNotMatch(stdout, /serving/, "it never started serving");
  return stderr;
}

/** A loopback port nothing listens on right now. */
async function unusedPort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address() as net.AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

describe("swoosh serve, state and command", () => {
  it("prints the startup block, answers state and command, exits 0 on SIGTERM and recovers the same state", { timeout: 120_000 }, async () => {
    const dataDir = await dir();
    const server = await startServe(["--data-dir", dataDir]);
    let stateHash: string;
    let index: number;
    try {
      assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.equal(server.dataDir, dataDir);
      const genesis = JSON.parse(await readFile(path.join(dataDir, "genesis.json"), "utf8")) as { state: unknown; stateHash: string };
      assert.equal(server.genesisHash, genesis.stateHash);
      assert.equal(server.genesisHash, computeStateHash(genesis.state));
      assert.equal(server.recoveredIndex, 0);

      const url = ["--url", server.url];
      const registered = json(await runCli(["command", "agent.register", '{"agentId":"a1","labels":["linux"],"capacity":2}', ...url]));
      assert.equal(registered.index, 1);
      assert.deepEqual(registered.result, { agentId: "a1", created: true });

      const submitted = json(await runCli(["command", "task.submit", "-", "--id", "submit-t1", ...url], { input: '{"taskId":"t1","kind":"build"}' }));
      const again = json(await runCli(["command", "task.submit", '{"taskId":"t1","kind":"build"}', "--id", "submit-t1", ...url]));
      assert.equal(again.duplicate, true);
      assert.equal(again.index, submitted.index);
      // The empty string is an id like any other (SPEC §3).
      const emptyId = json(await runCli(["command", "agent.heartbeat", '{"agentId":"a1"}', "--id", "", ...url]));
      const emptyIdAgain = json(await runCli(["command", "agent.heartbeat", '{"agentId":"a1"}', "--id", "", ...url]));
      assert.equal(emptyIdAgain.duplicate, true);
      assert.equal(emptyIdAgain.index, emptyId.index);

      // Independent read-only runs, in parallel to keep the suite fast.
      const [unknownTask, unknownCommand, badJson, multiLine, tooLarge, loneSurrogate, state, atOne, pastEnd] = await Promise.all([
        runCli(["command", "task.complete", '{"taskId":"nope","token":1}', ...url]),
        runCli(["command", "no.such", "{}", ...url]),
        runCli(["command", "task.submit", "{not json", ...url]),
        runCli(["command", "task.submit", "-", ...url], { input: '{"taskId":"t9",\n"kind":x}' }),
        // JSON.parse reads 1e400 as Infinity and "\ud800" as a lone surrogate; sent, they would be stored as null and U+FFFD.
        runCli(["command", "task.submit", '{"taskId":"t9","kind":"k","payload":{"n":1e400}}', ...url]),
        runCli(["command", "task.submit", '{"taskId":"t9","kind":"k","payload":{"s":"\\ud800"}}', ...url]),
        runCli(["state", ...url]).then(json),
        runCli(["state", "--at", "1", ...url]).then(json),
        runCli(["state", "--at", "99", ...url]),
      ]);
      assertFailure(unknownTask, 2, /unknown_task/);
      assertFailure(unknownCommand, 2, /unknown_command/);
      assertFailure(badJson, 2, /not valid JSON/);
      assertFailure(multiLine, 2, /not valid JSON/);
      assert.equal(multiLine.stderr.trim().split("\n").length, 1, `one line: ${multiLine.stderr}`);
      assertFailure(tooLarge, 2, /\/payload\/n: number Infinity is not finite/);
      assertFailure(loneSurrogate, 2, /\/payload\/s: string holds a lone surrogate/);
      assert.equal(state.index, 3, "none of them was sent: register, submit, one heartbeat");
      assert.equal(state.stateHash, computeStateHash(state.state));
      assert.equal(atOne.index, 1);
      assertFailure(pastEnd, 2, /not_found/);
      stateHash = state.stateHash as string;
      index = state.index as number;
    } finally {
      const exit = await stopServe(server);
      assert.deepEqual(exit, { code: 0, signal: null }, server.stderr());
    }
    // stderr carries the server's JSON lines only, at the level asked for (warn: the SIGTERM line is info).
    const lines = server.stderr().split("\n").filter((line) => line.length > 0);
    for (const line of lines) assert.doesNotThrow(() => JSON.parse(line), `not a JSON log line: ${line}`);
    assert.doesNotMatch(server.stderr(), /SIGTERM/);
    assertFailure(await runCli(["state", "--url", server.url]), 1, /cannot reach .*ECONNREFUSED/);

    // A server that closes every connection at once: Node's fetch may then never settle; the timeout still ends it (before: exit 13, silent).
    const closer = net.createServer((socket) => socket.end());
    await new Promise<void>((resolve) => closer.listen(0, "127.0.0.1", resolve));
    try {
      const closerUrl = `http://127.0.0.1:${(closer.address() as net.AddressInfo).port}`;
      const [state, posted] = await Promise.all([
        runCli(["state", "--url", closerUrl, "--timeout-ms", "1000"]),
        runCli(["command", "task.submit", '{"taskId":"a","kind":"k"}', "--url", closerUrl, "--timeout-ms", "1000"]),
      ]);
      // Whether fetch fails at once (UND_ERR_SOCKET) or never settles is a race in Node: either way exit 1, named.
      assertFailure(state, 1, /no answer within 1000 ms|cannot reach/);
      assertFailure(posted, 1, /no answer within 1000 ms|cannot reach/);
    } finally {
      closer.close();
    }

    const restarted = await startServe(["--data-dir", dataDir]);
    try {
      assert.equal(restarted.recoveredIndex, index);
      assert.equal(restarted.genesisHash, server.genesisHash);
      const { body } = await http(restarted.url, "GET", "/state");
      assert.equal((body as { stateHash: string }).stateHash, stateHash);
    } finally {
      assert.equal((await stopServe(restarted)).code, 0);
    }
  });

  it("exits 2 on bad flags, bad genesis files, a refused genesis and a data dir that fails recovery", { timeout: 120_000 }, async () => {
    const d = await dir();
    const notJson = path.join(d, "not-json.json");
    await writeFile(notJson, "{ nope");
    const [docA, docB] = await Promise.all([runCli(["genesis", "--cluster-id", "a"]).then(json), runCli(["genesis", "--cluster-id", "b"]).then(json)]);
    const genesisA = path.join(d, "a.json");
    const genesisB = path.join(d, "b.json");
    const tampered = path.join(d, "tampered.json");
    await writeFile(genesisA, JSON.stringify(docA));
    await writeFile(genesisB, JSON.stringify(docB));
    await writeFile(tampered, JSON.stringify({ ...docA, stateHash: "0".repeat(64) }));
    const notAState = path.join(d, "not-a-state.json");
    await writeFile(notAState, JSON.stringify({ ...docA, state: { foo: 1 }, stateHash: computeStateHash({ foo: 1 }) }));

    // None of these may start a server (and none touches a shared data dir): run them in parallel.
    const badStarts: Array<[string[], Record<string, string>, RegExp]> = [
      [["--port", "70000"], {}, /error: option '--port/],
      [["--no-such-flag"], {}, /error: unknown option/],
      [["--snapshot-every", "-1"], {}, /error: option '--snapshot-every/],
      [["--node-id", "bad id"], {}, /error: option '--node-id/],
      [["--log-level", "loud"], {}, /error: option '--log-level/],
      [["--genesis", genesisA, "--await-genesis"], {}, /exclude each other/],
      [[], { SWOOSH_PORT: "x" }, /SWOOSH_PORT/],
      [["--genesis", notJson], {}, /not valid JSON/],
      [["--genesis", path.join(d, "missing.json")], {}, /cannot read genesis file/],
      [["--genesis", tampered], {}, /genesis_hash_mismatch/],
      [["--genesis", notAState], {}, /bad_request: genesis\.state is not a state this server can run: state \/schemaVersion/],
    ];
    const runs = await Promise.all(badStarts.map(([args, env]) => runCli(["serve", "--data-dir", path.join(d, "never"), ...args], { env })));
    runs.forEach((run, i) => assertFailure(run, 2, (badStarts[i] as [string[], Record<string, string>, RegExp])[2]));
    assert.equal(existsSync(path.join(d, "never")), false, "a refused start wrote nothing");

    const dataDir = path.join(d, "data");
    const server = await startServe(["--data-dir", dataDir], { env: { SWOOSH_GENESIS: genesisA } });
    assert.equal(server.genesisHash, docA.stateHash);
    // A second server on the same data dir: the directory lock refuses it (a runtime failure).
    assertFailure(await runCli(["serve", "--port", "0", "--data-dir", dataDir]), 1, /in use by process/);
    assert.equal((await stopServe(server)).code, 0);

    assertFailure(await runCli(["serve", "--port", "0", "--genesis", genesisB, "--data-dir", dataDir]), 2, /already_initialized/);
    const same = await startServe(["--genesis", genesisA, "--data-dir", dataDir]);
    assert.equal(same.genesisHash, docA.stateHash);
    assert.equal((await stopServe(same)).code, 0);

    await writeFile(path.join(dataDir, "genesis.json"), JSON.stringify({ ...docA, stateHash: "f".repeat(64) }));
    assertFailure(await runCli(["serve", "--port", "0", "--data-dir", dataDir]), 2, /failed recovery[\s\S]*genesis\.json/);
  });

  it("requires the bearer token from SWOOSH_TOKEN, and the clients send it from SWOOSH_TOKEN or --token-file", { timeout: 120_000 }, async () => {
    const d = await dir();
    const server = await startServe(["--data-dir", path.join(d, "data")], { env: { SWOOSH_TOKEN: "s3cret-token" } });
    try {
      assert.match(server.startupBlock, /auth:\s+bearer token required/);
      const refused = await http(server.url, "GET", "/state");
      assert.equal(refused.status, 401);
      assert.equal((refused.body as { error: { code: string } }).error.code, "unauthorized");
      assert.equal((await http(server.url, "GET", "/healthz")).status, 200);
      assert.equal((await http(server.url, "GET", "/state", { token: "s3cret-token" })).status, 200);

      const url = ["--url", server.url];
      assertFailure(await runCli(["state", ...url]), 2, /unauthorized/);
      assertFailure(await runCli(["state", ...url], { env: { SWOOSH_TOKEN: "wrong" } }), 2, /unauthorized/);
      json(await runCli(["command", "agent.register", '{"agentId":"a1"}', ...url], { env: { SWOOSH_TOKEN: "s3cret-token" } }));
      const tokenFile = path.join(d, "token");
      await writeFile(tokenFile, "s3cret-token\n");
      assert.equal(json(await runCli(["state", "--token-file", tokenFile, ...url])).index, 1);
      assertFailure(await runCli(["state", "--token-file", path.join(d, "missing"), ...url]), 2, /cannot read token file/);
    } finally {
      assert.equal((await stopServe(server)).code, 0);
    }
  });

  it("--await-genesis serves 503 until POST /state, and a second SIGINT during a slow shutdown exits 1", { timeout: 120_000 }, async () => {
    const d = await dir();
    const doc = json(await runCli(["genesis", "--cluster-id", "late"]));
    const server = await startServe(["--data-dir", path.join(d, "data"), "--await-genesis"]);
    let socket: net.Socket | null = null;
    try {
      assert.match(server.genesisHash, /^none yet/);
      assert.equal((await http(server.url, "GET", "/state")).status, 503);
      const posted = await http(server.url, "POST", "/state", { body: doc });
      assert.equal(posted.status, 201, JSON.stringify(posted.body));
      assert.equal((await http(server.url, "GET", "/readyz")).status, 200);

      // A request whose body never completes keeps the graceful close waiting (up to the request timeout).
      const open = net.connect(Number(new URL(server.url).port), "127.0.0.1");
      socket = open;
      await new Promise((resolve, reject) => open.once("connect", resolve).once("error", reject));
      open.write("POST /command HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{");
      await sleep(200);
      server.child.kill("SIGINT");
      await sleep(500);
      assert.equal(server.child.exitCode, null, "still closing while the request is open");
      server.child.kill("SIGINT");
      const exit = await server.exited;
      assert.deepEqual(exit, { code: 1, signal: null });
      assert.match(server.stderr(), /SIGINT received again/);
    } finally {
      socket?.destroy();
      server.child.kill("SIGKILL");
    }
  });

  it("SIGHUP (a closed terminal) closes it as SIGTERM does; a final snapshot that fails exits 1 saying the WAL holds everything, and nothing is lost", { timeout: 120_000 }, async () => {
    const dataDir = await dir();
    const submit = (url: string, taskId: string) => http(url, "POST", "/command", { body: { type: "task.submit", payload: { taskId, kind: "k" } } });
    const first = await startServe(["--data-dir", dataDir, "--snapshot-every", "0"]);
    assert.equal((await submit(first.url, "t1")).status, 200);
    first.child.kill("SIGHUP");
    assert.deepEqual(await first.exited, { code: 0, signal: null }, first.stderr());
    assert.deepEqual(await readdir(path.join(dataDir, "snapshots")), ["snapshot-00000000000000000001.json"], "the final snapshot was written");

    const second = await startServe(["--data-dir", dataDir, "--snapshot-every", "0"]);
    assert.equal(second.recoveredIndex, 1);
    assert.equal((await submit(second.url, "t2")).status, 200);
    // The final snapshot cannot be written: a file stands where the snapshots directory was.
    const snapshots = path.join(dataDir, "snapshots");
    await rename(snapshots, `${snapshots}.aside`);
    await writeFile(snapshots, "not a directory");
    const exit = await stopServe(second);
    assert.deepEqual(exit, { code: 1, signal: null }, second.stderr());
    const said = second.stderr().trim().split("\n").at(-1) ?? "";
    assert.match(said, /^swoosh: the final snapshot failed: .*snapshots.*; nothing is lost: the WAL holds every acknowledged command and was closed, and the next start replays it$/);
    assert.doesNotMatch(second.stderr(), /\n\s+at /, "no stack trace");

    await rm(snapshots);
    await rename(`${snapshots}.aside`, snapshots);
    const third = await startServe(["--data-dir", dataDir, "--snapshot-every", "0"]);
    try {
      assert.equal(third.recoveredIndex, 2, "the command acknowledged before the failed snapshot was recovered from the WAL");
    } finally {
      assert.equal((await stopServe(third)).code, 0);
    }
  });

  it("a Ctrl-C during a long recovery stops it before serving: exit 0, nothing written, the next start recovers everything", { timeout: 180_000 }, async () => {
    const dataDir = await dir();
    // A WAL long enough that its replay takes a while, and no snapshot to start from.
    const entries = 120_000;
    const engine = await openSwoosh({ dataDir, snapshotEvery: 0 });
    for (let first = 0; first < entries; first += 1000) {
      await Promise.all(Array.from({ length: 1000 }, (_, i) => engine.submit({ type: "task.submit", payload: { taskId: `t${first + i}`, kind: "build" } })));
    }
    await engine.close({ snapshot: false });
    const snapshotsBefore = await readdir(path.join(dataDir, "snapshots"));

    // It listens while it recovers: /healthz answers, /readyz says 503 until recovery is done, commands are refused (not applied).
    const port = await unusedPort();
    const url = `http://127.0.0.1:${port}`;
    await signalledDuringStartup([], ["serve", "--port", String(port), "--data-dir", dataDir], "recovering: replayed the WAL to", "SIGINT", async () => {
      assert.deepEqual((await http(url, "GET", "/healthz")).body, { status: "ok" });
      const ready = await http(url, "GET", "/readyz");
      assert.equal(ready.status, 503, JSON.stringify(ready.body));
      assert.match((ready.body as { error: { code: string; message: string } }).error.message, /^starting: the data dir is being recovered/);
      const refused = await http(url, "POST", "/command", { body: { type: "task.submit", payload: { taskId: "during-recovery", kind: "build" } } });
      assert.equal(refused.status, 503, JSON.stringify(refused.body));
    });
    assert.deepEqual(await readdir(path.join(dataDir, "snapshots")), snapshotsBefore, "no snapshot was written");

    const again = await startServe(["--data-dir", dataDir], { timeoutMs: 120_000 });
    try {
      assert.equal(again.recoveredIndex, entries);
    } finally {
      assert.equal((await stopServe(again)).code, 0);
    }
  });

  it("an address it cannot listen on fails before the data dir is touched: --host that is no address exits 2, a port in use exits 1", { timeout: 60_000 }, async () => {
    const badHost = await dir();
    assertFailure(await runCli(["serve", "--host", "not-an-address.invalid", "--port", "0", "--data-dir", badHost]), 2, /cannot listen on not-an-address\.invalid:0: --host is not an address/);
    assert.deepEqual(await readdir(badHost), [], "nothing written");
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
    try {
      const inUse = await dir();
      assertFailure(await runCli(["serve", "--port", String((taken.address() as net.AddressInfo).port), "--data-dir", inUse]), 1, /cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE/);
      assert.deepEqual(await readdir(inUse), [], "nothing written");
    } finally {
      taken.close();
    }
  });

  it("a SIGTERM while serve's modules still load is not Node's default death: it stops before serving and exits 0", { timeout: 60_000 }, async () => {
    const dataDir = await dir();
    // The preload says when bin/swoosh.js starts keeping SIGTERM: long before the CLI's modules are loaded.
    const announce = fileURLToPath(new URL("../support/announce-signal-listener.cjs", import.meta.url));
    const stderr = await signalledDuringStartup(["--require", announce], ["serve", "--port", "0", "--data-dir", dataDir], "a SIGTERM listener is installed", "SIGTERM");
    assert.match(stderr, /a SIGTERM listener is installed .*bin\/swoosh\.js/, "the first to listen was bin/swoosh.js, before the CLI's modules loaded");
    // "The data dir is as it was": no default genesis was written into the empty dir (a later --genesis would be refused).
    assert.ok(!existsSync(path.join(dataDir, "genesis.json")), "no genesis.json written");
  });

  it("swoosh state prints a state past 64 MiB as the server sends it (compact, streamed), a smaller one indented; a closed pipe ends it quietly", { timeout: 120_000 }, async () => {
    const dataDir = await dir();
    const server = await startServe(["--data-dir", dataDir]);
    try {
      const blob = "x".repeat(900_000);
      for (let first = 0; first < 80; first += 8) {
        const answers = await Promise.all(
          Array.from({ length: 8 }, (_, i) => http(server.url, "POST", "/command", { body: { type: "task.submit", payload: { taskId: `big-${first + i}`, kind: "blob", payload: { blob } } } })),
        );
        for (const answer of answers) assert.equal(answer.status, 200, JSON.stringify(answer.body).slice(0, 200));
      }
      // No leases are pending, so the server logs no ticks: both reads see the same state.
      const sent = await (await fetch(`${server.url}/state`)).text();
      assert.ok(sent.length > PRETTY_ANSWER_BYTES_MAX, `GET /state is only ${sent.length} bytes`);
      const printed = await runCli(["state", "--url", server.url]);
      assert.equal(printed.status, 0, printed.stderr);
      assert.ok(printed.stdout === `${sent}\n`, "printed as sent, one line");

      // A reader that stops early (`swoosh state | head`): exit 0, nothing on stderr, no waiting for the rest.
      const child = spawn(process.execPath, [bin, "state", "--url", server.url], { env: cleanEnv(), stdio: ["ignore", "pipe", "pipe"] });
      let stderr = "";
      child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
      child.stdout.once("data", () => child.stdout.destroy());
      const exited = await trackChild(child);
      assert.deepEqual(exited, { code: 0, signal: null }, stderr);
      assert.equal(stderr, "");

      const small = await runCli(["state", "--at", "1", "--url", server.url]);
      assert.equal(small.status, 0, small.stderr);
      assert.match(small.stdout, /^\{\n {2}"index": 1,\n/);
    } finally {
      await stopServe(server);
    }
  });
});
