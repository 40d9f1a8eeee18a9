/** `npm start`, the `swoosh` command and the benchmarks start Node with the server's flags (src/server/node-flags.ts). */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { SERVER_NODE_FLAGS } from "../../src/server/node-flags.ts";

const root = new URL("../../", import.meta.url);

test("npm start and the swoosh command's shebang pass every server Node flag", () => {
  const start = (JSON.parse(readFileSync(new URL("package.json", root), "utf8")) as { scripts: Record<string, string> }).scripts.start ?? "";
  const shebang = readFileSync(new URL("bin/swoosh.js", root), "utf8").split("\n", 1)[0] ?? "";
  assert.ok(shebang.startsWith("#!/usr/bin/env -S node "), shebang);
  for (const flag of SERVER_NODE_FLAGS) {
    assert.match(start, new RegExp(`^node (\\S+ )*${flag.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} `), `npm start lacks ${flag}: ${start}`);
    assert.ok(shebang.split(" ").includes(flag), `bin/swoosh.js shebang lacks ${flag}: ${shebang}`);
  }
});
