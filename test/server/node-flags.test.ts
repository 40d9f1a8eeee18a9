/** `npm start` and the benchmarks start Node with the server's flags (src/server/node-flags.ts). */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { SERVER_NODE_FLAGS } from "../../src/server/node-flags.ts";

const root = new URL("../../", import.meta.url);

test("npm start passes every server Node flag", () => {
  const start = (JSON.parse(readFileSync(new URL("package.json", root), "utf8")) as { scripts: Record<string, string> }).scripts.start ?? "";
  const words = start.split(" ");
  assert.equal(words[0], "node", start);
  for (const flag of SERVER_NODE_FLAGS) assert.ok(words.slice(0, words.indexOf("bin/swoosh.js")).includes(flag), `npm start lacks ${flag}: ${start}`);
});
