/**
 * The package as npm installs it works in plain Node, without tsx (SPEC §10:
 * `import { openSwoosh, … } from "swoosh"`). The test compiles src/ with the
 * build config into a package laid out as `npm pack` ships it (package.json,
 * bin/, dist/ — no src/), installs it into an app's node_modules by symlink,
 * and runs in child processes with no loader: the library through both
 * package exports (time travel included, whose worker thread loads compiled
 * modules too, and a reopen, whose WAL probe child imports lmdb by the URL
 * dist/ resolves) and the `swoosh` command.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { cp, mkdir, readFile, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import semver from "semver";
import { tempDir } from "../support/engine-fixtures.ts";

const run = promisify(execFile);
const root = fileURLToPath(new URL("../../", import.meta.url));
/** No NODE_OPTIONS: nothing may load tsx into the children. */
const plainEnv = Object.fromEntries(Object.entries(process.env).filter(([name]) => name !== "NODE_OPTIONS"));

const APP = `
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { openSwoosh, computeStateHash } from "swoosh";
import { SwooshClient } from "swoosh/client";

const dataDir = mkdtempSync(path.join(os.tmpdir(), "swoosh-package-data-"));
try {
  const engine = await openSwoosh({ dataDir, snapshotEvery: 5 });
  for (let i = 0; i < 20; i++) await engine.submit({ type: "task.submit", payload: { taskId: "t" + i, kind: "build" } });
  const now = await engine.readState();
  const hash = await engine.stateHash();
  const past = await engine.stateTextAt(7);
  await engine.close();
  // Reopening reads the WAL file in a child process first (lmdb-probe.ts), lmdb found from dist/.
  const again = await openSwoosh({ dataDir });
  const reopenedIndex = (await again.readState()).index;
  await again.close();
  console.log(JSON.stringify({
    index: now.index,
    reopenedIndex,
    tasks: Object.keys(now.state.tasks).length,
    hashMatches: computeStateHash(now.state) === hash,
    pastIndex: past.index,
    pastHash: past.stateHash,
    client: typeof SwooshClient,
  }));
} finally {
  rmSync(dataDir, { recursive: true, force: true });
}
`;

/** An error raised inside the package, for its stack trace. */
const THROWS = `
import { computeStateHash } from "swoosh";
try {
  computeStateHash({ tasks: { t1: { due: Number.NaN } } });
} catch (error) {
  console.log(error.stack);
}
`;

describe("the installed package", () => {
  it("installs from its tarball with --engine-strict on this Node: every runtime dependency a user gets admits it", { timeout: 180_000 }, async (t) => {
    const own = (JSON.parse(await readFile(path.join(root, "package.json"), "utf8")) as { engines: { node: string } }).engines.node;
    assert.ok(semver.satisfies(process.version, own), `the package's engines ${own} admit ${process.version}`);
    const { dir, cleanup } = await tempDir("swoosh-install-");
    t.after(cleanup);
    // The tarball as npm publishes it (dist/ as built by npm ci's prepare), installed as a user installs it:
    // in the user's tree this package's overrides would not apply, only its dependencies.
    const packed = await run("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", dir], { cwd: root, env: plainEnv });
    const filename = (JSON.parse(packed.stdout) as Array<{ filename: string }>)[0]?.filename;
    assert.ok(filename !== undefined, packed.stdout);
    const app = path.join(dir, "app");
    await mkdir(app);
    await writeFile(path.join(app, "package.json"), JSON.stringify({ name: "app", version: "1.0.0", private: true }));
    // From npm's cache (npm ci filled it): no download needed.
    await run("npm", ["install", "--engine-strict", "--ignore-scripts", "--prefer-offline", "--no-audit", "--no-fund", path.join(dir, filename)], { cwd: app, env: plainEnv });
    const { stdout } = await run("npm", ["ls", "--all", "--parseable"], { cwd: app, env: plainEnv });
    const dirs = stdout.trim().split("\n").slice(1);
    assert.ok(dirs.length > 10, `npm ls listed ${dirs.length} installed packages`);
    const refusing: string[] = [];
    for (const installed of dirs) {
      const manifest = JSON.parse(await readFile(path.join(installed, "package.json"), "utf8")) as { name: string; version: string; engines?: { node?: string } };
      const range = manifest.engines?.node;
      if (range !== undefined && !semver.satisfies(process.version, range)) refusing.push(`${manifest.name}@${manifest.version} (node ${range})`);
    }
    assert.deepEqual(refusing, [], "installed dependencies that refuse this Node");
  });

  it("runs in plain Node from its compiled dist: the library, time travel in a worker, and the swoosh command", { timeout: 120_000 }, async (t) => {
    const { dir, cleanup } = await tempDir("swoosh-package-");
    t.after(cleanup);
    const pkg = path.join(dir, "pkg");
    await run(process.execPath, [path.join(root, "node_modules/typescript/bin/tsc"), "-p", path.join(root, "tsconfig.build.json"), "--outDir", path.join(pkg, "dist")], { cwd: root, env: plainEnv });
    await cp(path.join(root, "package.json"), path.join(pkg, "package.json"));
    await cp(path.join(root, "bin"), path.join(pkg, "bin"), { recursive: true });
    // The package's own dependencies, as npm would have installed them.
    await symlink(path.join(root, "node_modules"), path.join(pkg, "node_modules"), "dir");
    const app = path.join(dir, "app");
    await mkdir(path.join(app, "node_modules"), { recursive: true });
    await symlink(pkg, path.join(app, "node_modules", "swoosh"), "dir");
    await writeFile(path.join(app, "main.mjs"), APP);

    const { stdout } = await run(process.execPath, [path.join(app, "main.mjs")], { cwd: app, env: plainEnv });
    const report = JSON.parse(stdout.trim()) as { index: number; reopenedIndex: number; tasks: number; hashMatches: boolean; pastIndex: number; pastHash: string; client: string };
    assert.equal(report.index, 20);
    assert.equal(report.reopenedIndex, 20);
    assert.equal(report.tasks, 20);
    assert.equal(report.hashMatches, true);
    assert.equal(report.pastIndex, 7);
    assert.match(report.pastHash, /^[0-9a-f]{64}$/);
    assert.equal(report.client, "function");

    const version = await run(process.execPath, [path.join(pkg, "bin", "swoosh.js"), "--version"], { cwd: app, env: plainEnv });
    assert.equal(version.stdout.trim(), (JSON.parse(await readFile(path.join(root, "package.json"), "utf8")) as { version: string }).version);
    const genesis = await run(process.execPath, [path.join(pkg, "bin", "swoosh.js"), "genesis", "--cluster-id", "packaged"], { cwd: app, env: plainEnv });
    assert.equal((JSON.parse(genesis.stdout) as { clusterId: string }).clusterId, "packaged");

    // dist/ carries source maps with the sources inlined (src/ is not shipped):
    // with them on, a stack trace names the TypeScript file and line.
    await writeFile(path.join(app, "throws.mjs"), THROWS);
    const mapped = await run(process.execPath, ["--enable-source-maps", path.join(app, "throws.mjs")], { cwd: app, env: plainEnv });
    assert.match(mapped.stdout, /JsonValueError/);
    assert.match(mapped.stdout, /^ {4}at .*\/src\/core\/[\w-]+\.ts:\d+:\d+\)$/m);
    assert.doesNotMatch(mapped.stdout, /\/dist\//);
  });
});
